package query

// SpanIDs is a set of span IDs, made to be asked once per request a
// span-filtered query reads: millions of times, for sets of up to a
// million spans. An open-addressed table of the IDs themselves, probed
// linearly from a Fibonacci hash, asks half as many cache lines as a Go
// map of the same IDs and hashes nothing but a multiply.
type SpanIDs struct {
	slots []uint64 // 0 is an empty slot; zero is no span ID
	n     int
	shift uint
}

// Add adds id and says whether it was new. Zero is never added.
func (s *SpanIDs) Add(id uint64) bool {
	if id == 0 {
		return false
	}
	if (s.n+1)*4 > len(s.slots)*3 {
		s.grow()
	}
	mask := uint64(len(s.slots) - 1)
	for i := s.slot(id); ; i = (i + 1) & mask {
		switch s.slots[i] {
		case id:
			return false
		case 0:
			s.slots[i] = id
			s.n++
			return true
		}
	}
}

// Has says whether id is in s.
func (s *SpanIDs) Has(id uint64) bool {
	if id == 0 || s.n == 0 {
		return false
	}
	mask := uint64(len(s.slots) - 1)
	for i := s.slot(id); ; i = (i + 1) & mask {
		switch s.slots[i] {
		case id:
			return true
		case 0:
			return false
		}
	}
}

// Len is how many IDs s holds.
func (s *SpanIDs) Len() int { return s.n }

func (s *SpanIDs) slot(id uint64) uint64 { return (id * 0x9e3779b97f4a7c15) >> s.shift }

func (s *SpanIDs) grow() {
	old := s.slots
	size := max(16, 2*len(old))
	s.slots = make([]uint64, size)
	s.shift = 64
	for n := size; n > 1; n >>= 1 {
		s.shift--
	}
	s.n = 0
	for _, id := range old {
		if id != 0 {
			s.Add(id)
		}
	}
}

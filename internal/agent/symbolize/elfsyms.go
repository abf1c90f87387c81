package symbolize

import (
	"debug/elf"
	"sort"
)

// elfSymbols is the function part of an ELF symbol table (.symtab, or
// .dynsym when the binary was stripped), sorted by address. Names are
// returned as the table spells them: C++ and Rust names stay mangled.
type elfSymbols struct {
	addrs []uint64
	sizes []uint64
	names []string
	bytes int64
}

// newELFSymbols keeps the defined function symbols of syms, but those at
// addresses skip reports true for (nil: none).
func newELFSymbols(syms []elf.Symbol, skip func(addr uint64) bool) *elfSymbols {
	type sym struct {
		addr, size uint64
		name       string
		bind       elf.SymBind
	}
	var keep []sym
	for _, s := range syms {
		typ := elf.ST_TYPE(s.Info)
		if (typ != elf.STT_FUNC && typ != elf.STT_GNU_IFUNC) || s.Value == 0 || s.Section == elf.SHN_UNDEF || s.Name == "" ||
			(skip != nil && skip(s.Value)) {
			continue
		}
		keep = append(keep, sym{s.Value, s.Size, s.Name, elf.ST_BIND(s.Info)})
	}
	// Aliases share an address (getpid and __getpid in libc): keep one, and
	// pick it the same way every time: global over weak over local, then
	// the shorter name, then the first in byte order.
	rank := func(b elf.SymBind) int {
		switch b {
		case elf.STB_GLOBAL:
			return 0
		case elf.STB_WEAK:
			return 1
		}
		return 2
	}
	sort.Slice(keep, func(i, j int) bool {
		a, b := keep[i], keep[j]
		if a.addr != b.addr {
			return a.addr < b.addr
		}
		if rank(a.bind) != rank(b.bind) {
			return rank(a.bind) < rank(b.bind)
		}
		if len(a.name) != len(b.name) {
			return len(a.name) < len(b.name)
		}
		return a.name < b.name
	})
	t := &elfSymbols{}
	for i, s := range keep {
		if i > 0 && keep[i-1].addr == s.addr {
			continue
		}
		t.addrs = append(t.addrs, s.addr)
		t.sizes = append(t.sizes, s.size)
		t.names = append(t.names, s.name)
		t.bytes += 8 + 8 + 16 + int64(len(s.name))
	}
	return t
}

func (t *elfSymbols) sizeBytes() int64 { return t.bytes }

// lookup appends the frame of the function holding the ELF address pc.
// A symbol without a size (hand-written assembly often has none) is taken
// to run up to the next symbol.
func (t *elfSymbols) lookup(dst []Frame, pc uint64) ([]Frame, bool) {
	i, ok := t.find(pc)
	if !ok {
		return dst, false
	}
	return append(dst, Frame{Function: t.names[i]}), true
}

// start returns the ELF address of the function holding pc.
func (t *elfSymbols) start(pc uint64) (uint64, bool) {
	i, ok := t.find(pc)
	if !ok {
		return 0, false
	}
	return t.addrs[i], true
}

// find returns the index of the symbol holding pc.
func (t *elfSymbols) find(pc uint64) (int, bool) {
	i := sort.Search(len(t.addrs), func(i int) bool { return t.addrs[i] > pc }) - 1
	if i < 0 || (t.sizes[i] != 0 && pc-t.addrs[i] >= t.sizes[i]) {
		return 0, false
	}
	return i, true
}

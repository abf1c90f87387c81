package storage

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/hearth-profiler/hearth/internal/labels"
)

// index.bin is a block's series index: the label set of each series, and
// per profile of each series its timestamp, its number of sample rows and
// its total, so that SelectSeries needs no sample reads and a selection
// knows the exact row range to read. Series are sorted by labels and their
// rows follow one another in samples.parquet in that order. See
// docs/storage-format.md for the byte layout.

const (
	indexMagic   = "HIDX"
	indexVersion = 1
)

// blockIndex is a decoded index.bin. Profiles of all series are in flat
// arrays, series after series: 24 bytes per profile in memory.
type blockIndex struct {
	series []indexSeries
	ts     []int64 // per profile, unix nanoseconds, non-decreasing within a series
	rowEnd []int64 // per profile: the row after its last, counted over the block
	totals []int64 // per profile: the sum of its values
}

// indexSeries is one series of a block index.
type indexSeries struct {
	lbls       labels.Labels
	minT, maxT int64
	first, n   int // its profiles are [first, first+n) of the flat arrays
}

// rows returns the row range of profiles [i, j) of the block.
func (ix *blockIndex) rows(i, j int) (int64, int64) {
	var a int64
	if i > 0 {
		a = ix.rowEnd[i-1]
	}
	b := a
	if j > 0 {
		b = ix.rowEnd[j-1]
	}
	return a, b
}

// profileRange returns the profiles of s with start <= ts < end, as flat
// indexes [i, j).
func (ix *blockIndex) profileRange(s *indexSeries, start, end int64) (int, int) {
	ts := ix.ts[s.first : s.first+s.n]
	i, _ := slices.BinarySearch(ts, start)
	j, _ := slices.BinarySearch(ts, end)
	return s.first + i, s.first + j
}

// numRows is the number of sample rows the index accounts for.
func (ix *blockIndex) numRows() int64 {
	if len(ix.rowEnd) == 0 {
		return 0
	}
	return ix.rowEnd[len(ix.rowEnd)-1]
}

// appendIndex appends the encoding of ix to dst.
func appendIndex(dst []byte, ix *blockIndex) ([]byte, error) {
	strIdx := map[string]uint32{}
	var strs []string
	str := func(s string) uint32 {
		if id, ok := strIdx[s]; ok {
			return id
		}
		id := uint32(len(strs))
		strs = append(strs, s)
		strIdx[s] = id
		return id
	}
	var pairs []uint32
	for _, s := range ix.series {
		s.lbls.Range(func(l labels.Label) { pairs = append(pairs, str(l.Name), str(l.Value)) })
	}
	var b []byte
	b = appendStrings(b, strs)
	b = binary.AppendUvarint(b, uint64(len(ix.series)))
	for _, s := range ix.series {
		b = binary.AppendUvarint(b, uint64(s.lbls.Len()))
	}
	for _, id := range pairs {
		b = binary.AppendUvarint(b, uint64(id))
	}
	for i, s := range ix.series {
		if i > 0 && labels.Compare(ix.series[i-1].lbls, s.lbls) >= 0 {
			return nil, fmt.Errorf("BUG: index series %d out of order", i)
		}
		b = binary.AppendUvarint(b, uint64(s.n))
	}
	for _, s := range ix.series {
		prev := int64(0)
		for _, t := range ix.ts[s.first : s.first+s.n] {
			b = binary.AppendVarint(b, t-prev)
			prev = t
		}
	}
	var prevEnd int64
	for _, e := range ix.rowEnd {
		b = binary.AppendUvarint(b, uint64(e-prevEnd))
		prevEnd = e
	}
	for _, t := range ix.totals {
		b = binary.AppendVarint(b, t)
	}
	return appendEnvelope(dst, indexMagic, indexVersion, b)
}

// decodeIndex decodes what appendIndex wrote and checks it: series sorted
// by labels, timestamps in order within each series.
func decodeIndex(src []byte) (*blockIndex, error) {
	body, version, err := openEnvelope(src, indexMagic)
	if err != nil {
		return nil, fmt.Errorf("decode index: %w", err)
	}
	if version != indexVersion {
		return nil, fmt.Errorf("decode index: unknown version %d", version)
	}
	d := &decoder{b: body}
	strs := d.strings()
	n := d.count(2)
	if d.err != nil {
		return nil, fmt.Errorf("decode index: %w", d.err)
	}
	ix := &blockIndex{series: make([]indexSeries, n)}
	nl := make([]int, n)
	for i := range nl {
		nl[i] = d.count(2)
	}
	var lbuf []labels.Label
	for i := range ix.series {
		if d.err != nil {
			break
		}
		lbuf = lbuf[:0]
		for range nl[i] {
			name := d.ref(len(strs), "label name string")
			value := d.ref(len(strs), "label value string")
			if d.err != nil {
				break
			}
			lbuf = append(lbuf, labels.Label{Name: strs[name], Value: strs[value]})
		}
		ix.series[i].lbls = labels.New(lbuf...)
		if i > 0 && labels.Compare(ix.series[i-1].lbls, ix.series[i].lbls) >= 0 {
			d.fail("series %d out of order", i)
		}
	}
	total := 0
	for i := range ix.series {
		k := d.count(3)
		ix.series[i].first, ix.series[i].n = total, k
		total += k
		if total > len(body) {
			d.fail("more profiles than bytes")
			break
		}
	}
	if d.err != nil {
		return nil, fmt.Errorf("decode index: series: %w", d.err)
	}
	ix.ts = make([]int64, total)
	for i := range ix.series {
		s := &ix.series[i]
		var t int64
		for k := range s.n {
			dt := d.varint()
			if k > 0 && dt < 0 {
				d.fail("series %d: timestamps out of order", i)
			}
			t += dt
			ix.ts[s.first+k] = t
		}
		if s.n > 0 {
			s.minT, s.maxT = ix.ts[s.first], ix.ts[s.first+s.n-1]
		}
	}
	ix.rowEnd = make([]int64, total)
	var end int64
	for k := range ix.rowEnd {
		r := d.uvarint()
		if r > 1<<40 || end+int64(r) > 1<<50 {
			d.fail("profile %d: row count %d out of range", k, r)
		}
		end += int64(r)
		ix.rowEnd[k] = end
	}
	ix.totals = make([]int64, total)
	for k := range ix.totals {
		ix.totals[k] = d.varint()
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return nil, fmt.Errorf("decode index: profiles: %w", d.err)
	}
	return ix, nil
}

package storage

import (
	"encoding/binary"
	"fmt"

	"github.com/hearth-profiler/hearth/internal/labels"
)

// symbols.bin holds a block's symbol tables and per-sample label sets, each
// table stored column by column so that zstd sees like next to like. See
// docs/storage-format.md for the byte layout.

const (
	symbolsMagic   = "HSYM"
	symbolsVersion = 1
)

// AppendSymbols appends the encoding of s and the per-sample label sets to
// dst. The label strings are interned into a copy of s's string table.
func AppendSymbols(dst []byte, s *Symbols, sets []labels.Labels) ([]byte, error) {
	// Label strings join the string table; the head's copy is not touched.
	strs := s.Strings[:len(s.Strings):len(s.Strings)]
	var local map[string]uint32
	addStr := func(v string) uint32 {
		if local == nil {
			local = make(map[string]uint32, len(s.Strings))
			for i, x := range s.Strings {
				if _, ok := local[x]; !ok {
					local[x] = uint32(i)
				}
			}
		}
		if id, ok := local[v]; ok {
			return id
		}
		id := uint32(len(strs))
		strs = append(strs, v)
		local[v] = id
		return id
	}
	var setPairs []uint32
	setLens := make([]uint64, 0, len(sets))
	for i, set := range sets {
		if i == 0 && set.Len() != 0 {
			return nil, fmt.Errorf("BUG: per-sample label set 0 is %s, want empty", set)
		}
		setLens = append(setLens, uint64(set.Len()))
		set.Range(func(l labels.Label) {
			setPairs = append(setPairs, addStr(l.Name), addStr(l.Value))
		})
	}
	if len(sets) == 0 {
		setLens = append(setLens, 0)
	}

	var b []byte
	b = appendStrings(b, strs)

	b = binary.AppendUvarint(b, uint64(len(s.Mappings)))
	for _, m := range s.Mappings {
		b = binary.AppendUvarint(b, m.Start)
	}
	for _, m := range s.Mappings {
		b = binary.AppendUvarint(b, m.Limit-m.Start)
	}
	for _, m := range s.Mappings {
		b = binary.AppendUvarint(b, m.Offset)
	}
	for _, m := range s.Mappings {
		b = binary.AppendUvarint(b, uint64(m.File))
	}
	for _, m := range s.Mappings {
		b = binary.AppendUvarint(b, uint64(m.BuildID))
	}
	for _, m := range s.Mappings {
		var f byte
		if m.HasFunctions {
			f |= 1
		}
		if m.HasFilenames {
			f |= 2
		}
		if m.HasLineNumbers {
			f |= 4
		}
		if m.HasInlineFrames {
			f |= 8
		}
		b = append(b, f)
	}

	b = binary.AppendUvarint(b, uint64(len(s.Functions)))
	for _, f := range s.Functions {
		b = binary.AppendUvarint(b, uint64(f.Name))
	}
	for _, f := range s.Functions {
		b = binary.AppendUvarint(b, uint64(f.SystemName))
	}
	for _, f := range s.Functions {
		b = binary.AppendUvarint(b, uint64(f.Filename))
	}
	for _, f := range s.Functions {
		b = binary.AppendVarint(b, f.StartLine)
	}

	b = binary.AppendUvarint(b, uint64(len(s.Locations)))
	for _, l := range s.Locations {
		b = binary.AppendUvarint(b, uint64(l.Mapping))
	}
	var prev uint64
	for _, l := range s.Locations {
		// Addresses of nearby code are close: store differences.
		b = binary.AppendVarint(b, int64(l.Address-prev))
		prev = l.Address
	}
	for i, l := range s.Locations {
		want := uint32(0)
		if i > 0 {
			p := s.Locations[i-1]
			want = p.LinesOff + p.LinesLen
		}
		if l.LinesOff != want {
			return nil, fmt.Errorf("BUG: location %d lines start at %d, want %d", i, l.LinesOff, want)
		}
		b = binary.AppendUvarint(b, uint64(l.LinesLen))
	}
	for _, l := range s.Locations {
		if l.IsFolded {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	}

	b = binary.AppendUvarint(b, uint64(len(s.Lines)))
	for _, l := range s.Lines {
		b = binary.AppendUvarint(b, uint64(l.Function))
	}
	for _, l := range s.Lines {
		b = binary.AppendVarint(b, l.Line)
	}

	b = binary.AppendUvarint(b, uint64(len(s.StackParent)))
	for i, p := range s.StackParent {
		b = binary.AppendUvarint(b, uint64(uint32(i)-p))
	}
	for _, l := range s.StackLoc {
		b = binary.AppendUvarint(b, uint64(l))
	}

	b = binary.AppendUvarint(b, uint64(len(setLens)))
	for _, n := range setLens {
		b = binary.AppendUvarint(b, n)
	}
	for _, id := range setPairs {
		b = binary.AppendUvarint(b, uint64(id))
	}
	return appendEnvelope(dst, symbolsMagic, symbolsVersion, b)
}

// DecodeSymbols decodes what AppendSymbols wrote. It checks every
// reference, so that queries over the result cannot index out of range.
// The returned Symbols are read-only: they have no intern indexes.
func DecodeSymbols(src []byte) (*Symbols, []labels.Labels, error) {
	body, version, err := openEnvelope(src, symbolsMagic)
	if err != nil {
		return nil, nil, fmt.Errorf("decode symbols: %w", err)
	}
	if version != symbolsVersion {
		return nil, nil, fmt.Errorf("decode symbols: unknown version %d", version)
	}
	d := &decoder{b: body}
	s := &Symbols{}
	s.Strings = d.strings()
	if d.err == nil && len(s.Strings) == 0 {
		d.fail("empty string table")
	}
	ns := len(s.Strings)

	n := d.count(6)
	if d.err == nil && n == 0 {
		d.fail("empty mapping table")
	}
	if d.err != nil {
		return nil, nil, fmt.Errorf("decode symbols: strings: %w", d.err)
	}
	s.Mappings = make([]Mapping, n)
	for i := range s.Mappings {
		s.Mappings[i].Start = d.uvarint()
	}
	for i := range s.Mappings {
		s.Mappings[i].Limit = s.Mappings[i].Start + d.uvarint()
	}
	for i := range s.Mappings {
		s.Mappings[i].Offset = d.uvarint()
	}
	for i := range s.Mappings {
		s.Mappings[i].File = d.ref(ns, "mapping file string")
	}
	for i := range s.Mappings {
		s.Mappings[i].BuildID = d.ref(ns, "mapping build ID string")
	}
	for i := range s.Mappings {
		f := d.byte1()
		m := &s.Mappings[i]
		m.HasFunctions, m.HasFilenames, m.HasLineNumbers, m.HasInlineFrames = f&1 != 0, f&2 != 0, f&4 != 0, f&8 != 0
	}

	n = d.count(4)
	if d.err == nil && n == 0 {
		d.fail("empty function table")
	}
	if d.err != nil {
		return nil, nil, fmt.Errorf("decode symbols: mappings: %w", d.err)
	}
	s.Functions = make([]Function, n)
	for i := range s.Functions {
		s.Functions[i].Name = d.ref(ns, "function name string")
	}
	for i := range s.Functions {
		s.Functions[i].SystemName = d.ref(ns, "function system name string")
	}
	for i := range s.Functions {
		s.Functions[i].Filename = d.ref(ns, "function file string")
	}
	for i := range s.Functions {
		s.Functions[i].StartLine = d.varint()
	}

	n = d.count(4)
	if d.err == nil && n == 0 {
		d.fail("empty location table")
	}
	if d.err != nil {
		return nil, nil, fmt.Errorf("decode symbols: functions: %w", d.err)
	}
	s.Locations = make([]Location, n)
	for i := range s.Locations {
		s.Locations[i].Mapping = d.ref(len(s.Mappings), "location mapping")
	}
	var addr uint64
	for i := range s.Locations {
		addr += uint64(d.varint())
		s.Locations[i].Address = addr
	}
	var off uint64
	for i := range s.Locations {
		l := d.u32()
		s.Locations[i].LinesOff, s.Locations[i].LinesLen = uint32(off), l
		off += uint64(l)
		if off > 1<<32-1 {
			d.fail("too many lines")
		}
	}
	for i := range s.Locations {
		s.Locations[i].IsFolded = d.byte1() != 0
	}

	n = d.count(2)
	if d.err == nil && uint64(n) != off {
		d.fail("%d lines, locations refer to %d", n, off)
	}
	if d.err != nil {
		return nil, nil, fmt.Errorf("decode symbols: locations: %w", d.err)
	}
	s.Lines = make([]Line, n)
	for i := range s.Lines {
		s.Lines[i].Function = d.ref(len(s.Functions), "line function")
	}
	for i := range s.Lines {
		s.Lines[i].Line = d.varint()
	}

	n = d.count(2)
	if d.err == nil && n == 0 {
		d.fail("empty stack table")
	}
	if d.err != nil {
		return nil, nil, fmt.Errorf("decode symbols: lines: %w", d.err)
	}
	s.StackParent = make([]uint32, n)
	s.StackLoc = make([]uint32, n)
	for i := range s.StackParent {
		delta := d.uvarint()
		if d.err != nil {
			break
		}
		if (i == 0 && delta != 0) || (i > 0 && (delta == 0 || delta > uint64(i))) {
			d.fail("stack node %d: parent delta %d out of range", i, delta)
			break
		}
		s.StackParent[i] = uint32(uint64(i) - delta)
	}
	for i := range s.StackLoc {
		s.StackLoc[i] = d.ref(len(s.Locations), "stack location")
	}

	n = d.count(1)
	if d.err == nil && n == 0 {
		d.fail("empty label set table")
	}
	if d.err != nil {
		return nil, nil, fmt.Errorf("decode symbols: stacks: %w", d.err)
	}
	setLens := make([]int, n)
	for i := range setLens {
		setLens[i] = d.count(2 * 1)
		if i == 0 && setLens[i] != 0 {
			d.fail("label set 0 is not empty")
		}
	}
	sets := make([]labels.Labels, n)
	var lbuf []labels.Label
	for i, k := range setLens {
		if d.err != nil {
			break
		}
		lbuf = lbuf[:0]
		for range k {
			name := d.ref(ns, "label name string")
			value := d.ref(ns, "label value string")
			lbuf = append(lbuf, labels.Label{Name: s.Strings[name], Value: s.Strings[value]})
		}
		sets[i] = labels.New(lbuf...)
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return nil, nil, fmt.Errorf("decode symbols: label sets: %w", d.err)
	}
	s.computeHashes()
	return s, sets, nil
}

// computeHashes fills the content hashes of decoded tables.
func (s *Symbols) computeHashes() {
	s.locHash = make([]uint64, len(s.Locations))
	for i := 1; i < len(s.Locations); i++ {
		s.locHash[i] = s.contentHashLocation(uint32(i))
	}
	s.stackHash = make([]uint64, len(s.StackParent))
	for i := 1; i < len(s.StackParent); i++ {
		s.stackHash[i] = mix(s.stackHash[s.StackParent[i]], s.locHash[s.StackLoc[i]])
	}
}

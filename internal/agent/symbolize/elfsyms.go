package symbolize

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
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
func newELFSymbols(syms rawSymbols, skip func(addr uint64) bool) *elfSymbols {
	type sym struct {
		addr, size uint64
		name       string
		bind       elf.SymBind
	}
	var keep []sym
	syms.each(func(s rawSymbol) bool {
		typ := elf.ST_TYPE(s.info)
		if (typ != elf.STT_FUNC && typ != elf.STT_GNU_IFUNC) || s.value == 0 || s.section == elf.SHN_UNDEF || len(s.name) == 0 ||
			(skip != nil && skip(s.value)) {
			return true
		}
		keep = append(keep, sym{s.value, s.size, string(s.name), elf.ST_BIND(s.info)})
		return true
	})
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

// rawSymbols is an ELF symbol table read in place from the bytes of the
// file, which are mapped: debug/elf's Symbols copies the table and makes
// a string of every name, some 10 MiB of garbage for a large Go binary
// whose symbols are nearly all Go's, named by the pclntab instead.
type rawSymbols struct {
	tab, strs []byte
	is64      bool
	order     binary.ByteOrder
}

// rawSymbol is one entry of a rawSymbols; name points into the file.
type rawSymbol struct {
	name        []byte
	value, size uint64
	info        byte
	section     elf.SectionIndex
}

// symbolTable returns the symbol table of type typ (SHT_SYMTAB or
// SHT_DYNSYM) of ef, whose file bytes are data, and whether there is one
// with entries.
func symbolTable(ef *elf.File, data []byte, typ elf.SectionType) (rawSymbols, bool) {
	for _, s := range ef.Sections {
		if s.Type != typ {
			continue
		}
		if s.Flags&elf.SHF_COMPRESSED != 0 || int(s.Link) >= len(ef.Sections) {
			return rawSymbols{}, false
		}
		r := rawSymbols{
			tab:   sectionBytes(s, data),
			strs:  sectionBytes(ef.Sections[s.Link], data),
			is64:  ef.Class == elf.ELFCLASS64,
			order: ef.ByteOrder,
		}
		return r, len(r.tab) >= 2*r.entrySize() && len(r.strs) > 0
	}
	return rawSymbols{}, false
}

// sectionBytes returns the file bytes of section s as a slice of data;
// nothing when it has none or they do not lie in data.
func sectionBytes(s *elf.Section, data []byte) []byte {
	if s.Type == elf.SHT_NOBITS || s.Flags&elf.SHF_COMPRESSED != 0 || s.Offset > uint64(len(data)) || s.Size > uint64(len(data))-s.Offset {
		return nil
	}
	return data[s.Offset : s.Offset+s.Size : s.Offset+s.Size]
}

func (r rawSymbols) entrySize() int {
	if r.is64 {
		return 24 // Elf64_Sym
	}
	return 16 // Elf32_Sym
}

// each calls fn for every symbol but the first, the null symbol, as
// debug/elf's Symbols does, until fn returns false.
func (r rawSymbols) each(fn func(rawSymbol) bool) {
	n := r.entrySize()
	for off := n; off+n <= len(r.tab); off += n {
		e := r.tab[off : off+n]
		var s rawSymbol
		var name uint32
		if r.is64 {
			// st_name, st_info, st_other, st_shndx, st_value, st_size
			name, s.info, s.section = r.order.Uint32(e), e[4], elf.SectionIndex(r.order.Uint16(e[6:]))
			s.value, s.size = r.order.Uint64(e[8:]), r.order.Uint64(e[16:])
		} else {
			// st_name, st_value, st_size, st_info, st_other, st_shndx
			name, s.value, s.size = r.order.Uint32(e), uint64(r.order.Uint32(e[4:])), uint64(r.order.Uint32(e[8:]))
			s.info, s.section = e[12], elf.SectionIndex(r.order.Uint16(e[14:]))
		}
		if int64(name) < int64(len(r.strs)) {
			s.name = r.strs[name:]
			if i := bytes.IndexByte(s.name, 0); i >= 0 {
				s.name = s.name[:i]
			}
		}
		if !fn(s) {
			return
		}
	}
}

// addr returns the value of the first defined symbol with one of names.
func (r rawSymbols) addr(names ...string) uint64 {
	var v uint64
	r.each(func(s rawSymbol) bool {
		if s.section == elf.SHN_UNDEF {
			return true
		}
		for _, n := range names {
			if string(s.name) == n {
				v = s.value
				return false
			}
		}
		return true
	})
	return v
}

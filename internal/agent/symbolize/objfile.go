package symbolize

import (
	"crypto/sha256"
	"debug/elf"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"time"
)

// symbolSource is one way to name the code of a binary: Go's pclntab, or an
// ELF symbol table. A binary can have several; a cgo binary names its Go
// functions from the pclntab and its C functions from .symtab.
type symbolSource interface {
	// lookup appends the frames for the ELF virtual address pc to dst,
	// innermost first, filling Function, File, Line and Inlined. It reports
	// false, leaving dst as it was, when the source does not cover pc.
	lookup(dst []Frame, pc uint64) ([]Frame, bool)
	// sizeBytes estimates the memory the source holds.
	sizeBytes() int64
}

// elfLoad is a PT_LOAD segment: the file bytes [offset, offset+filesz)
// are mapped at the ELF virtual address vaddr, plus the load bias.
type elfLoad struct {
	vaddr, offset, filesz uint64
	exec                  bool
}

// An objfile is everything loaded from one executable or shared library: how
// its file offsets map to ELF addresses, and its symbol sources. It is
// shared by every process that maps the same build.
type objfile struct {
	key     string // cache key: build ID and file size
	buildID string
	loads   []elfLoad // executable segments first
	sources []symbolSource
	machine elf.Machine

	// codeChecks caches what LeafFrameless read from the file's code, by
	// file offset and question; see leaf.go.
	codeChecks map[codeCheck]uint8

	// release unmaps the file, when a source reads from the mapping (a
	// Go pclntab); nil when nothing does and it was unmapped after loading.
	release func()

	accounted int64 // sizeBytes when the cache last counted it
}

func (b *objfile) sizeBytes() int64 {
	n := int64(len(b.key)+len(b.buildID)) + int64(len(b.loads))*32
	for _, s := range b.sources {
		n += s.sizeBytes()
	}
	return n + int64(len(b.codeChecks))*codeCheckBytes
}

// lookup appends the frames for the code at file offset off.
//
// A file offset, not a runtime address, is the input because it is the
// same in every process: the load bias (ASLR, PIE) only moves where a
// mapping starts. The ELF address follows from the PT_LOAD segment holding
// the offset, which covers PIE and non-PIE binaries alike.
func (b *objfile) lookup(dst []Frame, off uint64) ([]Frame, bool) {
	pc, ok := b.elfAddr(off)
	if !ok {
		return dst, false
	}
	for _, s := range b.sources {
		var ok bool
		if dst, ok = s.lookup(dst, pc); ok {
			return dst, true
		}
	}
	return dst, false
}

// elfAddr converts the file offset off to the ELF address of the segment
// holding it (an executable one first).
func (b *objfile) elfAddr(off uint64) (uint64, bool) {
	for _, l := range b.loads {
		if off >= l.offset && off-l.offset < l.filesz {
			return l.vaddr + (off - l.offset), true
		}
	}
	return 0, false
}

// readFile reads the size bytes of f into memory, where it cannot be
// mapped.
func readFile(f *os.File, size int64) ([]byte, error) {
	if size <= 0 || size > maxLoadBytes {
		return nil, fmt.Errorf("read %s: size %d", f.Name(), size)
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(io.NewSectionReader(f, 0, size), data); err != nil {
		return nil, fmt.Errorf("read %s: %w", f.Name(), err)
	}
	return data, nil
}

// fileID is what identifies a file when it carries no build ID.
type fileID struct {
	path  string
	size  int64
	mtime time.Time
}

// maxLoadBytes bounds any one read of a segment, so that a corrupt header
// cannot make the loader allocate gigabytes.
const maxLoadBytes = 1 << 30

// identify returns the build ID of the ELF file ef and its cache key.
//
// The file size is part of the key because stripping a binary afterwards
// (strip, objcopy) keeps its GNU build ID but drops its symbols: the
// stripped copy must not answer for the full one, nor the other way round.
func identify(ef *elf.File, id fileID) (buildID, key string) {
	n := readNotes(ef)
	switch {
	case n.gnuID != "":
		buildID = n.gnuID
	case n.goID != "":
		buildID = n.goID
	default:
		// Without a build ID, a hash of where the file is, its size and
		// modification time at least tells two builds at one path apart.
		h := sha256.New()
		fmt.Fprintf(h, "%s\x00%d\x00%d", id.path, id.size, id.mtime.UnixNano())
		buildID = hex.EncodeToString(h.Sum(nil)[:20])
	}
	return buildID, buildID + ":" + strconv.FormatInt(id.size, 10)
}

// close releases the file mapping b's sources read from. b must not be
// looked up in after.
func (b *objfile) close() {
	if b.release != nil {
		b.release()
		b.release = nil
	}
}

// loadBinary reads the symbol sources of the ELF file ef, whose bytes are
// data (the file mapped, or read). Sources may keep slices of data, which
// must then stay valid while the binary is used; the second result says
// whether they do. It returns a binary even with an error: one without
// symbols, whose frames are then unnamed.
func loadBinary(ef *elf.File, data []byte, buildID, key string) (b *objfile, keepsData bool, err error) {
	size := int64(len(data))
	b = &objfile{buildID: buildID, key: key, machine: ef.Machine}
	// A segment claiming bytes past the end of the file is corrupt; making
	// it empty keeps the readers below from allocating for its claim.
	for _, p := range ef.Progs {
		if p.Off > uint64(size) || p.Filesz > uint64(size)-p.Off {
			p.Filesz = 0
		}
	}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_LOAD && p.Filesz > 0 {
			b.loads = append(b.loads, elfLoad{vaddr: p.Vaddr, offset: p.Off, filesz: p.Filesz, exec: p.Flags&elf.PF_X != 0})
		}
	}
	// Executable segments first: in some layouts a page of file is mapped
	// by two segments, and a code address belongs to the executable one.
	slices.SortStableFunc(b.loads, func(x, y elfLoad) int {
		switch {
		case x.exec == y.exec:
			return 0
		case x.exec:
			return -1
		}
		return 1
	})

	syms, ok := symbolTable(ef, data, elf.SHT_SYMTAB)
	if !ok {
		syms, _ = symbolTable(ef, data, elf.SHT_DYNSYM)
	}
	goSrc, goErr := loadGo(ef, data, syms)
	var goLo, goHi uint64 // the code the pclntab names
	if goSrc != nil {
		b.sources = append(b.sources, goSrc)
		if t, ok := goSrc.(*goTable); ok {
			goLo, goHi = t.textRange()
		}
	}
	// ELF symbols of Go functions would repeat the pclntab's names; only
	// the C code of a cgo binary needs them.
	native := newELFSymbols(syms, func(addr uint64) bool { return addr >= goLo && addr < goHi })
	if len(native.addrs) > 0 {
		b.sources = append(b.sources, native)
	}
	keepsData = goSrc != nil
	if goErr != nil && !errors.Is(goErr, errNotGo) {
		return b, keepsData, fmt.Errorf("read Go symbols of %s: %w", buildID, goErr)
	}
	return b, keepsData, nil
}

type elfNotes struct {
	gnuID string // hex of the NT_GNU_BUILD_ID note
	goID  string // the Go linker's build ID note
}

// Note names and types of the build IDs.
const (
	ntGNUBuildID = 3 // NT_GNU_BUILD_ID, name "GNU"
	ntGoBuildID  = 4 // the Go linker's ELF_NOTE_GOBUILDID_TAG, name "Go"
)

// maxNoteBytes bounds the notes read from one segment; real ones are a few
// hundred bytes.
const maxNoteBytes = 1 << 20

// readNotes reads the build IDs from the PT_NOTE segments, which survive
// the loss of section headers.
func readNotes(ef *elf.File) elfNotes {
	var n elfNotes
	for _, p := range ef.Progs {
		if p.Type != elf.PT_NOTE || p.Filesz == 0 || p.Filesz > maxNoteBytes {
			continue
		}
		data := make([]byte, p.Filesz)
		if _, err := p.ReadAt(data, 0); err != nil {
			continue
		}
		align := uint64(4)
		if p.Align == 8 {
			align = 8
		}
		parseNotes(data, ef.ByteOrder, align, func(name string, typ uint32, desc []byte) {
			switch {
			case name == "GNU" && typ == ntGNUBuildID && n.gnuID == "" && len(desc) > 0:
				n.gnuID = hex.EncodeToString(desc)
			case name == "Go" && typ == ntGoBuildID && n.goID == "" && len(desc) > 0:
				n.goID = string(desc)
			}
		})
	}
	return n
}

// parseNotes calls fn for each note in data: a header of namesz, descsz and
// type (uint32 each), then the name and the descriptor, each starting at a
// multiple of align from the start of the note.
func parseNotes(data []byte, order binary.ByteOrder, align uint64, fn func(name string, typ uint32, desc []byte)) {
	pad := func(n uint64) uint64 { return (n + align - 1) &^ (align - 1) }
	for uint64(len(data)) >= 12 {
		namesz, descsz := uint64(order.Uint32(data)), uint64(order.Uint32(data[4:]))
		typ := order.Uint32(data[8:])
		descAt := pad(12 + namesz)
		if namesz > uint64(len(data)) || descsz > uint64(len(data)) || descAt+descsz > uint64(len(data)) {
			return
		}
		fn(trimNUL(data[12:12+namesz]), typ, data[descAt:descAt+descsz])
		next := pad(descAt + descsz)
		if next > uint64(len(data)) {
			return // the last note need not be padded
		}
		data = data[next:]
	}
}

func trimNUL(b []byte) string {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return string(b)
}

// segmentTail returns the file bytes of the segment holding the ELF
// address addr, from addr to the end of the segment's file data, as a
// slice of data, the whole file.
func segmentTail(ef *elf.File, data []byte, addr uint64) ([]byte, error) {
	for _, p := range ef.Progs {
		if p.Type != elf.PT_LOAD || addr < p.Vaddr || addr-p.Vaddr >= p.Filesz {
			continue
		}
		return segmentData(p, data)[addr-p.Vaddr:], nil
	}
	return nil, fmt.Errorf("address %#x is in no loaded segment", addr)
}

// segmentData returns the file bytes of segment p as a slice of data, the
// whole file; nothing when they do not lie in it.
func segmentData(p *elf.Prog, data []byte) []byte {
	if p.Off > uint64(len(data)) || p.Filesz > uint64(len(data))-p.Off {
		return nil
	}
	return data[p.Off : p.Off+p.Filesz : p.Off+p.Filesz]
}

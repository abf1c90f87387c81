package symbolize

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// synthSeg is one segment of a synthetic ELF file.
type synthSeg struct {
	typ   elf.ProgType
	flags elf.ProgFlag
	vaddr uint64
	data  []byte
}

// synthELF writes a little-endian ELF64 executable with the given segments
// and no section headers. It returns the file and each segment's offset.
func synthELF(segs []synthSeg) ([]byte, []uint64) {
	le := binary.LittleEndian
	const ehsize, phsize = 64, 56
	b := make([]byte, ehsize, 4096)
	copy(b, "\x7fELF")
	b[4], b[5], b[6] = 2, 1, 1 // 64-bit, little-endian, version 1
	le.PutUint16(b[16:], uint16(elf.ET_EXEC))
	le.PutUint16(b[18:], uint16(elf.EM_X86_64))
	le.PutUint32(b[20:], 1)
	le.PutUint64(b[32:], ehsize) // e_phoff
	le.PutUint16(b[52:], ehsize)
	le.PutUint16(b[54:], phsize)
	le.PutUint16(b[56:], uint16(len(segs)))
	off := uint64(ehsize + phsize*len(segs))
	var offs []uint64
	for _, s := range segs {
		off = (off + 15) &^ 15
		offs = append(offs, off)
		var ph [phsize]byte
		le.PutUint32(ph[0:], uint32(s.typ))
		le.PutUint32(ph[4:], uint32(s.flags))
		le.PutUint64(ph[8:], off)
		le.PutUint64(ph[16:], s.vaddr)
		le.PutUint64(ph[24:], s.vaddr)
		le.PutUint64(ph[32:], uint64(len(s.data)))
		le.PutUint64(ph[40:], uint64(len(s.data)))
		le.PutUint64(ph[48:], 4)
		b = append(b, ph[:]...)
		off += uint64(len(s.data))
	}
	for i, s := range segs {
		b = append(b, make([]byte, offs[i]-uint64(len(b)))...)
		b = append(b, s.data...)
	}
	return b, offs
}

// synthGoELF is a Go-like executable without section headers: code at
// text, the pclntab of synthFuncs and its inline trees in a read-only
// segment, a runtime.firstmoduledata pointing at them, and a Go build ID
// note. It returns the file and the file offset of text.
func synthGoELF() ([]byte, uint64) {
	le := binary.LittleEndian
	const text, rodata, data = 0x401000, 0x500000, 0x600000
	pcln, inl := synthPclntab(synthFuncs, true, binary.LittleEndian)
	ro := append(make([]byte, 8), pcln...) // some bytes before the table
	pclnAddr := uint64(rodata + 8)
	gofunc := rodata + uint64(len(ro))
	ro = append(ro, inl...)
	md := make([]byte, 8*48)
	le.PutUint64(md[0:], pclnAddr)
	le.PutUint64(md[8*mdFuncnametab:], pclnAddr+8+8*8) // the name table follows the header
	le.PutUint64(md[8*mdText:], text)
	le.PutUint64(md[8*mdGofunc120:], gofunc)
	rw := append(make([]byte, 24), md...)
	note := le.AppendUint32(nil, 4)              // namesz
	note = le.AppendUint32(note, 8)              // descsz
	note = le.AppendUint32(note, ntGoBuildID)    // type
	note = append(note, "Go\x00\x00synthgo1"...) // name, desc
	code := bytes.Repeat([]byte{0xcc}, 150)
	b, offs := synthELF([]synthSeg{
		{elf.PT_LOAD, elf.PF_R | elf.PF_X, text, code},
		{elf.PT_LOAD, elf.PF_R, rodata, ro},
		{elf.PT_LOAD, elf.PF_R | elf.PF_W, data, rw},
		{elf.PT_NOTE, elf.PF_R, 0x400200, note},
	})
	return b, offs[0]
}

// TestSyntheticGoELF finds the pclntab by its magic number and the inline
// trees through the moduledata, in a file with nothing else to go by.
func TestSyntheticGoELF(t *testing.T) {
	file, textOff := synthGoELF()
	ef, err := elf.NewFile(bytes.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	buildID, key := identify(ef, fileID{size: int64(len(file))})
	if buildID != "synthgo1" {
		t.Errorf("build ID: got %q, want the Go note's", buildID)
	}
	b, _, err := loadBinary(ef, file, buildID, key)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := b.lookup(nil, textOff+35)
	want := []Frame{
		{Function: "main.h", File: "f.go", Line: 30, Inlined: true},
		{Function: "main.g", File: "f.go", Line: 20, Inlined: true},
		{Function: "main.f", File: "f.go", Line: 10},
	}
	if !ok || !cmp.Equal(got, want) {
		t.Errorf("got %+v (%v), want %+v", got, ok, want)
	}
	if _, ok := b.lookup(nil, textOff+150); ok {
		t.Error("address past the last function named")
	}
}

func TestParseNotes(t *testing.T) {
	le := binary.LittleEndian
	var b []byte
	add := func(name string, typ uint32, desc []byte, align int) {
		b = le.AppendUint32(b, uint32(len(name)+1))
		b = le.AppendUint32(b, uint32(len(desc)))
		b = le.AppendUint32(b, typ)
		b = append(b, name...)
		b = append(b, 0)
		for len(b)%align != 0 {
			b = append(b, 0)
		}
		b = append(b, desc...)
		for len(b)%align != 0 {
			b = append(b, 0)
		}
	}
	add("GNU", 5, []byte{1, 2, 3, 4, 5, 6, 7, 8}, 8) // a property note first
	add("GNU", ntGNUBuildID, []byte{0xde, 0xad, 0xbe, 0xef, 0x01}, 8)
	type note struct {
		Name string
		Typ  uint32
		Desc []byte
	}
	var got []note
	parseNotes(b, le, 8, func(name string, typ uint32, desc []byte) { got = append(got, note{name, typ, desc}) })
	want := []note{{"GNU", 5, []byte{1, 2, 3, 4, 5, 6, 7, 8}}, {"GNU", 3, []byte{0xde, 0xad, 0xbe, 0xef, 0x01}}}
	if !cmp.Equal(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	// Truncated: the last descriptor does not fit and is dropped.
	got = nil
	parseNotes(b[:len(b)-6], le, 8, func(name string, typ uint32, desc []byte) { got = append(got, note{name, typ, desc}) })
	if !cmp.Equal(got, want[:1]) {
		t.Errorf("truncated: got %+v, want %+v", got, want[:1])
	}
}

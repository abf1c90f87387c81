package symbolize

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"testing"
)

// The fuzz targets feed the parsers of bytes that come from outside the
// agent (procfs text, and binaries any user can run) with arbitrary input:
// they must return errors, never panic or run away.

func FuzzMaps(f *testing.F) {
	f.Add([]byte(sampleMaps))
	f.Add([]byte("00400000-00401000 r-xp 00000000 fe:00 1 /p (deleted)\n"))
	f.Add([]byte("00401000-00400000 r-xp 00000000 fe:00 1 /p"))
	f.Fuzz(func(t *testing.T, data []byte) {
		maps, err := parseMaps(data)
		if err != nil {
			return
		}
		pm := make([]procMapping, len(maps))
		for i, m := range maps {
			if m.end <= m.start || (i > 0 && maps[i-1].start > m.start) {
				t.Fatalf("mapping %d: %+v", i, m)
			}
			pm[i].mapping = m
			_ = m.module()
		}
		for _, m := range maps {
			findMapping(pm, m.start)
			findMapping(pm, m.end)
		}
	})
}

func FuzzKallsyms(f *testing.F) {
	f.Add([]byte(sampleKallsyms), uint64(0xffffffff81001900))
	f.Add([]byte("0000000000000000 T _text\n"), uint64(0))
	f.Fuzz(func(t *testing.T, data []byte, addr uint64) {
		ks, err := parseKallsyms(data)
		if err != nil {
			return
		}
		if name, _, ok := ks.lookup(addr); ok && name == "" {
			t.Fatalf("lookup(%#x) named nothing", addr)
		}
	})
}

// FuzzPclntab parses arbitrary bytes as a pclntab and its gofunc bytes, and
// looks up pc in it.
func FuzzPclntab(f *testing.F) {
	for _, tc := range []struct {
		go120 bool
		order binary.AppendByteOrder
	}{{true, binary.LittleEndian}, {false, binary.LittleEndian}, {true, binary.BigEndian}} {
		pcln, inl := synthPclntab(synthFuncs, tc.go120, tc.order)
		for _, pc := range []uint64{0x1000 + 35, 0x1000 + 120} {
			f.Add(pcln, inl, pc)
		}
	}
	// A Go 1.16 header, for the debug/gosym path.
	pcln, _ := synthPclntab(synthFuncs, true, binary.LittleEndian)
	binary.LittleEndian.PutUint32(pcln, go116Magic)
	f.Add(pcln, []byte(nil), uint64(0x1000))
	f.Fuzz(func(t *testing.T, pcln, inl []byte, pc uint64) {
		tab, err := newGoTable(pcln, 0x1000, inl)
		if errors.Is(err, errOldPclntab) {
			if old, err := newGosymTable(pcln, 0x1000); err == nil {
				old.lookup(nil, pc)
			}
			return
		}
		if err != nil {
			return
		}
		frames, ok := tab.lookup(nil, pc)
		if ok != (len(frames) > 0) || len(frames) > maxInlineDepth+1 {
			t.Fatalf("lookup(%#x): %d frames, ok=%v", pc, len(frames), ok)
		}
		for i := 0; i < tab.nfunc; i++ {
			tab.lookup(nil, 0x1000+uint64(tab.entryOff(i)))
		}
	})
}

// FuzzELF loads arbitrary bytes as an ELF file and symbolizes file offsets
// in it: build ID notes, segments, the pclntab search and the moduledata.
func FuzzELF(f *testing.F) {
	goELF, textOff := synthGoELF()
	f.Add(goELF, textOff+35)
	// A real native binary, where there is one.
	if b, err := os.ReadFile("/bin/true"); err == nil && len(b) < 1<<20 {
		f.Add(b, uint64(0x1000))
	}
	f.Fuzz(func(t *testing.T, data []byte, off uint64) {
		ef, err := elf.NewFile(bytes.NewReader(data))
		if err != nil {
			return
		}
		buildID, key := identify(ef, fileID{path: "/fuzz", size: int64(len(data))})
		b, _, _ := loadBinary(ef, data, buildID, key)
		if b == nil {
			t.Fatal("no binary")
		}
		b.lookup(nil, off)
		for _, l := range b.loads {
			b.lookup(nil, l.offset)
		}
		if b.sizeBytes() < 0 {
			t.Fatal("negative size")
		}
	})
}

//go:build unix

package symbolize

import (
	"bytes"
	"debug/elf"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestMappedFileShrinks checks that a binary whose mapped file is cut
// short under the symbolizer (rewritten in place after its process
// exited) costs an unnamed frame and a cache entry, not a crash: reading
// the mapping past the file's new end faults.
func TestMappedFileShrinks(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "copy")
	copyFile(t, exe, path)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	data, release, err := mapFile(f, fi.Size())
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	ef, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		t.Skipf("test binary is not ELF: %v", err)
	}
	buildID, key := identify(ef, fileID{path: path, size: fi.Size()})
	b, keep, err := loadBinary(ef, data, buildID, key)
	if err != nil || !keep {
		t.Fatalf("load: keeps data %v, %v", keep, err)
	}
	b.release = release
	s := New(Options{})
	s.cache.add(b)

	// The file offset of this test's own code; Go test binaries are
	// not position-independent here, so the address is the ELF address.
	pc := uint64(reflect.ValueOf(TestMappedFileShrinks).Pointer())
	var off uint64
	for _, l := range b.loads {
		if l.exec && pc >= l.vaddr && pc-l.vaddr < l.filesz {
			off = pc - l.vaddr + l.offset
		}
	}
	if off == 0 {
		t.Skipf("pc %#x is in no executable segment (a position-independent test binary)", pc)
	}
	var frames []Frame
	var ok bool
	if !s.guarded(b, func() { frames, ok = b.lookup(nil, off) }) || !ok || frames[len(frames)-1].Function != "github.com/hearth-profiler/hearth/internal/agent/symbolize.TestMappedFileShrinks" {
		t.Fatalf("lookup before the cut: %v, %v", frames, ok)
	}

	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	// Other functions' entries, so that the lookup reads pages it has
	// not read before as well as those it has.
	faulted := false
	for _, l := range b.loads {
		if !l.exec {
			continue
		}
		for o := l.offset; o < l.offset+l.filesz; o += l.filesz / 64 {
			if !s.guarded(b, func() { b.lookup(nil, o) }) {
				faulted = true
				break
			}
		}
	}
	if !faulted {
		t.Fatal("no lookup faulted after the file was cut to nothing")
	}
	if s.cache.get(key) != nil {
		t.Error("the binary stayed cached after its mapping faulted")
	}
	if b.release != nil {
		t.Error("the faulted binary's mapping was not released")
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

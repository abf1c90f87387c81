package symbolize

import (
	"bytes"
	"debug/elf"
	"os"
	"os/exec"
	"testing"
)

// TestRawSymbols checks the in-place symbol table reader against
// debug/elf's, symbol for symbol, on the .symtab of a Go and a C program
// and on the .dynsym of the C one, of the C library and of a system
// program.
func TestRawSymbols(t *testing.T) {
	files := []string{"/lib/x86_64-linux-gnu/libc.so.6", "/lib/aarch64-linux-gnu/libc.so.6", "/bin/true", goProg(t, "go-plain")}
	if _, err := exec.LookPath("gcc"); err == nil {
		files = append(files, cProg(t, "c-nopie", "-no-pie"))
	}
	checked, symtabs := 0, 0
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		ef, err := elf.NewFile(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, typ := range []elf.SectionType{elf.SHT_SYMTAB, elf.SHT_DYNSYM} {
			var want []elf.Symbol
			if typ == elf.SHT_SYMTAB {
				want, _ = ef.Symbols()
			} else {
				want, _ = ef.DynamicSymbols()
			}
			raw, ok := symbolTable(ef, data, typ)
			if ok != (len(want) > 0) {
				t.Errorf("%s %v: found %v, debug/elf has %d symbols", path, typ, ok, len(want))
				continue
			}
			i := 0
			raw.each(func(s rawSymbol) bool {
				if i >= len(want) {
					t.Errorf("%s %v: more than debug/elf's %d symbols", path, typ, len(want))
					return false
				}
				w := want[i]
				if string(s.name) != w.Name || s.value != w.Value || s.size != w.Size || s.info != w.Info || s.section != w.Section {
					t.Errorf("%s %v symbol %d: got %q %#x size %d info %d section %d, want %q %#x size %d info %d section %d",
						path, typ, i, s.name, s.value, s.size, s.info, s.section, w.Name, w.Value, w.Size, w.Info, w.Section)
					return false
				}
				i++
				return true
			})
			if ok && i != len(want) {
				t.Errorf("%s %v: %d symbols, debug/elf has %d", path, typ, i, len(want))
			}
			if len(want) > 0 {
				checked++
				if typ == elf.SHT_SYMTAB {
					symtabs++
				}
			}
		}
	}
	if checked < 3 || symtabs == 0 {
		t.Fatalf("only %d symbol tables checked, %d of them .symtab", checked, symtabs)
	}
	// An address by name, as the Go loader asks for runtime.text; the
	// first of the names that is defined.
	for _, path := range files[:2] {
		data, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		ef, _ := elf.NewFile(bytes.NewReader(data))
		dyn, _ := ef.DynamicSymbols()
		var want uint64
		for _, s := range dyn {
			if s.Name == "malloc" && s.Section != elf.SHN_UNDEF {
				want = s.Value
				break
			}
		}
		raw, _ := symbolTable(ef, data, elf.SHT_DYNSYM)
		if got := raw.addr("no_such_symbol", "malloc"); got != want || got == 0 {
			t.Errorf("%s: addr(malloc) = %#x, want %#x", path, got, want)
		}
	}
}

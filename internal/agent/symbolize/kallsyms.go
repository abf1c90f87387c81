package symbolize

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"sort"
	"strings"
	"unsafe"
)

// kernelModule is the module name of frames in the core kernel image, as
// perf names it; frames in a loadable module carry the module's name.
const kernelModule = "[kernel.kallsyms]"

// maxKernelSymbolBytes bounds how far past its start an address may be and
// still count as inside a symbol. kallsyms has no sizes, so without a bound the
// last symbol of a region would claim every address above it.
const maxKernelSymbolBytes = 1 << 20

// kernelSymbols is the text part of /proc/kallsyms, sorted by address.
//
// A kernel lists some 100,000 text symbols. Kept as a string and a module
// string per symbol they took 11 MiB of heap; one string of all names and
// 16 bytes per symbol take under half that.
type kernelSymbols struct {
	syms    []kernelSymbol
	names   string   // every name, one after another
	modules []string // modules[0] is "", the core kernel
	// hidden is set when every address read as zero: kptr_restrict is on, or
	// the reader lacks CAP_SYSLOG, and the kernel shows names without places.
	hidden bool
}

// kernelSymbol is one symbol: its name is names[off:off+n].
type kernelSymbol struct {
	addr   uint64
	off    uint32
	n      uint16
	module uint16
}

// Bounds of the compact form, far above real tables: a name of up to 64 KiB,
// 4 GiB of names, 65,535 modules. A file beyond them is refused.
const (
	maxKallsymsName    = 1<<16 - 1
	maxKallsymsBytes   = 1<<32 - 1
	maxKallsymsModules = 1<<16 - 1
)

// parseKallsyms parses /proc/kallsyms. Lines look like
//
//	ffffffff81000000 T _text
//	ffffffffc0a01000 t ext4_fill_super	[ext4]
//
// Only code symbols (types t, T, w, W) are kept: kernel stacks hold code
// addresses, and data symbols between functions would shorten them.
func parseKallsyms(data []byte) (*kernelSymbols, error) {
	if len(data) > maxKallsymsBytes {
		return nil, fmt.Errorf("kallsyms: %d bytes is too large", len(data))
	}
	ks := &kernelSymbols{hidden: true, modules: []string{""}}
	seen := false
	moduleIDs := map[string]uint16{}
	var names strings.Builder
	for lineNo := 1; len(data) > 0; lineNo++ {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		f := bytes.Fields(line)
		if len(f) < 3 || len(f[1]) != 1 {
			return nil, fmt.Errorf("kallsyms line %d: want address, type and name", lineNo)
		}
		addr, err := parseHex(f[0])
		if err != nil {
			return nil, fmt.Errorf("kallsyms line %d: address: %w", lineNo, err)
		}
		seen = true
		if addr != 0 {
			ks.hidden = false
		}
		switch f[1][0] {
		case 't', 'T', 'w', 'W':
		default:
			continue
		}
		var module uint16
		if len(f) > 3 {
			m := f[3]
			if len(m) < 2 || m[0] != '[' || m[len(m)-1] != ']' {
				return nil, fmt.Errorf("kallsyms line %d: module %q is not in brackets", lineNo, m)
			}
			id, ok := moduleIDs[string(m[1:len(m)-1])]
			if !ok {
				if len(ks.modules) > maxKallsymsModules {
					return nil, fmt.Errorf("kallsyms line %d: more than %d modules", lineNo, maxKallsymsModules)
				}
				id = uint16(len(ks.modules))
				ks.modules = append(ks.modules, string(m[1:len(m)-1]))
				moduleIDs[ks.modules[id]] = id
			}
			module = id
		}
		name := f[2]
		if len(name) > maxKallsymsName {
			return nil, fmt.Errorf("kallsyms line %d: a name of %d bytes", lineNo, len(name))
		}
		ks.syms = append(ks.syms, kernelSymbol{addr: addr, off: uint32(names.Len()), n: uint16(len(name)), module: module})
		names.Write(name)
	}
	if !seen {
		ks.hidden = false
	}
	ks.names = names.String()
	ks.syms = slices.Clip(ks.syms)
	// Stable: of names sharing an address the first listed stays first.
	slices.SortStableFunc(ks.syms, func(a, b kernelSymbol) int { return cmp.Compare(a.addr, b.addr) })
	return ks, nil
}

// sizeBytes estimates the memory ks holds.
func (ks *kernelSymbols) sizeBytes() int64 {
	n := int64(cap(ks.syms))*int64(unsafe.Sizeof(kernelSymbol{})) + int64(len(ks.names))
	for _, m := range ks.modules {
		n += 16 + int64(len(m))
	}
	return n
}

// lookup returns the symbol holding addr.
func (ks *kernelSymbols) lookup(addr uint64) (name, module string, ok bool) {
	i := sort.Search(len(ks.syms), func(i int) bool { return ks.syms[i].addr > addr }) - 1
	if i < 0 || ks.hidden || addr-ks.syms[i].addr >= maxKernelSymbolBytes {
		return "", "", false
	}
	// Several names can share an address (_text and _stext); take the first
	// listed, as the kernel's own lookup does.
	for i > 0 && ks.syms[i-1].addr == ks.syms[i].addr {
		i--
	}
	s := ks.syms[i]
	return ks.names[s.off : s.off+uint32(s.n)], ks.modules[s.module], true
}

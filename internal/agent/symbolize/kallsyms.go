package symbolize

import (
	"bytes"
	"fmt"
	"sort"
)

// kernelModule is the module name of frames in the core kernel image, as
// perf names it; frames in a loadable module carry the module's name.
const kernelModule = "[kernel.kallsyms]"

// maxKernelSymbolBytes bounds how far past its start an address may be and
// still count as inside a symbol. kallsyms has no sizes, so without a bound the
// last symbol of a region would claim every address above it.
const maxKernelSymbolBytes = 1 << 20

// kernelSymbols is the text part of /proc/kallsyms, sorted by address.
type kernelSymbols struct {
	addrs   []uint64
	names   []string
	modules []string // "" for the core kernel
	// hidden is set when every address read as zero: kptr_restrict is on, or
	// the reader lacks CAP_SYSLOG, and the kernel shows names without places.
	hidden bool
}

// parseKallsyms parses /proc/kallsyms. Lines look like
//
//	ffffffff81000000 T _text
//	ffffffffc0a01000 t ext4_fill_super	[ext4]
//
// Only code symbols (types t, T, w, W) are kept: kernel stacks hold code
// addresses, and data symbols between functions would shorten them.
func parseKallsyms(data []byte) (*kernelSymbols, error) {
	ks := &kernelSymbols{hidden: true}
	seen := false
	modules := map[string]string{} // one string per module, not per symbol
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
		module := ""
		if len(f) > 3 {
			m := f[3]
			if len(m) < 2 || m[0] != '[' || m[len(m)-1] != ']' {
				return nil, fmt.Errorf("kallsyms line %d: module %q is not in brackets", lineNo, m)
			}
			module = modules[string(m[1:len(m)-1])]
			if module == "" {
				module = string(m[1 : len(m)-1])
				modules[module] = module
			}
		}
		ks.addrs = append(ks.addrs, addr)
		ks.names = append(ks.names, string(f[2]))
		ks.modules = append(ks.modules, module)
	}
	if !seen {
		ks.hidden = false
	}
	sort.Stable(byAddr{ks})
	return ks, nil
}

// sizeBytes estimates the memory ks holds.
func (ks *kernelSymbols) sizeBytes() int64 {
	n := int64(len(ks.addrs)) * (8 + 16 + 16)
	for _, name := range ks.names {
		n += int64(len(name))
	}
	return n
}

// byAddr sorts the three parallel slices of a kernelSymbols together.
type byAddr struct{ *kernelSymbols }

func (s byAddr) Len() int           { return len(s.addrs) }
func (s byAddr) Less(i, j int) bool { return s.addrs[i] < s.addrs[j] }
func (s byAddr) Swap(i, j int) {
	s.addrs[i], s.addrs[j] = s.addrs[j], s.addrs[i]
	s.names[i], s.names[j] = s.names[j], s.names[i]
	s.modules[i], s.modules[j] = s.modules[j], s.modules[i]
}

// lookup returns the symbol holding addr.
func (ks *kernelSymbols) lookup(addr uint64) (name, module string, ok bool) {
	i := sort.Search(len(ks.addrs), func(i int) bool { return ks.addrs[i] > addr }) - 1
	if i < 0 || ks.hidden || addr-ks.addrs[i] >= maxKernelSymbolBytes {
		return "", "", false
	}
	// Several names can share an address (_text and _stext); take the first
	// listed, as the kernel's own lookup does.
	for i > 0 && ks.addrs[i-1] == ks.addrs[i] {
		i--
	}
	return ks.names[i], ks.modules[i], true
}

package symbolize

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
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
	return readKallsymsFrom(bytes.NewReader(data))
}

// maxKallsymsLine bounds one line of kallsyms; real ones are under 600
// bytes (a 512-byte name, its address, type and module).
const maxKallsymsLine = 64 << 10

// readKallsymsFrom parses kallsyms from r line by line, as parseKallsyms:
// the file is some 6 MiB of text, which is not worth holding at once.
func readKallsymsFrom(r io.Reader) (*kernelSymbols, error) {
	ks := &kernelSymbols{hidden: true, modules: []string{""}}
	seen := false
	moduleIDs := map[string]uint16{}
	// Room for a typical kernel's symbols from the start, doubled when
	// short, and copied to their exact size at the end: append's growth of
	// a quarter at a time left 28 MiB of garbage per read of a 6 MiB file.
	names := make([]byte, 0, 4<<20)
	ks.syms = make([]kernelSymbol, 0, 1<<17)
	br := bufio.NewReaderSize(r, maxKallsymsLine)
	for lineNo := 1; ; lineNo++ {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("kallsyms line %d: longer than %d bytes", lineNo, maxKallsymsLine)
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("kallsyms line %d: %w", lineNo, err)
		}
		if len(line) == 0 && err != nil {
			break
		}
		var fields [5][]byte // a fifth field is not valid, but must not be ignored
		f := splitFields(fields[:0], line)
		if len(f) == 0 {
			continue
		}
		if len(f) < 3 || len(f) > 4 || len(f[1]) != 1 {
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
		if len(name) > maxKallsymsName || len(names)+len(name) > maxKallsymsBytes {
			return nil, fmt.Errorf("kallsyms line %d: a name of %d bytes, after %d bytes of names", lineNo, len(name), len(names))
		}
		if len(ks.syms) == cap(ks.syms) {
			ks.syms = slices.Grow(ks.syms, len(ks.syms))
		}
		if len(names)+len(name) > cap(names) {
			names = slices.Grow(names, max(len(names), len(name)))
		}
		ks.syms = append(ks.syms, kernelSymbol{addr: addr, off: uint32(len(names)), n: uint16(len(name)), module: module})
		names = append(names, name...)
	}
	if !seen {
		ks.hidden = false
	}
	ks.names = string(names)
	ks.syms = slices.Clone(ks.syms)
	// Stable: of names sharing an address the first listed stays first.
	slices.SortStableFunc(ks.syms, func(a, b kernelSymbol) int { return cmp.Compare(a.addr, b.addr) })
	return ks, nil
}

// splitFields appends the whitespace-separated fields of line to dst, up
// to cap(dst) of them: bytes.Fields without the allocation, which was most
// of the garbage of reading kallsyms (one slice per line).
func splitFields(dst [][]byte, line []byte) [][]byte {
	for i := 0; i < len(line) && len(dst) < cap(dst); {
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		j := i
		for j < len(line) && !isSpace(line[j]) {
			j++
		}
		if j > i {
			dst = append(dst, line[i:j])
		}
		i = j
	}
	return dst
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
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

package symbolize

import (
	"bytes"
	"fmt"
	"path"
	"sort"
	"strconv"
)

// A mapping is one executable line of /proc/PID/maps. Only executable
// mappings are kept: a return address anywhere else is not code, so it can
// only come from a broken frame-pointer chain.
type mapping struct {
	start, end uint64 // runtime addresses, end exclusive
	offset     uint64 // file offset of start
	path       string // as the process sees it, without " (deleted)"; "" when anonymous
	deleted    bool   // the file was unlinked (or replaced) after it was mapped
}

// module is the name a frame in this mapping carries: the base name of the
// file, or the kernel's pseudo-path ("[vdso]"), or "[anon]".
func (m *mapping) module() string {
	switch {
	case m.path == "":
		return "[anon]"
	case m.path[0] == '[':
		return m.path
	}
	return path.Base(m.path)
}

// fileOffset converts a runtime address inside m to an offset in the mapped file.
func (m *mapping) fileOffset(addr uint64) uint64 { return addr - m.start + m.offset }

const deletedSuffix = " (deleted)"

// parseMaps parses the text of /proc/PID/maps and returns its executable
// mappings sorted by start address. Lines look like
//
//	00400000-0049e000 r-xp 00000000 fe:00 1234    /usr/bin/prog
//
// where the path is absent for anonymous memory and may contain spaces.
func parseMaps(data []byte) ([]mapping, error) {
	var maps []mapping
	for lineNo := 1; len(data) > 0; lineNo++ {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		m, exec, err := parseMapsLine(line)
		if err != nil {
			return nil, fmt.Errorf("maps line %d: %w", lineNo, err)
		}
		if exec {
			maps = append(maps, m)
		}
	}
	// The kernel writes mappings in address order; sorting keeps lookups
	// correct even for input that is not.
	if !sort.SliceIsSorted(maps, func(i, j int) bool { return maps[i].start < maps[j].start }) {
		sort.Slice(maps, func(i, j int) bool { return maps[i].start < maps[j].start })
	}
	return maps, nil
}

func parseMapsLine(line []byte) (m mapping, exec bool, err error) {
	var f [5][]byte
	rest := line
	for i := range f {
		rest = bytes.TrimLeft(rest, " \t")
		end := bytes.IndexAny(rest, " \t")
		if end < 0 {
			end = len(rest)
		}
		f[i], rest = rest[:end], rest[end:]
		if len(f[i]) == 0 {
			return m, false, fmt.Errorf("want 5 fields before the path, got %d", i)
		}
	}
	lo, hi, ok := bytes.Cut(f[0], []byte{'-'})
	if !ok {
		return m, false, fmt.Errorf("address range %q has no '-'", f[0])
	}
	if m.start, err = parseHex(lo); err != nil {
		return m, false, fmt.Errorf("range start: %w", err)
	}
	if m.end, err = parseHex(hi); err != nil {
		return m, false, fmt.Errorf("range end: %w", err)
	}
	if m.end <= m.start {
		return m, false, fmt.Errorf("empty address range %q", f[0])
	}
	if len(f[1]) != 4 {
		return m, false, fmt.Errorf("permissions %q: want 4 characters", f[1])
	}
	if m.offset, err = parseHex(f[2]); err != nil {
		return m, false, fmt.Errorf("offset: %w", err)
	}
	p := string(bytes.TrimLeft(rest, " \t"))
	if len(p) > len(deletedSuffix) && p[len(p)-len(deletedSuffix):] == deletedSuffix {
		p, m.deleted = p[:len(p)-len(deletedSuffix)], true
	}
	m.path = p
	return m, f[1][2] == 'x', nil
}

func parseHex(b []byte) (uint64, error) {
	v, err := strconv.ParseUint(string(b), 16, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a hexadecimal number", b)
	}
	return v, nil
}

// Package profiletest holds test fixtures and helpers shared by Hearth's
// packages: a store with an ingester on a temporary directory, and stacks
// as pprof tools print them.
package profiletest

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	gpprof "github.com/google/pprof/profile"
	"github.com/hearth-profiler/hearth/internal/storage"
)

// Stacks maps a stack, frames joined by ";" from the root, to its value.
type Stacks map[string]int64

// Raw is a profile as `go tool pprof -raw` prints it.
type Raw struct {
	SampleTypes []string // type/unit
	// Stacks holds one Stacks per sample type, with frames named as
	// FrameName names them. Zero values are left out.
	Stacks []Stacks
}

type rawLine struct{ fn string }

type rawLoc struct {
	addr    uint64
	mapping int
	lines   []rawLine
}

type rawMapping struct {
	start, offset uint64
	file          string
}

var (
	reLoc     = regexp.MustCompile(`^\s*(\d+): 0x([0-9a-f]+) M=(\d+)\s?(.*)$`)
	reMapping = regexp.MustCompile(`^(\d+): 0x([0-9a-f]+)/0x([0-9a-f]+)/0x([0-9a-f]+)\s*(\S*)`)
	reSample  = regexp.MustCompile(`^\s*([-\d\s]+):\s*([\d\s]*)$`)
)

// PprofRaw runs `go tool pprof -raw -symbolize=none` on file and parses
// what it prints: an independent reading of the profile to check Hearth
// against.
func PprofRaw(tb testing.TB, file string) *Raw {
	tb.Helper()
	cmd := exec.Command("go", "tool", "pprof", "-raw", "-symbolize=none", file)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("go tool pprof -raw %s: %v\n%s", file, err, stderr.String())
	}
	r, err := parseRaw(out)
	if err != nil {
		tb.Fatalf("parse go tool pprof -raw %s: %v", file, err)
	}
	return r
}

func parseRaw(out []byte) (*Raw, error) {
	type sample struct {
		vals []int64
		locs []int
	}
	var samples []sample
	locs := map[int]*rawLoc{}
	mappings := map[int]rawMapping{}
	r := &Raw{}
	section := ""
	var cur *rawLoc
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "Samples:":
			section = "samples"
			continue
		case line == "Locations":
			section = "locations"
			continue
		case line == "Mappings":
			section = "mappings"
			continue
		}
		switch section {
		case "samples":
			if r.SampleTypes == nil {
				for _, f := range strings.Fields(line) {
					r.SampleTypes = append(r.SampleTypes, strings.TrimSuffix(f, "[dflt]"))
				}
				continue
			}
			m := reSample.FindStringSubmatch(line)
			if m == nil {
				continue // a label line such as "bytes:[524288]"
			}
			var s sample
			for _, f := range strings.Fields(m[1]) {
				v, _ := strconv.ParseInt(f, 10, 64)
				s.vals = append(s.vals, v)
			}
			for _, f := range strings.Fields(m[2]) {
				id, _ := strconv.Atoi(f)
				s.locs = append(s.locs, id)
			}
			samples = append(samples, s)
		case "locations":
			if m := reLoc.FindStringSubmatch(line); m != nil {
				id, _ := strconv.Atoi(m[1])
				addr, _ := strconv.ParseUint(m[2], 16, 64)
				mid, _ := strconv.Atoi(m[3])
				cur = &rawLoc{addr: addr, mapping: mid}
				locs[id] = cur
				if fn := lineFunc(m[4]); m[4] != "" {
					cur.lines = append(cur.lines, rawLine{fn})
				}
			} else if cur != nil && strings.TrimSpace(line) != "" {
				cur.lines = append(cur.lines, rawLine{lineFunc(strings.TrimSpace(line))})
			}
		case "mappings":
			if m := reMapping.FindStringSubmatch(line); m != nil {
				id, _ := strconv.Atoi(m[1])
				start, _ := strconv.ParseUint(m[2], 16, 64)
				off, _ := strconv.ParseUint(m[4], 16, 64)
				mappings[id] = rawMapping{start: start, offset: off, file: m[5]}
			}
		}
	}
	if len(r.SampleTypes) == 0 {
		return nil, fmt.Errorf("no sample types in output")
	}
	r.Stacks = make([]Stacks, len(r.SampleTypes))
	for i := range r.Stacks {
		r.Stacks[i] = Stacks{}
	}
	for _, s := range samples {
		var frames []string
		for i := len(s.locs) - 1; i >= 0; i-- {
			l := locs[s.locs[i]]
			if l == nil {
				return nil, fmt.Errorf("sample refers to unknown location %d", s.locs[i])
			}
			if len(l.lines) == 0 {
				m, ok := mappings[l.mapping]
				frames = append(frames, FrameName("", l.addr, m.start, m.offset, m.file, ok))
			}
			for j := len(l.lines) - 1; j >= 0; j-- {
				frames = append(frames, storage.WithoutGoShapes(l.lines[j].fn))
			}
		}
		key := strings.Join(frames, ";")
		for i, v := range s.vals {
			if v != 0 {
				r.Stacks[i][key] += v
			}
		}
	}
	for _, st := range r.Stacks {
		for k, v := range st {
			if v == 0 {
				delete(st, k)
			}
		}
	}
	return r, nil
}

// lineFunc takes the function name from a -raw line "name file:line:col s=N".
func lineFunc(s string) string {
	f := strings.Fields(s)
	if len(f) >= 3 && strings.HasPrefix(f[len(f)-1], "s=") {
		return strings.Join(f[:len(f)-2], " ")
	}
	return s
}

// FrameName is the name Hearth gives a frame: the function name (without
// Go's shape type arguments, storage.WithoutGoShapes, as every function
// name this package reads), else the mapped file's base name and the
// offset in it, else the address.
func FrameName(fn string, addr, mapStart, mapOffset uint64, mapFile string, hasMapping bool) string {
	if fn != "" {
		return storage.WithoutGoShapes(fn)
	}
	if hasMapping && mapFile != "" {
		return filepath.Base(mapFile) + "+0x" + strconv.FormatUint(addr-mapStart+mapOffset, 16)
	}
	return "0x" + strconv.FormatUint(addr, 16)
}

// ProfileStacks reads the stacks of sample type index i of p, named as
// FrameName names them.
func ProfileStacks(p *gpprof.Profile, i int) Stacks {
	st := Stacks{}
	for _, s := range p.Sample {
		if s.Value[i] == 0 {
			continue
		}
		var frames []string
		for j := len(s.Location) - 1; j >= 0; j-- {
			l := s.Location[j]
			if len(l.Line) == 0 {
				var start, off uint64
				var file string
				if l.Mapping != nil {
					start, off, file = l.Mapping.Start, l.Mapping.Offset, l.Mapping.File
				}
				frames = append(frames, FrameName("", l.Address, start, off, file, l.Mapping != nil))
			}
			for k := len(l.Line) - 1; k >= 0; k-- {
				name := ""
				if l.Line[k].Function != nil {
					name = storage.WithoutGoShapes(l.Line[k].Function.Name)
				}
				frames = append(frames, name)
			}
		}
		st[strings.Join(frames, ";")] += s.Value[i]
	}
	for k, v := range st {
		if v == 0 {
			delete(st, k)
		}
	}
	return st
}

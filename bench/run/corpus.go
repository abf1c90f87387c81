package main

import (
	"bytes"
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/google/pprof/profile"
)

// corpusFile is one profile of the corpus, parsed, with what it stores.
type corpusFile struct {
	name    string
	gzBytes int
	data    []byte // the file as recorded
	samples int    // pprof samples
	// rows counts, summed over sample types, the distinct stacks with a
	// non-zero value of that type: the sample rows a store keeps for the
	// profile if it keeps one row per (stack, type).
	rows int
	// stacks counts the distinct stacks with a non-zero value of any
	// type: the rows of a store that keeps all types of a stack in one.
	stacks int
	// cpuNanos is the sum of the cpu/nanoseconds values; 0 without them.
	cpuNanos int64
}

// corpus is the recorded profiles, CPU and heap of the same windows.
type corpus struct {
	dir       string
	cpu, heap []*corpusFile
}

func loadCorpus(dir string) (*corpus, error) {
	c := &corpus{dir: dir}
	for _, kind := range []string{"cpu", "heap"} {
		names, err := filepath.Glob(filepath.Join(dir, kind+"-*.pb.gz"))
		if err != nil {
			return nil, err
		}
		slices.Sort(names)
		for _, name := range names {
			f, err := readCorpusFile(name)
			if err != nil {
				return nil, err
			}
			if kind == "cpu" {
				c.cpu = append(c.cpu, f)
			} else {
				c.heap = append(c.heap, f)
			}
		}
	}
	if len(c.cpu) == 0 || len(c.cpu) != len(c.heap) {
		return nil, fmt.Errorf("corpus %s: %d CPU and %d heap profiles; want the same number, at least one (go run ./bench/corpusgen)", dir, len(c.cpu), len(c.heap))
	}
	return c, nil
}

func readCorpusFile(name string) (*corpusFile, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	p, err := profile.ParseData(b)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", name, err)
	}
	f := &corpusFile{name: filepath.Base(name), gzBytes: len(b), data: b, samples: len(p.Sample)}
	// Sum values per stack (location IDs and sample labels), then count.
	sums := map[string][]int64{}
	var key strings.Builder
	for _, s := range p.Sample {
		key.Reset()
		for _, l := range s.Location {
			key.WriteString(strconv.FormatUint(l.ID, 36))
			key.WriteByte(',')
		}
		for _, k := range sortedKeys(s.Label) {
			fmt.Fprintf(&key, ";%s=%q", k, s.Label[k])
		}
		for _, k := range sortedKeys(s.NumLabel) {
			fmt.Fprintf(&key, ";%s=%v", k, s.NumLabel[k])
		}
		v := sums[key.String()]
		if v == nil {
			v = make([]int64, len(p.SampleType))
			sums[key.String()] = v
		}
		for i, x := range s.Value {
			v[i] += x
		}
	}
	for _, v := range sums {
		nonZero := false
		for _, x := range v {
			if x != 0 {
				f.rows++
				nonZero = true
			}
		}
		if nonZero {
			f.stacks++
		}
	}
	for i, st := range p.SampleType {
		if st.Type == "cpu" && st.Unit == "nanoseconds" {
			for _, s := range p.Sample {
				f.cpuNanos += s.Value[i]
			}
		}
	}
	return f, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// stamp is one body to prepare: a corpus profile re-stamped to a window.
type stamp struct {
	file       *corpusFile
	fromUnix   int64 // the window's start, Unix seconds
	windowSecs int64
}

// encodeBodies returns, for each distinct stamp, the corpus profile with
// TimeNanos set to the window's start and DurationNanos to its length,
// gzipped as runtime/pprof writes it. It uses every core: this runs before
// the clock starts.
func encodeBodies(stamps []stamp) (map[stamp][]byte, error) {
	var todo []stamp
	bodies := make(map[stamp][]byte)
	for _, s := range stamps {
		if _, ok := bodies[s]; !ok {
			bodies[s] = nil
			todo = append(todo, s)
		}
	}
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
		next     = make(chan stamp)
	)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			// Each worker parses its own copy of each profile once and
			// changes only its times.
			parsed := map[*corpusFile]*profile.Profile{}
			for s := range next {
				p := parsed[s.file]
				if p == nil {
					var err error
					if p, err = profile.ParseData(s.file.data); err != nil {
						mu.Lock()
						firstErr = cmp.Or(firstErr, fmt.Errorf("parse %s: %w", s.file.name, err))
						mu.Unlock()
						continue
					}
					parsed[s.file] = p
				}
				p.TimeNanos = s.fromUnix * 1e9
				p.DurationNanos = s.windowSecs * 1e9
				var b bytes.Buffer
				if err := p.Write(&b); err != nil {
					mu.Lock()
					firstErr = cmp.Or(firstErr, fmt.Errorf("encode %s: %w", s.file.name, err))
					mu.Unlock()
					continue
				}
				mu.Lock()
				bodies[s] = b.Bytes()
				mu.Unlock()
			}
		})
	}
	for _, s := range todo {
		next <- s
	}
	close(next)
	wg.Wait()
	return bodies, firstErr
}

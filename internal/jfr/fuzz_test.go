package jfr

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/hearth-profiler/hearth/internal/ingest"
)

// panicSite returns the function a panic was raised in, from the stack
// that debug.Stack printed in the deferred recover.
func panicSite(stack []byte) string {
	lines := strings.Split(string(stack), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "panic(") && i+2 < len(lines) {
			// The frame after panic, skipping the runtime's own (index
			// errors, nil dereferences are raised there).
			for j := i + 2; j < len(lines); j += 2 {
				if !strings.HasPrefix(lines[j], "runtime.") {
					return lines[j]
				}
			}
		}
	}
	return ""
}

// FuzzJFR feeds arbitrary recordings and labels snapshots to Requests: it
// must return valid profiles or an *ingest.InputError, never panic, and any
// panic it contains must come from the third-party parser, not from Hearth.
func FuzzJFR(f *testing.F) {
	rec, _ := demo(f)
	plain, err := ingest.Gunzip(rec, ingest.DefaultMaxDecompressedBytes, nil, "seed")
	if err != nil {
		f.Fatal(err)
	}
	snap := appendSnapshot(nil, map[int64]map[int64]int64{1: {2: 3}}, map[int64]string{2: "k", 3: "v"})
	f.Add(plain, snap)
	f.Add(rec, []byte(nil))
	f.Add(plain[:chunkHeaderSize+64], []byte(nil))
	f.Add([]byte("FLR\x00"), snap)
	var site string
	panicked = func(_ any, stack []byte) { site = panicSite(stack) }
	f.Cleanup(func() { panicked = nil })
	check := func(t *testing.T, rec, labels []byte) {
		site = ""
		rs, err := Requests(&ingest.Request{Name: "fuzz", From: 1, SampleRate: 100}, rec, labels)
		if site != "" && !strings.HasPrefix(site, "github.com/grafana/jfr-parser/") {
			t.Fatalf("panic in %s", site)
		}
		if err != nil {
			var ie *ingest.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("error %v is not an input error", err)
			}
			return
		}
		for _, r := range rs {
			if err := r.Parsed.CheckValid(); err != nil {
				t.Fatalf("%s: invalid profile: %v", r.NameKind, err)
			}
			var buf bytes.Buffer
			if err := r.Parsed.Write(&buf); err != nil {
				t.Fatalf("%s: %v", r.NameKind, err)
			}
		}
	}
	f.Fuzz(func(t *testing.T, rec, labels []byte) {
		check(t, rec, labels)
		// Malformed labels stop a request before the recording is read:
		// read the recording alone too, so that the fuzzer explores it.
		if len(labels) > 0 {
			check(t, rec, nil)
		}
	})
}

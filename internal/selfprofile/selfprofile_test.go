package selfprofile

import (
	"context"
	"sync"
	"testing"
	"time"

	gpprof "github.com/google/pprof/profile"

	"github.com/hearth-profiler/hearth/internal/ingest"
)

// TestFirstWindowIsShort checks that a server with a long interval still
// stores its first CPU, heap and goroutine profiles after FirstWindow, and
// that they are profiles of this process over that window.
func TestFirstWindowIsShort(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var got []*ingest.Request
	arrived := make(chan struct{}, 8)
	sink := func(_ context.Context, r *ingest.Request) error {
		mu.Lock()
		got = append(got, r)
		mu.Unlock()
		arrived <- struct{}{}
		return nil
	}
	start := time.Now()
	done := make(chan struct{})
	go func() {
		Run(ctx, "hearth", time.Hour, sink, nil)
		close(done)
	}()
	for range 3 {
		select {
		case <-arrived:
		case <-time.After(FirstWindow + 20*time.Second):
			t.Fatalf("after %s, %d self profiles of the first window arrived, want 3", time.Since(start), len(got))
		}
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	first := got[0]
	if d := time.Duration(first.Until - first.From); d < FirstWindow || d > FirstWindow+10*time.Second {
		t.Errorf("first window spans %s, want about %s", d, FirstWindow)
	}
	var types []string
	for _, r := range got[:3] {
		if r.Name != "hearth{service_name=hearth}" || r.Format != "pprof" {
			t.Errorf("request named %q, format %q", r.Name, r.Format)
		}
		p, err := gpprof.ParseData(r.Profile)
		if err != nil {
			t.Fatalf("self profile: %v", err)
		}
		types = append(types, p.SampleType[len(p.SampleType)-1].Type)
	}
	want := []string{"cpu", "inuse_space", "goroutine"}
	for i := range want {
		if types[i] != want[i] {
			t.Errorf("first window's profiles have sample types %v, want %v", types, want)
			break
		}
	}
}

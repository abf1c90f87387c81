// Package selfprofile profiles the running process with runtime/pprof and
// hands the profiles to a sink, so that Hearth shows its own CPU, memory
// and goroutines from the moment it starts.
package selfprofile

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"runtime/pprof"
	"time"

	"github.com/hearth-profiler/hearth/internal/ingest"
)

// Sink stores one profile.
type Sink func(ctx context.Context, r *ingest.Request) error

// FirstWindow bounds the first window, so that a new server has its own
// profiles to show within seconds rather than after a whole interval.
const FirstWindow = 2 * time.Second

// Run profiles the process in windows of interval until ctx is done; the
// first window lasts at most FirstWindow. Each window yields a CPU profile,
// and at its end a heap and a goroutine profile, named
// app{service_name=service}. Windows follow each other, so CPU profiles
// cover the process's time end to end.
func Run(ctx context.Context, service string, interval time.Duration, sink Sink, logger *slog.Logger) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	name := service + "{service_name=" + service + "}"
	var buf bytes.Buffer
	window := min(interval, FirstWindow)
	for ctx.Err() == nil {
		start := time.Now()
		buf.Reset()
		cpuOn := pprof.StartCPUProfile(&buf) == nil
		if !cpuOn {
			// Someone else holds the CPU profiler (a /debug/pprof/profile
			// request); skip CPU this window.
			logger.Debug("cpu profiler busy")
		}
		select {
		case <-ctx.Done():
		case <-time.After(window):
		}
		window = interval
		if cpuOn {
			pprof.StopCPUProfile()
		}
		end := time.Now()
		// A profile cut short by shutdown is still stored: its window is
		// real, and dropping it would lose the last seconds.
		push := func(kind string, data []byte) {
			r := &ingest.Request{
				Name: name, Format: "pprof", SpyName: "hearth",
				From: start.UnixNano(), Until: end.UnixNano(),
				Profile: data,
			}
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if err := sink(sctx, r); err != nil {
				logger.Warn("store self profile", "kind", kind, "err", err)
			}
		}
		if cpuOn && buf.Len() > 0 {
			push("cpu", bytes.Clone(buf.Bytes()))
		}
		for _, kind := range []string{"heap", "goroutine"} {
			data, err := lookup(kind)
			if err != nil {
				logger.Warn("self profile", "kind", kind, "err", err)
				continue
			}
			push(kind, data)
		}
	}
}

func lookup(kind string) ([]byte, error) {
	p := pprof.Lookup(kind)
	if p == nil {
		return nil, fmt.Errorf("no %s profile", kind)
	}
	var b bytes.Buffer
	if err := p.WriteTo(&b, 0); err != nil {
		return nil, fmt.Errorf("write %s profile: %w", kind, err)
	}
	return b.Bytes(), nil
}

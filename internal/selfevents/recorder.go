// Package selfevents makes Hearth describe its own work as events in its
// own store, the way selfprofile makes it profile itself: each HTTP and
// gRPC request it serves becomes a span, and each of its log records an
// event (a unit of work when the record carries its duration, as "block
// written", "compaction done" and "scraped" do; a log line otherwise). A
// new server thus has events to explore from its first request.
//
// A Recorder buffers the events and hands them to a sink (storage, under
// the default tenant) once a second, in one write: recording a request
// costs an event in memory, not a write to the log.
package selfevents

import (
	"context"
	"crypto/rand"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hearth-profiler/hearth/internal/events"
)

// Sink stores a batch of events.
type Sink func(ctx context.Context, evs []events.Event) error

// Service is the service name of Hearth's own events.
const Service = "hearth"

// maxBuffered bounds the events waiting for the next flush: past it, new
// ones are dropped and counted, so that a sink that cannot keep up costs
// bounded memory.
const maxBuffered = 20000

// Recorder collects Hearth's own events. It is safe for concurrent use;
// the zero value is not, use New.
type Recorder struct {
	mu      sync.Mutex
	buf     []events.Event
	dropped atomic.Int64
	stored  atomic.Int64
	// resource are the attributes every event carries.
	resource []events.Attr
}

// New returns a Recorder whose events carry version and the host's name.
func New(version string) *Recorder {
	host, _ := os.Hostname()
	r := &Recorder{resource: []events.Attr{
		{Key: "resource.host.name", Value: events.String(host)},
		{Key: "resource.process.pid", Value: events.Int(int64(os.Getpid()))},
		{Key: "resource.service.version", Value: events.String(version)},
	}}
	return r
}

// Record adds e, giving it the service and resource attributes.
func (r *Recorder) Record(e events.Event) {
	if r == nil {
		return
	}
	e.Service = Service
	e.Attrs = append(e.Attrs, r.resource...)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.buf) >= maxBuffered {
		r.dropped.Add(1)
		return
	}
	r.buf = append(r.buf, e)
}

// Dropped counts the events dropped because the buffer was full, and
// Stored those handed to the sink without error.
func (r *Recorder) Dropped() int64 { return r.dropped.Load() }

// Stored counts the events the sink took.
func (r *Recorder) Stored() int64 { return r.stored.Load() }

// Run hands the buffered events to sink every interval until ctx is
// done, then once more. A failed batch is dropped, not retried: these
// are Hearth's notes about itself, and retrying them against a full disk
// would only add to the load. logger must not be one that records into r.
func (r *Recorder) Run(ctx context.Context, interval time.Duration, sink Sink, logger *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastErr time.Time
	flush := func(ctx context.Context) {
		r.mu.Lock()
		batch := r.buf
		r.buf = nil
		r.mu.Unlock()
		if len(batch) == 0 {
			return
		}
		if err := sink(ctx, batch); err != nil {
			r.dropped.Add(int64(len(batch)))
			if time.Since(lastErr) > time.Minute {
				logger.Warn("store Hearth's own events", "events", len(batch), "err", err)
				lastErr = time.Now()
			}
			return
		}
		r.stored.Add(int64(len(batch)))
	}
	for {
		select {
		case <-ctx.Done():
			flush(context.WithoutCancel(ctx))
			return
		case <-t.C:
			flush(ctx)
		}
	}
}

// span is the event of a request in progress, which log records and
// handlers made while serving it add to.
type span struct {
	mu    sync.Mutex
	trace events.TraceID
	id    events.SpanID
	attrs []events.Attr
}

type spanKey struct{}

func withSpan(ctx context.Context, s *span) context.Context {
	return context.WithValue(ctx, spanKey{}, s)
}

func spanOf(ctx context.Context) *span {
	s, _ := ctx.Value(spanKey{}).(*span)
	return s
}

// Add adds attributes to the event of the request ctx serves, if it is
// being recorded: what only the handler knows (the service a profile is
// for, the events a query read). Keys take the "span." scope.
func Add(ctx context.Context, attrs ...events.Attr) {
	s := spanOf(ctx)
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range attrs {
		a.Key = events.ScopeSpan + a.Key
		s.attrs = append(s.attrs, a)
	}
}

func randomTraceID() events.TraceID {
	var id events.TraceID
	rand.Read(id[:])
	return id
}

func randomSpanID() events.SpanID {
	var id events.SpanID
	rand.Read(id[:])
	return id
}

// Package jfr turns Java Flight Recorder recordings into ingest requests:
// what the Pyroscope Java SDK uploads to /ingest with format=jfr (a
// recording written by async-profiler or by the JDK's own profiler, and a
// snapshot of the dynamic labels its samples refer to).
//
// One recording holds several kinds of events at once; each kind becomes a
// profile of its own, named as Pyroscope names it:
//
//	event                              profile type
//	jdk.ExecutionSample                process_cpu:cpu:nanoseconds:cpu:nanoseconds
//	profiler.WallClockSample           wall:wall:nanoseconds:wall:nanoseconds
//	jdk.ObjectAllocationInNewTLAB      memory:alloc_in_new_tlab_objects:count:space:bytes (and _bytes)
//	jdk.ObjectAllocationOutsideTLAB    memory:alloc_outside_tlab_objects:count:space:bytes (and _bytes)
//	jdk.ObjectAllocationSample         memory:alloc_sample_objects:count:space:bytes (and _bytes)
//	jdk.JavaMonitorEnter               mutex:contentions:count:mutex:count (and delay)
//	jdk.ThreadPark                     block:contentions:count:block:count (and delay)
//	profiler.LiveObject                objects:live:count:objects:count
//	profiler.Malloc                    malloc_objects:malloc_objects:count:: (and malloc_bytes)
//
// The last two differ from Pyroscope's names (memory:live:count:objects:count,
// memory:malloc_objects:count::): the requests do say "memory" in NameKind,
// but the ingest path names pprof types by their period or sample type. The
// lock profiles say which they are in Contention: both hold contentions and
// delay.
//
// CPU and wall samples are worth the sampling period of the upload
// (1e9/sampleRate nanoseconds each); lock delays are converted from the
// recording's ticks to nanoseconds. The dynamic labels of a sample's context
// become series labels, so that a profile is split by them as Pyroscope
// splits it; span IDs and names stay on the samples (profile_id, span_name).
package jfr

import (
	"context"
	"runtime/debug"

	"github.com/hearth-profiler/hearth/internal/ingest"
	"github.com/hearth-profiler/hearth/internal/labels"
)

// DefaultSampleRate is the sampling rate, in Hz, of an upload that gives
// none: Pyroscope's default, and the Java SDK's (a 10 ms interval).
const DefaultSampleRate = 100

// stcNotCumulative says that JFR's lock profiles count events of the
// recording only: the ingest path would otherwise take contentions and delay
// for Go's counters since process start and store differences.
var stcNotCumulative = []byte(`{"contentions":{},"delay":{}}`)

// panicked, when set, sees every recovered panic with its stack: the fuzz
// test tells the parser's panics, which Requests exists to contain, from
// Hearth's own, which are bugs.
var panicked func(v any, stack []byte)

// Requests decodes a recording (gzipped or not) and the labels snapshot
// that came with it (gzipped or not; nil when there was none) into one
// request per profile type and series, each a copy of base (name, times,
// sample rate, spy name) with Parsed set. A recording without samples gives
// no request. An *ingest.InputError says why the input was refused.
//
// The JFR parser is third-party code reading untrusted bytes: a panic in it
// is recovered and reported as malformed input.
//
// Decompression is bounded by ingest.DefaultMaxDecompressedBytes; servers
// use RequestsWithin.
func Requests(base *ingest.Request, recording, labelSnapshot []byte) (rs []*ingest.Request, err error) {
	return RequestsWithin(context.Background(), base, recording, labelSnapshot, ingest.DefaultMaxDecompressedBytes)
}

// RequestsWithin is Requests with the recording and the labels snapshot
// decompressing to at most maxBytes together (the ingest path's one
// decompression limit), and what they decompress to counted in the lease
// of ctx (ingest.LeaseOf).
func RequestsWithin(ctx context.Context, base *ingest.Request, recording, labelSnapshot []byte, maxBytes int64) (rs []*ingest.Request, err error) {
	defer func() {
		if r := recover(); r != nil {
			if panicked != nil {
				panicked(r, debug.Stack())
			}
			rs, err = nil, ingest.BadData("jfr: malformed recording (the parser failed: %v)", r)
		}
	}()
	lease := ingest.LeaseOf(ctx)
	rec, err := ingest.Gunzip(recording, maxBytes, lease, "jfr recording")
	if err != nil {
		return nil, err
	}
	if len(rec) == 0 {
		return nil, ingest.BadData("jfr: the recording is empty")
	}
	var snap *labelsSnapshot
	if len(labelSnapshot) > 0 {
		// What is left of the limit: one request decompresses to at most
		// maxBytes in all.
		left := maxBytes - int64(len(rec))
		if left <= 0 {
			return nil, ingest.DecompressedTooLarge("jfr recording and labels", maxBytes)
		}
		b, err := ingest.Gunzip(labelSnapshot, left, lease, "jfr labels")
		if err != nil {
			return nil, err
		}
		if snap, err = parseLabelsSnapshot(b); err != nil {
			return nil, ingest.BadData("jfr labels: %v", err)
		}
	}
	if err := checkConstantPools(rec); err != nil {
		return nil, ingest.BadData("jfr: %v", err)
	}
	rate := base.SampleRate
	if rate <= 0 {
		rate = DefaultSampleRate
	}
	c := newConverter(rec, snap, max(1e9/rate, 1))
	if err := c.run(); err != nil {
		return nil, ingest.BadData("jfr: %v", err)
	}
	return c.requests(base), nil
}

// requests turns the converter's profiles into ingest requests.
func (c *converter) requests(base *ingest.Request) []*ingest.Request {
	out := make([]*ingest.Request, 0, len(c.order))
	for _, b := range c.order {
		p := b.prof
		p.TimeNanos = base.From
		if base.Until > base.From && base.From > 0 {
			p.DurationNanos = base.Until - base.From
		}
		ls := b.ctx.series
		if c.event != "" {
			ls = labels.New(append(ls.List(), labels.Label{Name: labelEvent, Value: c.event})...)
		}
		r := &ingest.Request{
			Name:            base.Name,
			Format:          "pprof",
			From:            base.From,
			Until:           base.Until,
			SampleRate:      base.SampleRate,
			SpyName:         base.SpyName,
			Units:           base.Units,
			AggregationType: base.AggregationType,
			Labels:          ls,
			NameKind:        kindSpecs[b.kind].name,
			Parsed:          p,
		}
		switch b.kind {
		case kindLock:
			r.SampleTypeConfig, r.Contention = stcNotCumulative, ingest.ContentionMutex
		case kindPark:
			r.SampleTypeConfig, r.Contention = stcNotCumulative, ingest.ContentionBlock
		}
		out = append(out, r)
	}
	return out
}

package selfevents

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/hearth-profiler/hearth/internal/events"
)

// LogHandler returns a slog.Handler that passes records to next and
// records them as events: a record with a "dur" attribute is a unit of
// work that took that long and ended when it was logged ("block
// written", "compaction done", "scraped"), at any level; other records
// of level Info and above are log lines, events without a duration. A
// record's attributes become span attributes, "err" the status message
// of an error. Records logged while serving a request join its trace.
func (r *Recorder) LogHandler(next slog.Handler) slog.Handler {
	if r == nil {
		return next
	}
	return &logHandler{rec: r, next: next}
}

type logHandler struct {
	rec    *Recorder
	next   slog.Handler
	attrs  []slog.Attr // from WithAttrs, keys already prefixed by groups
	prefix string      // the groups of WithGroup, dot-joined, with a trailing dot
}

func (h *logHandler) Enabled(ctx context.Context, l slog.Level) bool {
	// Units of work are logged at debug ("scraped"): they must reach
	// Handle even when the log shows only info.
	return l >= slog.LevelDebug || h.next.Enabled(ctx, l)
}

func (h *logHandler) Handle(ctx context.Context, rec slog.Record) error {
	var err error
	if h.next.Enabled(ctx, rec.Level) {
		err = h.next.Handle(ctx, rec)
	}
	var dur time.Duration
	hasDur := false
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == "dur" {
			if d, ok := a.Value.Any().(time.Duration); ok {
				dur, hasDur = d, true
			}
		}
		return true
	})
	if !hasDur && rec.Level < slog.LevelInfo {
		return err
	}
	e := events.Event{Start: rec.Time.UnixNano(), Name: rec.Message, Kind: events.KindInternal}
	if hasDur {
		e.Start -= int64(dur)
		e.Duration = int64(dur)
	} else {
		e.Kind = events.KindUnspecified
		e.Attrs = append(e.Attrs, events.Attr{Key: "span.severity", Value: events.String(rec.Level.String())})
	}
	if s := spanOf(ctx); s != nil {
		e.TraceID, e.ParentID, e.SpanID = s.trace, s.id, randomSpanID()
	}
	add := func(key string, v slog.Value) {
		e.Attrs = append(e.Attrs, events.Attr{Key: events.ScopeSpan + key, Value: eventValue(v.Resolve())})
	}
	var addGroup func(prefix string, attrs []slog.Attr)
	addGroup = func(prefix string, attrs []slog.Attr) {
		for _, a := range attrs {
			if a.Value.Kind() == slog.KindGroup {
				addGroup(prefix+a.Key+".", a.Value.Group())
				continue
			}
			add(prefix+a.Key, a.Value)
		}
	}
	addGroup("", h.attrs)
	rec.Attrs(func(a slog.Attr) bool {
		switch {
		case a.Key == "dur" && hasDur:
			// The event's duration.
		case a.Key == "err":
			e.Status = events.StatusError
			e.StatusMessage = a.Value.Resolve().String()
		default:
			addGroup(h.prefix, []slog.Attr{a})
		}
		return true
	})
	if rec.Level >= slog.LevelError {
		e.Status = events.StatusError
	}
	h.rec.Record(e)
	return err
}

func eventValue(v slog.Value) events.Value {
	switch v.Kind() {
	case slog.KindString:
		return events.String(v.String())
	case slog.KindInt64:
		return events.Int(v.Int64())
	case slog.KindUint64:
		return events.Int(int64(v.Uint64()))
	case slog.KindFloat64:
		return events.Float(v.Float64())
	case slog.KindBool:
		return events.Bool(v.Bool())
	case slog.KindDuration:
		return events.Int(int64(v.Duration()))
	case slog.KindTime:
		return events.String(v.Time().UTC().Format(time.RFC3339Nano))
	}
	return events.String(fmt.Sprint(v.Any()))
}

func (h *logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	n := *h
	n.next = h.next.WithAttrs(attrs)
	n.attrs = append([]slog.Attr(nil), h.attrs...)
	for _, a := range attrs {
		a.Key = h.prefix + a.Key
		n.attrs = append(n.attrs, a)
	}
	return &n
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	n := *h
	n.next = h.next.WithGroup(name)
	n.prefix = h.prefix + strings.TrimSuffix(name, ".") + "."
	return &n
}

package selfevents

import (
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/hearth-profiler/hearth/internal/events"
	"github.com/hearth-profiler/hearth/internal/tenant"
)

// HTTP records each request next serves as a server span: its route,
// method, status, sizes, tenant, client and duration, with the trace of
// a W3C traceparent header when the client sent one, so that a client's
// own trace shows its calls to Hearth.
func (r *Recorder) HTTP(next http.Handler) http.Handler {
	if r == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		start := time.Now()
		s := &span{id: randomSpanID()}
		var parent events.SpanID
		if tid, pid, ok := parseTraceparent(req.Header.Get("Traceparent")); ok {
			s.trace, parent = tid, pid
		} else {
			s.trace = randomTraceID()
		}
		body := &countingBody{ReadCloser: req.Body}
		if req.Body != nil && req.Body != http.NoBody {
			req.Body = body
		}
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		req = req.WithContext(withSpan(req.Context(), s))
		next.ServeHTTP(sw, req)
		route := req.Pattern
		if route == "" {
			route = req.Method + " (no route)"
		}
		e := events.Event{
			Start: start.UnixNano(), Duration: int64(time.Since(start)),
			TraceID: s.trace, SpanID: s.id, ParentID: parent,
			Name: route, Kind: events.KindServer,
		}
		if sw.code >= 500 {
			e.Status = events.StatusError
			e.StatusMessage = http.StatusText(sw.code)
		}
		_, path, _ := strings.Cut(route, " ")
		e.Attrs = append(e.Attrs,
			events.Attr{Key: "span.http.request.method", Value: events.String(req.Method)},
			events.Attr{Key: "span.http.route", Value: events.String(path)},
			events.Attr{Key: "span.http.response.status_code", Value: events.Int(int64(sw.code))},
			events.Attr{Key: "span.http.request.body.size", Value: events.Int(body.n)},
			events.Attr{Key: "span.http.response.body.size", Value: events.Int(sw.n)},
			events.Attr{Key: "span.url.path", Value: events.String(req.URL.Path)},
			events.Attr{Key: "span.client.address", Value: events.String(req.RemoteAddr)},
		)
		if t := req.Header.Get(tenant.Header); t != "" {
			e.Attrs = append(e.Attrs, events.Attr{Key: "span.hearth.tenant", Value: events.String(t)})
		}
		if ua := req.Header.Get("User-Agent"); ua != "" {
			e.Attrs = append(e.Attrs, events.Attr{Key: "span.user_agent.original", Value: events.String(ua)})
		}
		s.mu.Lock()
		e.Attrs = append(e.Attrs, s.attrs...)
		s.mu.Unlock()
		r.Record(e)
	})
}

// parseTraceparent reads a W3C traceparent header: version 00, a trace
// ID and a parent span ID, neither all zeros.
func parseTraceparent(h string) (events.TraceID, events.SpanID, bool) {
	var tid events.TraceID
	var pid events.SpanID
	parts := strings.Split(strings.TrimSpace(h), "-")
	if len(parts) < 4 || len(parts[0]) != 2 || parts[0] == "ff" || len(parts[1]) != 32 || len(parts[2]) != 16 {
		return tid, pid, false
	}
	if _, err := hex.Decode(tid[:], []byte(parts[1])); err != nil {
		return tid, pid, false
	}
	if _, err := hex.Decode(pid[:], []byte(parts[2])); err != nil {
		return tid, pid, false
	}
	return tid, pid, !tid.IsZero() && !pid.IsZero()
}

type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

// statusWriter remembers the status and counts the body written; Unwrap
// lets http.ResponseController reach the connection's writer.
type statusWriter struct {
	http.ResponseWriter
	code        int
	n           int64
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.code, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	n, err := w.ResponseWriter.Write(b)
	w.n += int64(n)
	return n, err
}

func (w *statusWriter) Flush() {
	w.wroteHeader = true
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

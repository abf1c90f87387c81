package server

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkInstrument measures what counting and timing adds to every
// request: a mux route that does nothing, with and without the wrapper.
// On the test machine: 61 ns bare, 345-356 ns instrumented (2 allocs), so
// about 0.3 µs per request against 1.4 ms of server CPU per ingested
// profile.
func BenchmarkInstrument(b *testing.B) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /ingest", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	m := newMetrics(&Server{}, nil)
	for _, c := range []struct {
		name string
		h    http.Handler
	}{{"bare", mux}, {"instrumented", m.instrument("", mux)}} {
		b.Run(c.name, func(b *testing.B) {
			r := httptest.NewRequest("POST", "/ingest", nil)
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				c.h.ServeHTTP(w, r)
			}
		})
	}
}

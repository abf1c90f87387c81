package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/hearth-profiler/hearth/internal/server"
)

// TestSelfEvents: a running server records its own requests as events of
// the default tenant, which its events API then answers, and stops when
// --self-events is off.
func TestSelfEvents(t *testing.T) {
	search := func(base string) int {
		t.Helper()
		q := url.Values{"q": {`{ resource.service.name = "hearth" && name = "GET /api/v1/labels" && span.http.response.status_code = 200 }`}}
		resp, err := http.Get(base + "/api/v1/events/search?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var r struct {
			Data struct {
				Matched int `json:"matched"`
			} `json:"data"`
		}
		if err := json.Unmarshal(raw, &r); err != nil || resp.StatusCode != 200 {
			t.Fatalf("search: %d %s", resp.StatusCode, raw)
		}
		return r.Data.Matched
	}
	base := serve(t, server.DefaultConfig())
	if resp, err := http.Get(base + "/api/v1/labels"); err != nil {
		t.Fatal(err)
	} else {
		resp.Body.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for search(base) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the request to /api/v1/labels is not among the server's own events after 10s")
		}
		time.Sleep(100 * time.Millisecond)
	}

	cfg := server.DefaultConfig()
	cfg.SelfEvents = false
	base = serve(t, cfg)
	http.Get(base + "/api/v1/labels")
	time.Sleep(1500 * time.Millisecond) // past a flush, had there been a recorder
	if n := search(base); n != 0 {
		t.Errorf("with self-events off, %d events of the server's own requests", n)
	}
}

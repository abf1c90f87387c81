package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(Handler())
	defer srv.Close()
	for path, want := range map[string]string{
		"/":                 `<script type="module" src="app.js">`,
		"/app.js":           "window.__hearth",
		"/flame.js":         "export class FlameGraph",
		"/session.js":       "export function request",
		"/?query=cpu%7B%7D": `<script type="module" src="app.js">`,
		"/targets.html":     `targets.js`,
		"/events.html":      `<script type="module" src="events.js">`,
		"/events.js":        "window.__hearth",
		// The vendored chart library, loaded by a plain script tag.
		"/vendor/uPlot.iife.min.js": "var uPlot=",
		"/vendor/uPlot.min.css":     ".uplot",
	} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d, body lacks %q", path, resp.StatusCode, want)
		}
	}
	// Paths that name no file are not the UI.
	for _, path := range []string{"/some/deep/link?x=", "/nope", "/debug/nope", "/api/v2/query"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, resp.StatusCode)
		}
	}
	resp, err := http.Post(srv.URL+"/", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d, want 405", resp.StatusCode)
	}
}

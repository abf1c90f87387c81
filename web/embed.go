// Package web holds Hearth's browser UI: static files embedded in the
// binary and served at /, so that the UI needs no CDN, no second process
// and nothing fetched at run time. The files are plain HTML, CSS and
// JavaScript modules, with no build step.
package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// Handler serves the UI. Paths that name no file get index.html, so that
// links into the UI work.
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic("BUG: embedded UI has no static directory: " + err.Error())
	}
	files := http.FileServer(http.FS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "the UI answers GET only; the API is under /api/v1/ and ingest at /ingest", http.StatusMethodNotAllowed)
			return
		}
		if r.URL.Path != "/" {
			if _, err := fs.Stat(sub, r.URL.Path[1:]); err != nil {
				r.URL.Path = "/"
			}
		}
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}

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

// Handler serves the UI. A path that names no file is 404: the UI keeps
// its state in the query string (/?query=...), so no deep path is a link
// into it, and a mistyped API or admin path should say so rather than
// answer with a page.
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
				http.Error(w, "404 page not found: the UI is at /, the API under /api/v1/ (docs/api.md)", http.StatusNotFound)
				return
			}
		}
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}

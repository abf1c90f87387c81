package server

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// procedurePath matches the path of a Connect or gRPC procedure:
// /package.Service/Method.
var procedurePath = regexp.MustCompile(`^/[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+/[A-Za-z_][A-Za-z0-9_]*$`)

// isProcedure says whether r calls a Connect or gRPC procedure.
func isProcedure(r *http.Request) bool {
	return r.Method == http.MethodPost && procedurePath.MatchString(r.URL.Path)
}

// unknownProcedures answers calls of procedures Hearth does not serve
// with the protocol's "unimplemented", which clients (Grafana's data
// sources, Profiles Drilldown) show as such, rather than with the web
// UI's 405 in plain text. Other requests go to next.
func unknownProcedures(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isProcedure(r) {
			next.ServeHTTP(w, r)
			return
		}
		msg := "Hearth does not serve " + r.URL.Path
		if ct := r.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/grpc") {
			// A trailers-only gRPC answer: the status in the headers.
			w.Header().Set("Content-Type", ct)
			w.Header().Set("Grpc-Status", "12")
			w.Header().Set("Grpc-Message", url.PathEscape(msg))
			w.WriteHeader(http.StatusOK)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_ = json.NewEncoder(w).Encode(map[string]string{"code": "unimplemented", "message": msg})
	})
}

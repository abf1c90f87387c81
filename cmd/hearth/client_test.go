package main

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestExposed(t *testing.T) {
	for _, c := range []struct {
		server string
		skip   bool
		want   bool
	}{
		{"http://localhost:4040", false, false},
		{"http://127.0.0.1:4040", false, false},
		{"http://[::1]:4040", false, false},
		{"http://hearth.internal:4040", false, true},
		{"http://10.0.0.5:4040", false, true},
		{"https://hearth.internal", false, false},
		{"https://hearth.internal", true, true},
	} {
		if got := exposed(c.server, c.skip); got != c.want {
			t.Errorf("exposed(%q, %v) = %v; want %v", c.server, c.skip, got, c.want)
		}
	}
}

// TestQueryPrintsWarnings checks that hearth query puts what an answer
// lacks on stderr, from JSON answers and from the headers of pprof ones,
// and keeps stdout for the answer. (The server side, a damaged block left
// out, is TestQueryAnswersWithoutDamagedBlock in internal/server.)
func TestQueryPrintsWarnings(t *testing.T) {
	const warning = "block 01ABC left out: its data is damaged (checksum)"
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/pprof") {
			w.Header().Add("Hearth-Warning", warning)
			w.Write([]byte("pprof bytes"))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"status":"success","data":{"total":1,"root":{"name":"total","total":1}},"warnings":[%q]}`, warning)
	}))
	defer ts.Close()
	for _, output := range []string{"pprof", "json"} {
		var stdout, stderr bytes.Buffer
		if code := run([]string{"query", "cpu{}", "--server", ts.URL, "--output", output}, &stdout, &stderr); code != 0 {
			t.Fatalf("--output %s: exit %d: %s", output, code, stderr.String())
		}
		if got := stderr.String(); got != "warning: "+warning+"\n" {
			t.Errorf("--output %s: stderr %q; want the warning", output, got)
		}
		if strings.Contains(stdout.String(), "warning") {
			t.Errorf("--output %s: the warning went to stdout: %q", output, stdout.String())
		}
	}
}

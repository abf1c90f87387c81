package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hearth-profiler/hearth/internal/api"
	"github.com/hearth-profiler/hearth/internal/server"
	"github.com/hearth-profiler/hearth/internal/testfiles"
)

// TestQueryAnswersWithoutDamagedBlock damages a block of a running server
// in place, as a failing disk would: queries answer with the other block
// and say in warnings (JSON) or a header (pprof) which one they left out.
func TestQueryAnswersWithoutDamagedBlock(t *testing.T) {
	dir := t.TempDir()
	ts := newServer(t, func(c *server.Config) { c.DataDir = dir })
	profile, err := os.ReadFile(testfiles.CorpusCPU(t)[0])
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-30 * time.Minute).Unix()
	for i, svc := range []string{"first", "second"} {
		u := fmt.Sprintf("%s/ingest?name=%s.cpu&format=pprof&from=%d&until=%d", ts.URL, svc, base+int64(i)*10, base+int64(i)*10+10)
		if code, r := call(t, "POST", u, bytes.NewReader(profile), nil); code != http.StatusOK {
			t.Fatalf("ingest %s: %d %s", svc, code, r.Error)
		}
		resp, err := http.Post(ts.URL+"/-/flush", "", nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("flush: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	blocks, err := filepath.Glob(filepath.Join(dir, "tenants", "*", "blocks", "*"))
	if err != nil || len(blocks) != 2 {
		t.Fatalf("blocks %v (%v); want 2", blocks, err)
	}
	// The first block cut holds the first service; damage its samples.
	samples := filepath.Join(blocks[0], "samples.parquet")
	fi, err := os.Stat(samples)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(samples, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, 64), fi.Size()/3); err != nil {
		t.Fatal(err)
	}
	f.Close()

	q := url.Values{"query": {"process_cpu:cpu:nanoseconds:cpu:nanoseconds{}"}, "from": {"-1h"}, "until": {"now"}}
	resp, err := http.Get(ts.URL + "/api/v1/query/flamegraph?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	var fg struct {
		Status   string   `json:"status"`
		Warnings []string `json:"warnings"`
		Data     struct {
			Total int64 `json:"total"`
		} `json:"data"`
	}
	err = json.NewDecoder(resp.Body).Decode(&fg)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("flame graph: %d %v", resp.StatusCode, err)
	}
	block := filepath.Base(blocks[0])
	if len(fg.Warnings) != 1 || !strings.Contains(fg.Warnings[0], block) {
		t.Errorf("warnings %q; want one naming block %s", fg.Warnings, block)
	}
	if fg.Data.Total <= 0 {
		t.Errorf("total %d; want the second block's samples", fg.Data.Total)
	}

	resp, err = http.Get(ts.URL + "/api/v1/query/pprof?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get(api.WarningHeader), block) {
		t.Errorf("pprof: %d, %s %q; want 200 and a warning naming %s", resp.StatusCode, api.WarningHeader, resp.Header.Get(api.WarningHeader), block)
	}
}

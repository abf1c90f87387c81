package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/hearth-profiler/hearth/internal/testfiles"
)

// pushStatus pushes one profile at second ts and returns the answer's
// status and Retry-After header.
func pushStatus(client *http.Client, base, svc string, ts int64, body []byte) (int, string, error) {
	u := fmt.Sprintf("%s/ingest?name=%s.cpu{env=e2e}&format=pprof&from=%d&until=%d", base, svc, ts, ts+1)
	resp, err := client.Post(u, "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After"), nil
}

// secondValues returns the CPU total of service svc at each second of
// [from, until) that has one.
func secondValues(t *testing.T, base, svc string, from, until int64) map[int64]float64 {
	t.Helper()
	body := getBody(t, base+"/api/v1/query/series?"+url.Values{
		"query": {fmt.Sprintf(`cpu{service_name=%q}`, svc)}, "from": {fmt.Sprint(from)}, "until": {fmt.Sprint(until)}, "step": {"1s"},
	}.Encode())
	var ans struct {
		Data struct {
			Series []struct {
				Points [][2]float64 `json:"points"`
			} `json:"series"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &ans); err != nil {
		t.Fatalf("series answer %q: %v", body, err)
	}
	out := map[int64]float64{}
	for _, s := range ans.Data.Series {
		for _, p := range s.Points {
			out[int64(p[0])/1000] += p[1]
		}
	}
	return out
}

// mountTmpfs mounts a tmpfs of size bytes on a new directory, unmounted
// when the test ends (after the servers it started are stopped, as
// cleanups run last first). It skips the test where mounting is not
// allowed.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("a small file system is needed, and mounting a tmpfs failed (it needs root or CAP_SYS_ADMIN): %v: %s", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, bytes.TrimSpace(out))
		}
	})
	return dir
}

// TestDiskFull runs the server on an 8 MiB file system and writes until
// the disk is full: writes must then be refused with 503 and Retry-After,
// and taken again once space is freed. After kill -9, and after SIGTERM
// (on a full disk, where the heads cannot be cut into blocks, and on one
// with room), the server must start again and answer every acknowledged
// profile exactly as it did before it stopped: none lost, none twice, none
// of the refused ones.
func TestDiskFull(t *testing.T) {
	var bodies [][]byte
	for _, f := range testfiles.CorpusCPU(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, b)
	}
	mnt := mountTmpfs(t, "8m")
	// Room taken before the server starts, to be freed later.
	fillers := []string{filepath.Join(mnt, "filler-1"), filepath.Join(mnt, "filler-2")}
	for i, f := range fillers {
		if err := os.WriteFile(f, make([]byte, (2-i)<<20), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data := filepath.Join(mnt, "data")
	addr := freeAddr(t)
	srv := startServer(t, data, addr)
	client := &http.Client{Timeout: 10 * time.Second}

	const svc = "diskfull"
	base := int64(1_700_000_000)
	next := base // the second of the next push
	acked := map[int64]bool{}
	largest := bodies[0]
	for _, b := range bodies {
		if len(b) > len(largest) {
			largest = b
		}
	}
	// push pushes body, or the next of the corpus.
	push := func(body []byte) (int, string) {
		t.Helper()
		if body == nil {
			body = bodies[int(next-base)%len(bodies)]
		}
		status, retry, err := pushStatus(client, srv.url, svc, next, body)
		if err != nil {
			t.Fatal(err)
		}
		if status == http.StatusOK {
			acked[next] = true
		}
		next++
		return status, retry
	}
	// fillUp pushes until the disk is full, then checks that it stays
	// refused. It pushes the largest profile, which, once refused, stays
	// too large for what is left.
	fillUp := func() {
		t.Helper()
		n := 0
		for {
			status, retry := push(largest)
			if status == http.StatusOK {
				if n++; n > 2000 {
					t.Fatalf("%d profiles taken by an 8 MiB disk", n)
				}
				continue
			}
			if status != http.StatusServiceUnavailable || retry == "" {
				t.Fatalf("a push to a full disk answered %d with Retry-After %q, want 503 with Retry-After", status, retry)
			}
			break
		}
		for range 3 {
			if status, _ := push(largest); status != http.StatusServiceUnavailable {
				t.Fatalf("a push to a disk still full answered %d, want 503", status)
			}
		}
		t.Logf("disk full after %d more profiles", n)
	}
	// free removes a filler, then pushes profiles that must be taken.
	free := func(filler string) {
		t.Helper()
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
		for range 20 {
			if status, _ := push(nil); status != http.StatusOK {
				t.Fatalf("a push after space was freed answered %d, want 200", status)
			}
		}
	}
	// answers is what the server says now of every second pushed to,
	// checked against what was acknowledged.
	answers := func(when string) map[int64]float64 {
		t.Helper()
		got := secondValues(t, srv.url, svc, base, next)
		for ts := range acked {
			if _, ok := got[ts]; !ok {
				t.Fatalf("%s: acknowledged profile at %d missing", when, ts)
			}
		}
		for ts := range got {
			if !acked[ts] {
				t.Fatalf("%s: a profile at %d, whose push was refused", when, ts)
			}
		}
		return got
	}
	restart := func(sig syscall.Signal, when string) {
		t.Helper()
		want := answers("before " + when)
		srv.stop(t, sig)
		srv = startServer(t, data, addr)
		got := answers("after " + when)
		if !maps.Equal(want, got) {
			for ts, v := range want {
				if got[ts] != v {
					t.Errorf("after %s: profile at %d is %v, was %v (twice, or damaged)", when, ts, got[ts], v)
				}
			}
			t.FailNow()
		}
	}

	fillUp()
	free(fillers[0])
	restart(syscall.SIGKILL, "kill -9")

	// SIGTERM cuts the heads into blocks: on a full disk that fails,
	// and the log keeps everything; with room, the block is written and
	// the log truncated.
	blocks := func() int {
		metas, err := filepath.Glob(filepath.Join(data, "tenants", "anonymous", "blocks", "*", "meta.json"))
		if err != nil {
			t.Fatal(err)
		}
		return len(metas)
	}
	fillUp()
	restart(syscall.SIGTERM, "SIGTERM on a full disk")
	if n := blocks(); n != 0 {
		t.Fatalf("%d blocks written on a full disk: the test did not test a failed cut at shutdown", n)
	}
	free(fillers[1])
	restart(syscall.SIGTERM, "SIGTERM with room")
	if n := blocks(); n != 1 {
		t.Fatalf("%d blocks after SIGTERM with room, want 1", n)
	}
	srv.stop(t, syscall.SIGTERM)
	t.Logf("%d profiles acknowledged, %d refused", len(acked), int(next-base)-len(acked))
}

package main_test

import (
	"bufio"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// metric returns the value of the sample named name (with its labels, as
// written) on the server's /metrics, and false when it has none.
func metric(t *testing.T, base, name string) (float64, bool) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(getBody(t, base+"/metrics")))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", name, err)
			}
			return f, true
		}
	}
	return 0, false
}

// TestS3Compactor runs two ingesters, a querier and two compactors on one
// bucket of a real S3 server. Each ingester cuts a block of two days ago
// and one of an hour ago; one compactor takes the lease and merges the
// two old blocks, marks them and deletes them after the delay, while the
// querier's flame graph total of two days ago stays what the ingesters
// answered. Killed (-9), the active compactor's lease passes to the other
// once it expires.
func TestS3Compactor(t *testing.T) {
	dir := t.TempDir()
	_, _, cfgPath := s3Bucket(t, dir)
	ing := []*proc{
		startServer(t, filepath.Join(dir, "ingester1"), freeAddr(t), "--config", cfgPath, "--target", "ingester"),
		startServer(t, filepath.Join(dir, "ingester2"), freeAddr(t), "--config", cfgPath, "--target", "ingester"),
	}
	client := &http.Client{Timeout: 10 * time.Second}
	old := time.Now().Add(-48 * time.Hour).Unix()
	pushCorpus(t, client, old, ing[0].url, ing[1].url)
	flushAll(t, ing...)
	pushCorpus(t, client, time.Now().Add(-time.Hour).Unix(), ing[0].url, ing[1].url)
	flushAll(t, ing...)
	from, until := old-10, old+100
	var want int64
	for _, p := range ing {
		want += flameTotal(t, p.url, from, until)
	}
	if want == 0 {
		t.Fatal("the ingesters answer an empty flame graph")
	}
	q := startServer(t, filepath.Join(dir, "querier"), freeAddr(t), "--config", cfgPath, "--target", "querier", "--querier.sync-interval", "250ms")
	if got := flameTotal(t, q.url, from, until); got != want {
		t.Fatalf("querier's total before compaction: %d, want %d", got, want)
	}

	args := []string{"--config", cfgPath, "--target", "compactor", "--compactor.interval", "250ms",
		"--compactor.lease-ttl", "3s", "--compactor.min-block-age", "0s", "--compactor.deletion-delay", "2s"}
	cs := []*proc{
		startServer(t, filepath.Join(dir, "compactor1"), freeAddr(t), args...),
		startServer(t, filepath.Join(dir, "compactor2"), freeAddr(t), args...),
	}
	// waitFor polls until cond holds, checking at each poll that the
	// querier still answers the total sent and that at most one
	// compactor holds the lease.
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !cond() {
			if got := flameTotal(t, q.url, from, until); got != want {
				t.Fatalf("waiting for %s: querier's total %d, want %d", what, got, want)
			}
			held := 0
			for _, c := range cs {
				if c == nil {
					continue
				}
				if v, _ := metric(t, c.url, "hearth_compactor_lease_held"); v == 1 {
					held++
				}
			}
			if held > 1 {
				t.Fatalf("waiting for %s: %d compactors hold the lease", what, held)
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s within a minute; querier's logs:\n%s", what, q.logs)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	active := -1
	waitFor("deletion of the compacted blocks", func() bool {
		for i, c := range cs {
			if v, _ := metric(t, c.url, "hearth_compactor_blocks_deleted_total"); v >= 2 {
				active = i
				return true
			}
		}
		return false
	})
	if v, _ := metric(t, cs[active].url, "hearth_compactor_lease_held"); v != 1 {
		t.Fatalf("the compactor that deleted blocks does not hold the lease")
	}
	if got := flameTotal(t, q.url, from, until); got != want {
		t.Fatalf("querier's total after compaction and deletion: %d, want %d", got, want)
	}

	cs[active].stop(t, syscall.SIGKILL)
	cs[active] = nil
	other := cs[1-active]
	waitFor("takeover of the lease", func() bool {
		v, _ := metric(t, other.url, "hearth_compactor_lease_held")
		return v == 1
	})
	other.stop(t, syscall.SIGTERM)
	q.stop(t, syscall.SIGTERM)
	for _, p := range ing {
		p.stop(t, syscall.SIGTERM)
	}
}

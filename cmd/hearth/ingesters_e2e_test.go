package main_test

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestS3QuerierAsksIngesters runs two ingesters and queriers with
// --ingesters on one bucket of a real S3 server. Profiles and events go
// to both ingesters. A querier whose sync of the bucket is an hour away
// answers what was sent (flame graph total, event count) before any
// upload, and right after POST /-/flush on the ingesters: the new blocks
// are listed by the ingesters and read from the bucket, not counted
// twice. A querier that syncs answers the same, and still does once the
// ingesters' grace period (--ingester.keep-uploaded) is over and they
// have dropped the blocks from their own views. With an ingester down,
// a query fails with 502, naming it.
func TestS3QuerierAsksIngesters(t *testing.T) {
	dir := t.TempDir()
	_, _, cfgPath := s3Bucket(t, dir)
	const keep = 3 * time.Second
	addrs := []string{freeAddr(t), freeAddr(t)}
	ing := []*proc{
		startServer(t, filepath.Join(dir, "ingester1"), addrs[0], "--config", cfgPath, "--target", "ingester", "--ingester.keep-uploaded", keep.String()),
		startServer(t, filepath.Join(dir, "ingester2"), addrs[1], "--config", cfgPath, "--target", "ingester", "--ingester.keep-uploaded", keep.String()),
	}
	ingestersFlag := strings.Join(addrs, ",")
	slow := startServer(t, filepath.Join(dir, "querier1"), freeAddr(t), "--config", cfgPath, "--target", "querier",
		"--querier.sync-interval", "1h", "--ingesters", ingestersFlag)

	client := &http.Client{Timeout: 10 * time.Second}
	base := time.Now().Add(-time.Hour).Unix()
	pushCorpus(t, client, base, ing[0].url, ing[1].url)
	const perIngester = 30
	for k, p := range ing {
		var lines []string
		for i := range perIngester {
			lines = append(lines, fmt.Sprintf(`{"time": %d, "name": "deploy", "service": "ingesters-e2e", "ingester": %d}`, base+int64(i), k))
		}
		postEvents(t, p.url, lines)
	}
	from, until := base-10, base+100
	count := func(url string) string {
		t.Helper()
		return eventCalc(t, url, "ingesters-e2e", "count", from, until)
	}
	wantEvents := fmt.Sprintf(`"count":%d`, 2*perIngester)
	var want int64
	for _, p := range ing {
		n := flameTotal(t, p.url, from, until)
		if n == 0 {
			t.Fatalf("ingester %s answers an empty flame graph", p.url)
		}
		want += n
	}
	check := func(what string, q *proc) {
		t.Helper()
		got, evs := flameTotal(t, q.url, from, until), count(q.url)
		if got != want || !strings.Contains(evs, wantEvents) {
			t.Errorf("%s: querier's flame graph total %d, want %d; events %s, want %s; querier logs:\n%s", what, got, want, evs, wantEvents, q.logs)
		}
	}
	check("before any upload", slow)

	flushAll(t, ing...)
	flushed := time.Now()
	check("right after the flushes, before the querier's sync", slow)
	if logs := slow.logs.String(); strings.Contains(logs, "blocks synced with the bucket") {
		t.Errorf("the querier with a sync interval of 1h synced:\n%s", logs)
	}
	slow.stop(t, syscall.SIGTERM)

	// A querier that syncs (and opened every block at start).
	q := startServer(t, filepath.Join(dir, "querier2"), freeAddr(t), "--config", cfgPath, "--target", "querier",
		"--querier.sync-interval", "250ms", "--ingesters", ingestersFlag)
	check("querier that synced the blocks", q)

	// Past the grace period, each ingester's own view has nothing left
	// (its heads are empty): the querier counts the blocks it synced.
	deadline := flushed.Add(keep + 30*time.Second)
	for _, p := range ing {
		for {
			if n := flameTotal(t, p.url, from, until); n == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("ingester %s still counts its blocks long after --ingester.keep-uploaded %v; logs:\n%s", p.url, keep, p.logs)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	t.Logf("ingesters dropped their blocks %v after the flushes (keep %v)", time.Since(flushed), keep)
	check("after the grace period", q)

	// An ingester down fails the query, naming it.
	ing[1].stop(t, syscall.SIGTERM)
	resp, err := client.Get(q.url + "/api/v1/query/flamegraph?" + fmt.Sprintf("query=%s&from=%d&until=%d", `cpu%7Benv%3D%22e2e%22%7D`, from, until))
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(string(msg), addrs[1]) {
		t.Errorf("query with ingester %s down: %d %s; want 502 naming it", addrs[1], resp.StatusCode, msg)
	}
	ing[0].stop(t, syscall.SIGTERM)
	q.stop(t, syscall.SIGTERM)
}

package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// flameTotal is the total of the flame graph of cpu{env="e2e"} over
// [from, until) on the server at base.
func flameTotal(t *testing.T, base string, from, until int64) int64 {
	t.Helper()
	return flameTotalOf(t, base, `cpu{env="e2e"}`, from, until)
}

// flameTotalOf is the total of the flame graph of query over [from,
// until) on the server at base.
func flameTotalOf(t *testing.T, base, query string, from, until int64) int64 {
	t.Helper()
	v := url.Values{"query": {query}, "from": {fmt.Sprint(from)}, "until": {fmt.Sprint(until)}}
	body := getBody(t, base+"/api/v1/query/flamegraph?"+v.Encode())
	var fg struct {
		Data struct {
			Total int64 `json:"total"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &fg); err != nil {
		t.Fatalf("flame graph: %v: %s", err, body)
	}
	return fg.Data.Total
}

// TestS3Roles runs two ingesters and a querier on one bucket of a real S3
// server. Profiles and events go to both ingesters; once each has been
// flushed, the querier's next sync of the bucket has its flame graph's
// total equal to the sum of the ingesters' and its event count equal to
// what was sent. A write to the querier is refused, saying why.
func TestS3Roles(t *testing.T) {
	dir := t.TempDir()
	_, _, cfgPath := s3Bucket(t, dir)
	ing := []*proc{
		startServer(t, filepath.Join(dir, "ingester1"), freeAddr(t), "--config", cfgPath, "--target", "ingester"),
		startServer(t, filepath.Join(dir, "ingester2"), freeAddr(t), "--config", cfgPath, "--target", "ingester"),
	}
	q := startServer(t, filepath.Join(dir, "querier"), freeAddr(t), "--config", cfgPath, "--target", "querier", "--querier.sync-interval", "250ms")

	client := &http.Client{Timeout: 10 * time.Second}
	base := time.Now().Add(-time.Hour).Unix()
	pushCorpus(t, client, base, ing[0].url, ing[1].url)
	for k, p := range ing {
		var lines []string
		for i := range 30 {
			lines = append(lines, fmt.Sprintf(`{"time": %d, "name": "deploy", "service": "roles-e2e", "ingester": %d}`, base+int64(i), k))
		}
		postEvents(t, p.url, lines)
	}
	count := func(url string) string {
		t.Helper()
		return eventCalc(t, url, "roles-e2e", "count", base-10, base+100)
	}
	from, until := base-10, base+100
	var want int64
	for _, p := range ing {
		n := flameTotal(t, p.url, from, until)
		if n == 0 {
			t.Fatalf("ingester %s answers an empty flame graph", p.url)
		}
		want += n
	}

	// Nothing is cut yet: the querier sees nothing.
	if n := flameTotal(t, q.url, from, until); n != 0 {
		t.Errorf("querier's total before any cut: %d, want 0", n)
	}

	// Writes to the querier are refused, with the reason.
	for _, w := range []struct{ path, ctype, body string }{
		{"/ingest?name=svc.cpu&format=folded", "text/plain", "main;work 10\n"},
		{"/api/v1/events", "application/x-ndjson", `{"name": "deploy"}`},
		{"/v1/traces", "application/json", `{}`},
	} {
		resp, err := client.Post(q.url+w.path, w.ctype, strings.NewReader(w.body))
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(msg), "this instance is a querier") {
			t.Errorf("POST %s to the querier: %d %s; want 404 saying it is a querier", w.path, resp.StatusCode, msg)
		}
	}

	flushAll(t, ing...)
	// The querier's next sync finds the blocks.
	flushed := time.Now()
	deadline := flushed.Add(30 * time.Second)
	var got int64
	var events string
	for {
		got, events = flameTotal(t, q.url, from, until), count(q.url)
		if got == want && strings.Contains(events, `"count":60`) {
			t.Logf("querier answers as sent %v after the flushes (sync every 250ms): total %d, events %s", time.Since(flushed), got, strings.TrimSpace(events))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("querier 30 s after the flushes: flame graph total %d, want %d; events %s, want a count of 60; logs:\n%s", got, want, events, q.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, p := range ing {
		p.stop(t, syscall.SIGTERM)
	}
	q.stop(t, syscall.SIGTERM)
	if logs := q.logs.String(); !strings.Contains(logs, "blocks synced with the bucket") {
		t.Errorf("the querier's log does not say it synced blocks:\n%s", logs)
	}
}

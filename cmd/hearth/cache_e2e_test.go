package main_test

import (
	"bufio"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// metricSum is the sum of the samples of the metric name on the server at
// base whose labels include every one of labels (`k="v"`).
func metricSum(t *testing.T, base, name string, labels ...string) float64 {
	t.Helper()
	var sum float64
	sc := bufio.NewScanner(strings.NewReader(getBody(t, base+"/metrics")))
	sc.Buffer(nil, 1<<20)
lines:
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(line, l) {
				continue lines
			}
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum += v
	}
	return sum
}

// TestS3QuerierCacheRestart runs an ingester and a querier on one bucket
// of a real S3 server, the querier with its cache of blocks' files. The
// querier answers what the ingester flushed; restarted on the same data
// directory, it answers the same from its disk cache, with disk hits and
// fewer GETs; restarted with the cache directory removed, the same again
// from the bucket.
func TestS3QuerierCacheRestart(t *testing.T) {
	dir := t.TempDir()
	_, _, cfgPath := s3Bucket(t, dir)
	ing := startServer(t, filepath.Join(dir, "ingester"), freeAddr(t), "--config", cfgPath, "--target", "ingester")
	client := &http.Client{Timeout: 10 * time.Second}
	base := time.Now().Add(-time.Hour).Unix()
	pushCorpus(t, client, base, ing.url)
	from, until := base-10, base+100
	want := flameTotal(t, ing.url, from, until)
	if want == 0 {
		t.Fatal("the ingester answers an empty flame graph")
	}
	flushAll(t, ing)
	ing.stop(t, syscall.SIGTERM)

	qdir := filepath.Join(dir, "querier")
	gets := func(q *proc) float64 {
		return metricSum(t, q.url, "hearth_objstore_bucket_operations_total", `operation="get"`) +
			metricSum(t, q.url, "hearth_objstore_bucket_operations_total", `operation="get_range"`)
	}
	// run starts the querier, checks its answer, and returns its GETs
	// and disk hits.
	run := func(what string) (float64, float64) {
		t.Helper()
		q := startServer(t, qdir, freeAddr(t), "--config", cfgPath, "--target", "querier")
		defer q.stop(t, syscall.SIGTERM)
		if got := flameTotal(t, q.url, from, until); got != want {
			t.Fatalf("%s: querier's flame graph total %d, want %d; logs:\n%s", what, got, want, q.logs)
		}
		g, hits := gets(q), metricSum(t, q.url, "hearth_bucket_cache_requests_total", `tier="disk"`, `result="hit"`)
		t.Logf("%s: %v GETs, %v disk hits", what, g, hits)
		return g, hits
	}
	coldGets, coldHits := run("cold cache")
	if _, err := os.Stat(filepath.Join(qdir, "cache")); err != nil {
		t.Fatalf("no cache directory in the querier's data directory: %v", err)
	}
	warmGets, warmHits := run("restarted, warm cache")
	if coldHits != 0 || warmHits == 0 || warmGets >= coldGets {
		t.Errorf("cold: %v GETs and %v disk hits; warm: %v and %v; want fewer GETs and some hits warm", coldGets, coldHits, warmGets, warmHits)
	}
	if err := os.RemoveAll(filepath.Join(qdir, "cache")); err != nil {
		t.Fatal(err)
	}
	if g, hits := run("restarted, cache removed"); hits != 0 || g <= warmGets {
		t.Errorf("with the cache removed: %v GETs and %v disk hits; want more than warm's %v, and none", g, hits, warmGets)
	}
}

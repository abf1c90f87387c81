package main_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hearth-profiler/hearth/internal/s3test"
	"github.com/hearth-profiler/hearth/internal/storage/bucket"
)

// cluster is Hearth as issue 14 deploys it, as processes on one bucket of
// a real S3 server: two ingesters, a querier that asks them for their
// heads, and a compactor.
type cluster struct {
	s3       *s3test.Server
	bkt      bucket.Bucket // the bucket, read by the test itself
	dir, cfg string
	ing      [2]*proc
	ingAddr  [2]string
	q        *proc
	queriers int // started so far, each on a data directory of its own
}

// Flags of the cluster's instances: a querier that syncs often; blocks
// kept by an ingester for 1 s after their upload, longer than that sync;
// a compactor that merges blocks 2 s old, after the ingesters have let
// them go, and deletes the blocks it replaced 1 s after marking them.
// The ingesters record no events of their own requests: those are of
// now, and would make every block reach from the test's old data to now,
// too long a span to compact.
var (
	ingesterFlags  = []string{"--target", "ingester", "--ingester.keep-uploaded", "1s", "--self-events=false"}
	querierFlags   = []string{"--target", "querier", "--querier.sync-interval", "200ms"}
	compactorFlags = []string{"--target", "compactor", "--compactor.interval", "200ms",
		"--compactor.min-block-age", "2s", "--compactor.deletion-delay", "1s", "--compactor.lease-ttl", "1s"}
)

func startCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{dir: t.TempDir()}
	var name string
	c.s3, name, c.cfg = s3Bucket(t, c.dir)
	var err error
	c.bkt, err = bucket.Open(&bucket.Config{Type: bucket.TypeS3, Config: c.s3.Config(name)}, bucket.Options{SpoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.bkt.Close() })
	for i := range c.ing {
		c.ingAddr[i] = freeAddr(t)
		c.startIngester(t, i)
	}
	c.startQuerier(t)
	return c
}

func (c *cluster) startIngester(t *testing.T, i int) {
	t.Helper()
	c.ing[i] = startServer(t, filepath.Join(c.dir, fmt.Sprintf("ingester%d", i)), c.ingAddr[i],
		append([]string{"--config", c.cfg}, ingesterFlags...)...)
}

// startQuerier starts a querier on a new, empty data directory: nothing
// of the bucket is cached.
func (c *cluster) startQuerier(t *testing.T) {
	t.Helper()
	c.queriers++
	c.q = startServer(t, filepath.Join(c.dir, fmt.Sprintf("querier%d", c.queriers)), freeAddr(t),
		append([]string{"--config", c.cfg, "--ingesters", c.ingAddr[0] + "," + c.ingAddr[1]}, querierFlags...)...)
}

func (c *cluster) startCompactor(t *testing.T) *proc {
	t.Helper()
	return startServer(t, filepath.Join(c.dir, "compactor"), freeAddr(t), append([]string{"--config", c.cfg}, compactorFlags...)...)
}

// objects lists the names under dir in the bucket.
func (c *cluster) objects(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	if err := c.bkt.Iter(context.Background(), dir, func(n string) error {
		out = append(out, n)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// blocks lists the block directories of the default tenant that hold a
// meta.json: a store may list the directory of a deleted block for a
// while (SeaweedFS).
func (c *cluster) blocks(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, d := range c.objects(t, "anonymous/blocks/") {
		ok, err := c.bkt.Exists(context.Background(), d+"meta.json")
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			out = append(out, d)
		}
	}
	return out
}

// waitLease waits until the compactor holds the bucket's lease.
func waitLease(t *testing.T, comp *proc) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if v, _ := metric(t, comp.url, "hearth_compactor_lease_held"); v == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the compactor took no lease within 30 s; its logs:\n%s", comp.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// post sends body to u and returns the status.
func post(t *testing.T, client *http.Client, u, body string) int {
	t.Helper()
	resp, err := client.Post(u, "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// clusterView is what a querier answers over the test's data.
type clusterView struct {
	answers map[string]string // answers(), but for pprof, whose layout follows the blocks'
	events  string
	kill9   string // the series of the profiles sent around the kill -9
}

func (v clusterView) diff(w clusterView) string {
	var out []string
	for k := range v.answers {
		if v.answers[k] != w.answers[k] {
			out = append(out, fmt.Sprintf("%s: %.300s\nwant %.300s", k, v.answers[k], w.answers[k]))
		}
	}
	if v.events != w.events {
		out = append(out, fmt.Sprintf("events: %s, want %s", v.events, w.events))
	}
	if v.kill9 != w.kill9 {
		out = append(out, fmt.Sprintf("kill -9 series: %.300s\nwant %.300s", v.kill9, w.kill9))
	}
	return strings.Join(out, "\n")
}

// TestS3Cluster runs two ingesters, a querier and a compactor on one
// bucket of a real S3 server, and checks that the querier answers what
// was sent, the same, all along: while the data is only in the
// ingesters' heads; once uploaded, before and after its sync and the
// ingesters' letting go of their blocks; across a kill -9 of an ingester
// in the middle of a stream of writes, which loses nothing acknowledged;
// across compactors killed with -9 at random points of their work, and
// after the compaction and the deletion of the blocks it replaced; from a
// querier started with an empty cache; and after an outage of the
// bucket, during which the ingesters keep their writes and say so.
func TestS3Cluster(t *testing.T) {
	c := startCluster(t)
	client := &http.Client{Timeout: 10 * time.Second}
	// Old enough that compaction's 6 h windows holding it have ended
	// once newer blocks are in.
	base := time.Now().Add(-30*time.Hour).Unix() / 3600 * 3600
	from, until := base-10, base+1000
	pushCorpus(t, client, base, c.ing[0].url, c.ing[1].url)
	for k, p := range c.ing {
		var lines []string
		for i := range 30 {
			lines = append(lines, fmt.Sprintf(`{"time": %d, "name": "deploy", "service": "cluster-e2e", "ingester": %d}`, base+int64(i), k))
		}
		postEvents(t, p.url, lines)
	}
	view := func(base string) clusterView {
		t.Helper()
		a := answers(t, base, from, until)
		delete(a, "pprof")
		kill9 := getBody(t, base+"/api/v1/query/series?"+url.Values{
			"query": {`cpu{service_name="kill9"}`}, "from": {fmt.Sprint(from)}, "until": {fmt.Sprint(until)}, "step": {"1s"},
		}.Encode())
		return clusterView{answers: a, events: eventCalc(t, base, "cluster-e2e", "count", from, until), kill9: kill9}
	}

	// In the heads only: the querier has them from the ingesters.
	var want int64
	for _, p := range c.ing {
		want += flameTotal(t, p.url, from, until)
	}
	if got := flameTotal(t, c.q.url, from, until); got != want || want == 0 {
		t.Fatalf("querier's total before any upload: %d, want the ingesters' %d", got, want)
	}
	heads := view(c.q.url)
	if !strings.Contains(heads.events, `"count":60`) {
		t.Fatalf("querier's events before any upload: %s, want a count of 60", heads.events)
	}

	// Uploaded: the same at once (the ingesters still hold the blocks),
	// after the querier's sync, and after the ingesters let them go.
	flushAll(t, c.ing[:]...)
	for end := time.Now().Add(2500 * time.Millisecond); time.Now().Before(end); time.Sleep(150 * time.Millisecond) {
		if d := view(c.q.url).diff(heads); d != "" {
			t.Fatalf("querier after the upload differs from before:\n%s", d)
		}
	}

	// kill -9 of an ingester in the middle of writes: each profile has a
	// second of its own, and every acknowledged one must be found.
	start := base + 100
	acked := writeAndKill(t, c.ing[0], 2, 800, 100, func(i int) error {
		ts := start + int64(i)
		u := fmt.Sprintf("%s/ingest?name=kill9.cpu&format=folded&from=%d&until=%d", c.ing[0].url, ts, ts+1)
		resp, err := client.Post(u, "text/plain", strings.NewReader("main;serve;work 1\n"))
		if err != nil {
			return err // the kill
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("push: %s", resp.Status)
		}
		return nil
	})
	t.Logf("%d writes acknowledged before the ingester's kill -9", len(acked))
	// The querier fails while an ingester does not answer, rather than
	// answering without its heads.
	resp, err := client.Get(c.q.url + "/api/v1/query/flamegraph?" + url.Values{"query": {`cpu{env="e2e"}`}, "from": {fmt.Sprint(from)}, "until": {fmt.Sprint(until)}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == 200 {
		t.Errorf("querier answered 200 with an ingester down; want a failure naming it")
	}
	c.startIngester(t, 0)
	afterKill := view(c.q.url)
	afterKill.kill9 = heads.kill9 // compared apart, below
	if d := afterKill.diff(heads); d != "" {
		t.Errorf("querier after the ingester's kill -9 and restart differs:\n%s", d)
	}
	found := map[int64]bool{}
	kill9 := view(c.q.url).kill9
	for _, f := range strings.Split(kill9, "[")[1:] {
		var ms int64
		if _, err := fmt.Sscanf(f, "%d,", &ms); err == nil && ms > 0 {
			found[ms/1000] = true
		}
	}
	for i := range acked {
		if ts := start + int64(i); !found[ts] {
			t.Errorf("acknowledged profile at %d lost across the ingester's kill -9", ts)
		}
	}
	settled := view(c.q.url)
	settledTotal := flameTotal(t, c.q.url, from, until)

	// A newer block, so that the old data's compaction windows are over;
	// then compactors killed with -9 at points of their work.
	recent := time.Now().Add(-time.Hour).Unix()
	u := fmt.Sprintf("%s/ingest?name=recent.cpu&format=folded&from=%d&until=%d", c.ing[1].url, recent, recent+1)
	if code := post(t, client, u, "main;recent 1\n"); code != 200 {
		t.Fatalf("push of a recent profile: %d", code)
	}
	flushAll(t, c.ing[:]...)
	time.Sleep(2 * time.Second) // the blocks reach the compactor's minimum age
	// Each compactor is killed a little later after taking the lease (a
	// killed one's lease passes on once it has not changed for its TTL):
	// in its sync, its merge, its upload, its marks or its deletions.
	for k := range 6 {
		comp := c.startCompactor(t)
		waitLease(t, comp)
		time.Sleep(time.Duration(k) * 80 * time.Millisecond)
		comp.stop(t, syscall.SIGKILL)
		if d := view(c.q.url).diff(settled); d != "" {
			t.Fatalf("querier after a compactor's kill -9 %d ms after it took the lease differs:\n%s", k*80, d)
		}
	}
	// The compaction done: the three old blocks (two of the corpus, one
	// of the writes around the kill -9) are one, beside the recent one,
	// and their deletion marks are gone with them.
	comp := c.startCompactor(t)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if d := view(c.q.url).diff(settled); d != "" {
			t.Fatalf("querier during the compaction differs:\n%s", d)
		}
		blocks, marks := c.blocks(t), c.objects(t, "anonymous/markers/")
		if len(blocks) == 2 && len(marks) == 0 {
			break
		}
		if time.Now().After(deadline) {
			var metas []string
			for _, b := range blocks {
				rc, err := c.bkt.Get(context.Background(), b+"meta.json")
				if err == nil {
					m, _ := io.ReadAll(rc)
					rc.Close()
					metas = append(metas, string(m))
				}
			}
			t.Fatalf("a minute after the compactor's start, the bucket holds blocks %q and marks %q, want 2 blocks and no mark; their metas:\n%s\nthe compactor's logs:\n%s", blocks, marks, strings.Join(metas, "\n"), comp.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // the querier's next sync
	if d := view(c.q.url).diff(settled); d != "" {
		t.Fatalf("querier after the compaction and deletions differs:\n%s", d)
	}

	// A querier on an empty data directory answers the same.
	c.q.stop(t, syscall.SIGTERM)
	c.startQuerier(t)
	if d := view(c.q.url).diff(settled); d != "" {
		t.Errorf("a new querier, with an empty cache, differs:\n%s", d)
	}

	// The bucket out of reach: an ingester keeps what it takes, its
	// flush fails and /ready says so; once the store is back, the
	// flush uploads it and the querier has it.
	c.s3.Stop()
	outageAt := base + 900
	u = fmt.Sprintf("%s/ingest?name=outage.cpu{env=e2e}&format=folded&from=%d&until=%d", c.ing[1].url, outageAt, outageAt+1)
	if code := post(t, client, u, "main;outage;work 7\n"); code != 200 {
		t.Fatalf("push during the outage: %d", code)
	}
	// What the ingester took, from its head (its blocks are long left to
	// the bucket).
	outageQuery := `cpu{service_name="outage"}`
	taken := flameTotalOf(t, c.ing[1].url, outageQuery, from, until)
	if taken == 0 {
		t.Fatalf("the ingester answers nothing of the profile it took during the outage")
	}
	// The S3 client retries each upload ten times with backoff before the
	// flush fails: on a busy machine, longer than client's 10 s.
	patient := &http.Client{Timeout: 2 * time.Minute}
	if code := post(t, patient, c.ing[1].url+"/-/flush", ""); code == 200 {
		t.Fatalf("flush with the bucket out of reach answered 200")
	}
	if ready := getBody(t, c.ing[1].url+"/ready"); !strings.Contains(ready, "blocks not written since") {
		t.Errorf("/ready during the outage does not say blocks are not written: %q", ready)
	}
	c.s3.Restart()
	flushAll(t, c.ing[:]...)
	if got, want := flameTotal(t, c.q.url, from, until), settledTotal+taken; got != want {
		t.Errorf("querier after the outage: total %d, want %d (before it, and the %d taken during it)", got, want, taken)
	}
	comp.stop(t, syscall.SIGTERM)
	c.q.stop(t, syscall.SIGTERM)
	for _, p := range c.ing {
		p.stop(t, syscall.SIGTERM)
	}
}

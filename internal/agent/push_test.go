package agent

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/hearth-profiler/hearth/internal/labels"
	"github.com/hearth-profiler/hearth/internal/server"
)

// readStack is a read syscall under main.main → main.work → main.hash.
var readStack = &stack{kernel: []uint64{0xffffffff81001000, 0xffffffff81002000}, user: []uint64{0x401000, 0x402000}, count: 3}

// TestPushToServer pushes profiles to a real Hearth server and queries
// them back: every label arrives as it was, including values the /ingest
// name syntax could not carry, and the flame graph holds the stacks with
// kernel frames as leaves.
func TestPushToServer(t *testing.T) {
	ts := startServer(t, nil)
	p := testPusher(t, ts.URL, 1<<20)
	r := procReader{root: testProcRoot, env: DefaultServiceNameEnv}
	checkout, err := r.read(100)
	if err != nil {
		t.Fatal(err)
	}
	odd := &Process{
		PID: 4242, Comm: "we{i}rd,=x", Exe: "/opt/a{b}/c,d=e",
		Cgroup: "/kubepods.slice/kubepods-pod1.slice/cri-containerd-" + cartID + ".scope", ContainerID: cartID,
	}
	p.enqueue([]*pushItem{
		newPushItem(processLabels(checkout, "node-1", DefaultServiceNameEnv, labels.Labels{}), encodeProfile(t, readStack)),
		newPushItem(processLabels(odd, "node-1", DefaultServiceNameEnv, labels.Labels{}), encodeProfile(t, &stack{user: []uint64{0x402000}, count: 7})),
	})
	runPusher(t, p)
	waitFor(t, 10*time.Second, "2 profiles pushed", func() bool { st, _, _ := p.snapshot(); return st.pushed == 2 })

	series := seriesOf(t, ts.URL, `cpu{job="hearth-agent"}`, "")
	if len(series) != 2 {
		t.Fatalf("series %v, want 2", series)
	}
	slices.SortFunc(series, func(a, b map[string]string) int { return len(a["pid"]) - len(b["pid"]) })
	for _, c := range []struct {
		got  map[string]string
		want map[string]string
	}{
		{series[0], map[string]string{
			"service_name": "checkout", "pid": "100", "comm": "checkout-server", "exe": "/usr/local/bin/checkout-server",
			"cgroup": "/docker/" + checkoutID, "container_id": checkoutID, "host": "node-1", "job": "hearth-agent",
		}},
		{series[1], map[string]string{
			"service_name": "c,d=e", "pid": "4242", "comm": "we{i}rd,=x", "exe": "/opt/a{b}/c,d=e",
			"cgroup": odd.Cgroup, "container_id": cartID, "host": "node-1", "job": "hearth-agent",
		}},
	} {
		for k, v := range c.want {
			if c.got[k] != v {
				t.Errorf("series %v: %s = %q, want %q", c.got, k, c.got[k], v)
			}
		}
	}

	fg := flameOf(t, ts.URL, `cpu{service_name="checkout", pid="100"}`)
	period := int64(time.Second) / 19
	if fg.Total != 3*period {
		t.Errorf("checkout total %d, want %d", fg.Total, 3*period)
	}
	// Root first: the user frames, then the kernel's as leaves.
	if !hasPath(fg.Root, "main.main", "main.work", "main.hash", "do_syscall_64", "copy_user_generic") {
		t.Errorf("flame graph lacks main.main → main.work → main.hash → do_syscall_64 → copy_user_generic")
	}
	if fg := flameOf(t, ts.URL, `cpu{comm="we{i}rd,=x"}`); fg.Total != 7*period || !hasPath(fg.Root, "main.spin") {
		t.Errorf("odd process: total %d, want %d, with main.spin", fg.Total, 7*period)
	}
}

// TestPushRetry starts with no server: pushes fail and are retried with
// backoff, and the buffered profiles arrive once the server is up.
func TestPushRetry(t *testing.T) {
	addr := freeAddr(t)
	p := testPusher(t, "http://"+addr, 1<<20)
	var items []*pushItem
	for pid := range 3 {
		ls := labels.FromStrings("service_name", "svc", "pid", strconv.Itoa(pid+1), "job", Job)
		items = append(items, newPushItem(ls, encodeProfile(t, readStack)))
	}
	p.enqueue(items)
	runPusher(t, p)
	waitFor(t, 10*time.Second, "2 failed pushes", func() bool { st, _, _ := p.snapshot(); return st.failed >= 2 })
	if st, queued, _ := p.snapshot(); st.pushed != 0 || queued != 3 {
		t.Fatalf("with no server: %+v, %d queued; want nothing pushed, 3 queued", st, queued)
	}

	ts := startServer(t, listenOn(t, addr))
	waitFor(t, 10*time.Second, "3 profiles pushed", func() bool { st, _, _ := p.snapshot(); return st.pushed == 3 })
	if st, queued, queuedBytes := p.snapshot(); queued != 0 || queuedBytes != 0 || st.dropped != 0 {
		t.Errorf("after the server came up: %+v, %d queued (%d bytes); want none queued or dropped", st, queued, queuedBytes)
	}
	if pids := pidsOf(seriesOf(t, ts.URL, `cpu{service_name="svc"}`, "")); len(pids) != 3 {
		t.Errorf("series of pids %v, want 3", pids)
	}
}

// TestPushBufferDropsOldest fills the buffer while the server is away:
// the oldest profiles are dropped and counted, and the newest arrive.
func TestPushBufferDropsOldest(t *testing.T) {
	addr := freeAddr(t)
	data := encodeProfile(t, readStack)
	item := func(pid int) *pushItem {
		return newPushItem(labels.FromStrings("service_name", "svc", "pid", strconv.Itoa(pid), "job", Job), data)
	}
	size := item(1).bytes
	p := testPusher(t, "http://"+addr, 2*size+size/2) // room for two
	for pid := 1; pid <= 5; pid++ {
		p.enqueue([]*pushItem{item(pid)})
	}
	st, queued, queuedBytes := p.snapshot()
	if st.dropped != 3 || queued != 2 || queuedBytes != 2*size {
		t.Errorf("after 5 profiles into room for 2: dropped %d, %d queued (%d bytes); want 3 dropped, 2 queued (%d bytes)", st.dropped, queued, queuedBytes, 2*size)
	}
	// A profile larger than the whole buffer is dropped at once, and
	// keeps the queue as it was.
	huge := newPushItem(labels.FromStrings("service_name", "huge"), make([]byte, 3*size))
	p.enqueue([]*pushItem{huge})
	if st, queued, _ := p.snapshot(); st.dropped != 4 || queued != 2 {
		t.Errorf("after a profile larger than the buffer: dropped %d, %d queued; want 4, 2", st.dropped, queued)
	}

	ts := startServer(t, listenOn(t, addr))
	runPusher(t, p)
	waitFor(t, 10*time.Second, "2 profiles pushed", func() bool { st, _, _ := p.snapshot(); return st.pushed == 2 })
	pids := pidsOf(seriesOf(t, ts.URL, `cpu{service_name="svc"}`, ""))
	slices.Sort(pids)
	if !slices.Equal(pids, []string{"4", "5"}) {
		t.Errorf("series of pids %v, want the newest two, [4 5]", pids)
	}
}

// TestPushHeaders checks the tenant and bearer token headers, and the
// series' labels as pairs with the profile name.
func TestPushHeaders(t *testing.T) {
	c := &captureServer{failFirst: 1}
	ts := startCapture(t, c)
	p := newPusher(pusherOptions{
		server: ts.URL, tenant: "team-a", bearerToken: "s3cret", maxBufferBytes: 1 << 20,
		timeout: 5 * time.Second, retryMin: 10 * time.Millisecond, retryMax: 50 * time.Millisecond,
	}, testLogger(t))
	p.enqueue([]*pushItem{newPushItem(labels.FromStrings("service_name", "svc", "exe", "/a b/c"), []byte("profile"))})
	runPusher(t, p)
	waitFor(t, 10*time.Second, "a push", func() bool { st, _, _ := p.snapshot(); return st.pushed == 1 })
	st, _, _ := p.snapshot()
	if st.failed != 1 {
		t.Errorf("failed pushes %d, want 1 (the server's first answer was Unavailable)", st.failed)
	}
	c.mu.Lock()
	h := c.requests[0].Header()
	c.mu.Unlock()
	if got := h.Get("Authorization"); got != "Bearer s3cret" {
		t.Errorf("Authorization %q, want Bearer s3cret", got)
	}
	if got := h.Get("X-Scope-OrgID"); got != "team-a" {
		t.Errorf("X-Scope-OrgID %q, want team-a", got)
	}
	series := c.series()
	if len(series) != 1 || len(series[0].Samples) != 1 || string(series[0].Samples[0].RawProfile) != "profile" {
		t.Fatalf("series %v, want one with the profile", series)
	}
	want := map[string]string{"__name__": "process_cpu", "service_name": "svc", "exe": "/a b/c"}
	if got := labelMap(series[0]); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("labels %v, want %v", got, want)
	}
}

// TestPushTenant checks that the server files the agent's profiles under
// its tenant.
func TestPushTenant(t *testing.T) {
	ts := startServer(t, nil)
	p := testPusher(t, ts.URL, 1<<20)
	p.opts.tenant = "team-a"
	p.enqueue([]*pushItem{newPushItem(labels.FromStrings("service_name", "svc", "pid", "1"), encodeProfile(t, readStack))})
	runPusher(t, p)
	waitFor(t, 10*time.Second, "a push", func() bool { st, _, _ := p.snapshot(); return st.pushed == 1 })
	if s := seriesOf(t, ts.URL, `cpu{service_name="svc"}`, "team-a"); len(s) != 1 {
		t.Errorf("tenant team-a sees %v, want one series", s)
	}
	if s := seriesOf(t, ts.URL, `cpu{service_name="svc"}`, ""); len(s) != 0 {
		t.Errorf("the default tenant sees %v, want nothing", s)
	}
}

// TestPushRejected sends a batch with one profile the server refuses: the
// other is stored, the refused one counted, and nothing is retried.
func TestPushRejected(t *testing.T) {
	ts := startServer(t, nil)
	p := testPusher(t, ts.URL, 1<<20)
	p.enqueue([]*pushItem{
		newPushItem(labels.FromStrings("service_name", "bad", "pid", "1"), []byte("not a profile")),
		newPushItem(labels.FromStrings("service_name", "good", "pid", "2"), encodeProfile(t, readStack)),
	})
	runPusher(t, p)
	waitFor(t, 10*time.Second, "the batch answered", func() bool { st, _, _ := p.snapshot(); return st.pushed+st.rejected == 2 })
	st, queued, _ := p.snapshot()
	if st.pushed != 1 || st.rejected != 1 || st.failed != 0 || queued != 0 {
		t.Errorf("stats %+v, %d queued; want 1 pushed, 1 rejected, no failure, none queued", st, queued)
	}
	if s := seriesOf(t, ts.URL, `cpu{service_name="good"}`, ""); len(s) != 1 {
		t.Errorf("series of good: %v, want 1", s)
	}
}

// TestPushHalvesBatches pushes to a server that takes smaller messages than
// the pusher's batches: the pusher sends fewer profiles at a time until
// they fit, and every profile arrives.
func TestPushHalvesBatches(t *testing.T) {
	cfgServer := startServerWith(t, nil, func(c *server.Config) { c.MaxBodyBytes = 64 << 10 })
	p := testPusher(t, cfgServer.URL, 8<<20)
	var items []*pushItem
	for pid := 1; pid <= 8; pid++ {
		// 30 KiB of incompressible bytes in a comment: a valid profile
		// that gzip cannot shrink.
		items = append(items, newPushItem(labels.FromStrings("service_name", "big", "pid", strconv.Itoa(pid)), bigProfile(t, 30<<10)))
	}
	p.enqueue(items)
	runPusher(t, p)
	waitFor(t, 15*time.Second, "8 profiles pushed", func() bool { st, _, _ := p.snapshot(); return st.pushed == 8 })
	if st, _, _ := p.snapshot(); st.rejected != 0 || st.dropped != 0 {
		t.Errorf("stats %+v: want nothing rejected or dropped", st)
	}
	if s := seriesOf(t, cfgServer.URL, `cpu{service_name="big"}`, ""); len(s) != 8 {
		t.Errorf("%d series, want 8", len(s))
	}
}

func bigProfile(t *testing.T, n int) []byte {
	t.Helper()
	var fs frameStats
	p := buildProfile(profileInput{
		stacks: []*stack{readStack}, user: testUserFrames, kernel: testKernelFrames,
		start: time.Now().Add(-time.Second), duration: time.Second, periodNanos: 1e7,
	}, &fs)
	noise := make([]byte, n)
	rand.Read(noise)
	p.Comments = []string{fmt.Sprintf("%x", noise)[:n]}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestBackoff(t *testing.T) {
	lo, hi := 100*time.Millisecond, 2*time.Second
	for attempt, want := range map[int]time.Duration{1: lo, 2: 2 * lo, 3: 4 * lo, 5: 16 * lo, 6: hi, 40: hi, 1000: hi} {
		for range 50 {
			if d := backoff(attempt, lo, hi); d < want/2 || d > want {
				t.Fatalf("backoff(%d) = %v, want within [%v, %v]", attempt, d, want/2, want)
			}
		}
	}
}

func TestRefusedCount(t *testing.T) {
	withMeta := func(msg, refused string) error {
		ce := connect.NewError(connect.CodeInvalidArgument, errors.New(msg))
		if refused != "" {
			ce.Meta().Set("Hearth-Refused-Profiles", refused)
		}
		return ce
	}
	for _, c := range []struct {
		name string
		err  error
		want int
	}{
		{"metadata", withMeta("anything", "2"), 2},
		{"metadata wins over the message", withMeta("1 of 5 profiles refused", "3"), 3},
		{"metadata out of range", withMeta("", "9"), 5},
		{"message of an older server", withMeta("1 of 5 profiles refused (the others were stored): x", ""), 1},
		{"message for another batch size", withMeta("1 of 4 profiles refused", ""), 5},
		{"not a connect error", errors.New("1 of 5 profiles refused"), 5},
	} {
		if got := refusedCount(c.err, 5); got != c.want {
			t.Errorf("%s: refusedCount = %d; want %d", c.name, got, c.want)
		}
	}
}

// TestPushWithToken pushes to a server that requires tokens: refused
// without one and counted as failed (not dropped), stored under the
// token's tenant once the token is there.
func TestPushWithToken(t *testing.T) {
	tokens := filepath.Join(t.TempDir(), "tokens.yaml")
	if err := os.WriteFile(tokens, []byte(`tokens:
  - {name: agent, token: agent-secret-1, tenants: [team-a], scopes: [write]}
  - {name: reader, token: reader-secret-1, tenants: [team-a], scopes: [read]}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	ts := startServerWith(t, nil, func(c *server.Config) { c.AuthTokensFile = tokens })
	p := testPusher(t, ts.URL, 1<<20)
	var token atomic.Value
	token.Store("")
	p.opts.token = func() string { return token.Load().(string) }
	p.enqueue([]*pushItem{newPushItem(labels.FromStrings("service_name", "svc", "pid", "1"), encodeProfile(t, readStack))})
	runPusher(t, p)
	waitFor(t, 10*time.Second, "a refused push", func() bool { st, _, _ := p.snapshot(); return st.failed > 0 })
	if st, queued, _ := p.snapshot(); st.pushed != 0 || st.dropped != 0 || queued == 0 {
		t.Fatalf("stats %+v, %d queued, without a token; want nothing pushed or dropped, the profile still queued", st, queued)
	}
	token.Store("agent-secret-1")
	waitFor(t, 10*time.Second, "a push with the token", func() bool { st, _, _ := p.snapshot(); return st.pushed == 1 })

	req, _ := http.NewRequest("GET", ts.URL+"/api/v1/series?"+url.Values{"query": {`cpu{service_name="svc"}`}, "from": {"-1h"}, "until": {"now"}}.Encode(), nil)
	req.Header.Set("Authorization", "Bearer reader-secret-1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"service_name":"svc"`) {
		t.Fatalf("series of team-a with the reader's token: %d %s; want the pushed series", resp.StatusCode, body)
	}
}

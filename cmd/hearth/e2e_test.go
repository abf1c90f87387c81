package main_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gpprof "github.com/google/pprof/profile"
	"github.com/hearth-profiler/hearth/internal/testfiles"
)

var hearthBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hearth-e2e")
	if err != nil {
		panic(err)
	}
	hearthBin = filepath.Join(dir, "hearth")
	out, err := exec.Command("go", "build", "-o", hearthBin, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build hearth: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type proc struct {
	cmd  *exec.Cmd
	url  string
	logs *bytes.Buffer
}

// startServer runs `hearth server` on dataDir and waits for /ready.
func startServer(t *testing.T, dataDir, addr string, extra ...string) *proc {
	t.Helper()
	var logs bytes.Buffer
	args := append([]string{"server", "--listen", addr, "--data", dataDir, "--self-profile.interval", "0", "--otlp.grpc.listen="}, extra...)
	cmd := exec.Command(hearthBin, args...)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, url: "http://" + addr, logs: &logs}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(p.url + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("server not ready after 30s; logs:\n%s", logs.String())
	return nil
}

func (p *proc) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	err := p.cmd.Wait()
	if sig == syscall.SIGTERM && err != nil {
		t.Fatalf("server exited with %v after SIGTERM; logs:\n%s", err, p.logs.String())
	}
}

func push(client *http.Client, base, svc string, ts int64, body []byte) error {
	u := fmt.Sprintf("%s/ingest?name=%s.cpu{env=e2e}&format=pprof&from=%d&until=%d", base, svc, ts, ts+1)
	resp, err := client.Post(u, "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("%d %s", resp.StatusCode, msg)
	}
	return nil
}

func getBody(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	return string(b)
}

// answers queries every answer type over [from, until).
func answers(t *testing.T, base string, from, until int64) map[string]string {
	t.Helper()
	q := func(path string, kv ...string) string {
		v := url.Values{"query": {`cpu{env="e2e"}`}, "from": {fmt.Sprint(from)}, "until": {fmt.Sprint(until)}}
		for i := 0; i < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return base + path + "?" + v.Encode()
	}
	return map[string]string{
		"flame":  getBody(t, q("/api/v1/query/flamegraph", "max_nodes", "100000")),
		"top":    getBody(t, q("/api/v1/query/top")),
		"series": getBody(t, q("/api/v1/query/series", "step", "1s", "group_by", "service_name")),
		"pprof":  getBody(t, q("/api/v1/query/pprof", "query", `{env="e2e"}`)),
		"labels": getBody(t, q("/api/v1/series")),
	}
}

// writeAndKill runs workers writers, which call write(i) for i from 0 to
// n-1 between them, until at least minAcked writes are acknowledged
// (write returned nil); then it kills p with SIGKILL, waits for the
// writers to stop, and returns the i of every acknowledged write.
func writeAndKill(t *testing.T, p *proc, workers, n, minAcked int, write func(i int) error) map[int]bool {
	t.Helper()
	var mu sync.Mutex
	acked := map[int]bool{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; ctx.Err() == nil && i < n; i += workers {
				if write(i) == nil {
					mu.Lock()
					acked[i] = true
					mu.Unlock()
				}
			}
		})
	}
	for {
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		k := len(acked)
		mu.Unlock()
		if k >= minAcked {
			break
		}
	}
	p.stop(t, syscall.SIGKILL)
	cancel()
	wg.Wait()
	return acked
}

// TestKill9 kills the server with SIGKILL during a stream of writes,
// restarts it, and finds every acknowledged profile, with the same answers
// as before.
func TestKill9(t *testing.T) {
	files := testfiles.CorpusCPU(t)
	var bodies [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, b)
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	srv := startServer(t, dir, addr)
	client := &http.Client{Timeout: 10 * time.Second}

	// Phase 1: acknowledged writes, then the answers they give.
	base := int64(1_700_000_000)
	for i := 0; i < 40; i++ {
		if err := push(client, srv.url, fmt.Sprintf("svc%d", i%4), base+int64(i), bodies[i%len(bodies)]); err != nil {
			t.Fatal(err)
		}
	}
	before := answers(t, srv.url, base, base+40)

	// Phase 2: four writers; kill -9 while they write.
	start := base + 1000
	acked := writeAndKill(t, srv, 4, 5000, 300, func(i int) error {
		return push(client, srv.url, fmt.Sprintf("svc%d", i%4), start+int64(i), bodies[i%len(bodies)])
	})
	t.Logf("%d writes acknowledged before SIGKILL", len(acked))

	srv = startServer(t, dir, addr)
	after := answers(t, srv.url, base, base+40)
	for k := range before {
		if before[k] != after[k] {
			t.Errorf("%s answer changed across kill -9 and restart", k)
		}
	}
	// Every acknowledged profile of phase 2 is there, at its second.
	found := map[int64]bool{}
	for svc := 0; svc < 4; svc++ {
		ser := getBody(t, srv.url+"/api/v1/query/series?"+url.Values{
			"query": {fmt.Sprintf(`cpu{service_name="svc%d"}`, svc)}, "from": {fmt.Sprint(start)}, "until": {fmt.Sprint(start + 5000)}, "step": {"1s"},
		}.Encode())
		for _, f := range strings.Split(ser, "[")[1:] {
			var ms int64
			if _, err := fmt.Sscanf(f, "%d,", &ms); err == nil && ms > 0 {
				found[ms/1000] = true
			}
		}
	}
	for i := range acked {
		if ts := start + int64(i); !found[ts] {
			t.Errorf("acknowledged profile at %d lost", ts)
		}
	}

	// A clean restart changes nothing either.
	whole := answers(t, srv.url, base, start+5000)
	srv.stop(t, syscall.SIGTERM)
	srv = startServer(t, dir, addr)
	again := answers(t, srv.url, base, start+5000)
	for k := range whole {
		if whole[k] != again[k] {
			t.Errorf("%s answer changed across SIGTERM and restart", k)
		}
	}
	srv.stop(t, syscall.SIGTERM)
}

// TestCLI pushes the shared profiles with `hearth push`, queries them with
// `hearth query` in every output, and opens the pprof with go tool pprof.
func TestCLI(t *testing.T) {
	srv := startServer(t, t.TempDir(), freeAddr(t))
	run := func(args ...string) (string, string, int) {
		cmd := exec.Command(hearthBin, args...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), errb.String(), code
	}
	files := testfiles.Pprof(t)
	out, stderr, code := run(append(append([]string{"push"}, files...), "--server", srv.url, "--labels", "service_name=cli,env=test")...)
	if code != 0 || strings.Count(out, "pushed ") != len(files) {
		t.Fatalf("push: exit %d\n%s%s", code, out, stderr)
	}
	// Each line says the time the profile was stored at, and why that one.
	pushedLine := regexp.MustCompile(`^pushed \S+, stored at (\S+) \((the time the profile records|now: the file records no time)\)$`)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		m := pushedLine.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("push printed %q", line)
			continue
		}
		if _, err := time.Parse(time.RFC3339, m[1]); err != nil {
			t.Errorf("push printed %q: %v", line, err)
		}
	}
	for _, output := range []string{"flame", "top", "series", "json"} {
		out, stderr, code = run("query", `cpu{service_name="cli"}`, "--server", srv.url, "--from", "-1h", "--output", output)
		if code != 0 || !strings.Contains(out, "process_cpu") && output != "series" || output == "series" && !strings.Contains(out, `service_name="cli"`) && !strings.Contains(out, "{}") {
			t.Errorf("query --output %s: exit %d\n%s%s", output, code, out, stderr)
		}
	}
	pf := filepath.Join(t.TempDir(), "all.pb.gz")
	_, stderr, code = run("query", `{service_name="cli"}`, "--server", srv.url, "--output", "pprof", "-o", pf)
	if code != 0 {
		t.Fatalf("query --output pprof: exit %d: %s", code, stderr)
	}
	data, err := os.ReadFile(pf)
	if err != nil {
		t.Fatal(err)
	}
	p, err := gpprof.ParseData(data)
	if err != nil {
		t.Fatal(err)
	}
	// Every sample type of every file pushed comes back.
	want := map[string]bool{}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		fp, err := gpprof.ParseData(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range fp.SampleType {
			want[st.Type+"/"+st.Unit] = true
		}
	}
	for _, st := range p.SampleType {
		delete(want, st.Type+"/"+st.Unit)
	}
	if len(want) > 0 {
		t.Errorf("exported pprof lacks sample types %v", want)
	}
	if out, err := exec.Command("go", "tool", "pprof", "-top", pf).CombinedOutput(); err != nil {
		t.Errorf("go tool pprof cannot open the export: %v\n%s", err, out)
	}

	// A selection without data says so.
	out, _, code = run("query", `cpu{service_name="nobody"}`, "--server", srv.url)
	if code != 0 || !strings.Contains(out, "no samples match") {
		t.Errorf("query of nothing: exit %d, output %q", code, out)
	}

	// Failures: non-zero exit and one readable line on stderr.
	for _, args := range [][]string{
		{"query", `cpu{service_name=`, "--server", srv.url},
		{"query", `cpu{}`, "--server", srv.url, "--from", "soon"},
		{"push", "/nonexistent.pb.gz", "--server", srv.url, "--labels", "service_name=x"},
		{"push", files[0], "--server", srv.url},
		{"query", `cpu{}`, "--server", "http://127.0.0.1:1"},
	} {
		_, stderr, code := run(args...)
		if code == 0 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.HasPrefix(stderr, "hearth ") {
			t.Errorf("%v: exit %d, stderr %q: want non-zero and one line", args, code, stderr)
		}
	}
}

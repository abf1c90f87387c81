package main_test

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestClusterExample runs examples/cluster/run.sh --smoke, the README's
// example of two ingesters, a querier and a compactor on a local S3
// server, with the hearth binary under test: it must start them all and
// find what it sends on the querier, before and after the uploads.
func TestClusterExample(t *testing.T) {
	port := freePorts(t, 0, 1, 2, 3, 9)
	work := t.TempDir()
	cmd := exec.Command("bash", "examples/cluster/run.sh", "--smoke")
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "HEARTH="+hearthBin, "WORK="+work, fmt.Sprintf("PORT=%d", port))
	done := make(chan struct{})
	var out []byte
	var err error
	go func() {
		out, err = cmd.CombinedOutput()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(3 * time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("the example ran 3 minutes:\n%s", out)
	}
	if err != nil || !strings.Contains(string(out), "smoke: ok") {
		logs, _ := filepath.Glob(filepath.Join(work, "*.log"))
		var tails []string
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			tails = append(tails, fmt.Sprintf("== %s\n%s", filepath.Base(l), lastLines(string(b), 15)))
		}
		t.Fatalf("examples/cluster/run.sh --smoke: %v\n%s\n%s", err, out, strings.Join(tails, "\n"))
	}
}

// freePorts returns a port p such that p+d is free on loopback for each
// offset d. It draws p below Linux's ephemeral ports (32768 and up), so
// that the connections of other tests do not take p+d meanwhile.
func freePorts(t *testing.T, offsets ...int) int {
	t.Helper()
	var last error
	for range 100 {
		p := 20000 + rand.IntN(12000)
		free := true
		for _, d := range offsets {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+d))
			if err != nil {
				free, last = false, err
				break
			}
			l.Close()
		}
		if free {
			return p
		}
	}
	t.Fatalf("no run of free ports on loopback; last: %v", last)
	return 0
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

package auth

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hearth-profiler/hearth/internal/logtest"
)

func tokenFile(name, secret, tenant string) string {
	return "tokens:\n  - name: " + name + "\n    token: " + secret + "\n    tenants: [" + tenant + "]\n    scopes: [read]\n"
}

func TestFileReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var logs logtest.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	if _, err := OpenFile(path, logger); err == nil {
		t.Fatal("OpenFile of a missing file: no error")
	}
	write("tokens: [\n")
	if _, err := OpenFile(path, logger); err == nil {
		t.Fatal("OpenFile of a bad file: no error")
	}

	write(tokenFile("first", "first-secret-1", "a"))
	f, err := OpenFile(path, logger)
	if err != nil {
		t.Fatal(err)
	}
	if f.Tokens().Lookup("first-secret-1") == nil {
		t.Fatal("first token not loaded")
	}

	// Reload, as SIGHUP and POST /-/reload call it.
	write(tokenFile("second", "second-secret-2", "b"))
	if err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	if f.Tokens().Lookup("first-secret-1") != nil || f.Tokens().Lookup("second-secret-2") == nil {
		t.Fatal("Reload did not replace the tokens")
	}
	// A bad file keeps the tokens loaded before.
	write("tokens:\n  - name: third\n    token: third-secret-3\n    tenants: [b]\n    scopes: [reed]\n")
	if err := f.Reload(); err == nil || !strings.Contains(err.Error(), `unknown scope "reed"`) {
		t.Fatalf("Reload of a bad file = %v", err)
	}
	if f.Tokens().Lookup("second-secret-2") == nil {
		t.Fatal("a bad file dropped the tokens loaded before")
	}

	// Watch sees changes without being asked, including one of the same
	// size written within the same second as the last read.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Watch(ctx, 10*time.Millisecond)
	}()
	defer func() {
		cancel()
		<-done
	}()
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("Watch: %s did not happen", what)
			}
		}
	}
	write(tokenFile("fourth", "fourth-secret-4", "c"))
	waitFor("fourth token loaded", func() bool { return f.Tokens().Lookup("fourth-secret-4") != nil })
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	write(tokenFile("fifth!", "fifth!-secret-5", "c")) // the same size
	if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	waitFor("fifth token loaded, same size and time", func() bool { return f.Tokens().Lookup("fifth!-secret-5") != nil })

	// A bad file while watching: logged once, old tokens stay.
	write("tokens:\n  - name: sixth\n    token: sixth-secret-6\n    tenants: []\n    scopes: [read]\n")
	waitFor("bad file logged", func() bool { return strings.Contains(logs.String(), "tenants: empty") })
	time.Sleep(100 * time.Millisecond)
	if n := strings.Count(logs.String(), "tenants: empty"); n != 1 {
		t.Errorf("a bad file was logged %d times; want once", n)
	}
	if f.Tokens().Lookup("fifth!-secret-5") == nil {
		t.Error("a bad file dropped the tokens loaded before")
	}
	// A removed file: the tokens stay.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	waitFor("missing file logged", func() bool { return strings.Contains(logs.String(), "no such file") })
	if f.Tokens().Lookup("fifth!-secret-5") == nil {
		t.Error("a removed file dropped the tokens loaded before")
	}

	for _, secret := range []string{"first-secret-1", "second-secret-2", "third-secret-3", "fourth-secret-4", "fifth!-secret-5", "sixth-secret-6"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log holds the token %q:\n%s", secret, logs.String())
		}
	}
	for _, name := range []string{"first", "second", "fourth", "fifth!"} {
		if !strings.Contains(logs.String(), name) {
			t.Errorf("the log does not name token %q", name)
		}
	}
}

func TestFileWarnsOfReadablePlainTokens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.yaml")
	if err := os.WriteFile(path, []byte(tokenFile("open", "open-secret", "a")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil { // past the umask
		t.Fatal(err)
	}
	var logs logtest.Buffer
	if _, err := OpenFile(path, slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "every user of this host can read it") {
		t.Errorf("no warning of a world-readable file of plain tokens:\n%s", logs.String())
	}
}

package scrape

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v2"
)

// TestClientFingerprint checks that a changed secret changes the
// fingerprint although the YAML form of the settings, which masks secrets,
// stays the same, and that the same settings parsed twice agree.
func TestClientFingerprint(t *testing.T) {
	const base = `
scrape_configs:
  - job_name: a
    basic_auth: {username: u, password: PASSWORD}
    tls_config: {cert: CERT, key: KEY}
    proxy_url: http://user:PROXY@proxy:3128
    proxy_connect_header: {X-Proxy: [CONNECT]}
    http_headers: {X-Token: {values: [v], secrets: [HEADER]}}
`
	load := func(src string) *ScrapeConfig {
		t.Helper()
		return mustLoad(t, src).ScrapeConfigs[0]
	}
	fp := func(sc *ScrapeConfig) string { return clientFingerprint(&sc.HTTPClientConfig) }
	dump := func(sc *ScrapeConfig) string {
		t.Helper()
		b, err := yaml.Marshal(sc.HTTPClientConfig)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	want := load(base)
	if got := load(base); fp(got) != fp(want) {
		t.Errorf("the same settings parsed twice have different fingerprints")
	}
	for _, secret := range []string{"PASSWORD", "KEY", "PROXY", "CONNECT", "HEADER"} {
		sc := load(strings.Replace(base, secret, secret+"2", 1))
		if dump(sc) != dump(want) {
			t.Errorf("changing %s changed the YAML form; the test means to change only what YAML masks:\n%s", secret, dump(sc))
		}
		if fp(sc) == fp(want) {
			t.Errorf("changing %s kept the fingerprint", secret)
		}
	}
	if sc := load(strings.Replace(base, "{values: [v],", "{values: [w],", 1)); fp(sc) == fp(want) {
		t.Errorf("changing a header value kept the fingerprint")
	}
}

// TestReloadWithChangedSecret checks that a reload that changes only a
// password restarts the job's loop with the new password, and that one
// that changes nothing keeps the loop.
func TestReloadWithChangedSecret(t *testing.T) {
	profile := encodeProfile(t, goroutineProfile(1))
	ft := newFakeTarget(t, map[string]http.HandlerFunc{"/debug/pprof/goroutine": serveBytes(profile)})
	config := func(password string) *Config {
		return mustLoad(t, fmt.Sprintf(`
scrape_configs:
  - job_name: a
    scrape_interval: 100ms
    basic_auth: {username: u, password: %s}
    static_configs: [{targets: [%q]}]
    profiling_config: %s
`, password, ft.addr(), onlyEndpoints("goroutine")))
	}
	m := NewManager(&countingAppender{}, testLogger(t), Options{})
	if err := m.ApplyConfig(config("first")); err != nil {
		t.Fatal(err)
	}
	go m.Run(context.Background())
	t.Cleanup(m.Stop)
	basic := func(user, pass string) string {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		r.SetBasicAuth(user, pass)
		return r.Header.Get("Authorization")
	}
	auth := func() string { ft.mu.Lock(); defer ft.mu.Unlock(); return ft.lastAuth }
	waitFor(t, 10*time.Second, "a request with the first password", func() bool { return auth() == basic("u", "first") })
	key := ft.addr() + " goroutine"
	l := loopsOf(m, "a")[key]

	if err := m.ApplyConfig(config("first")); err != nil {
		t.Fatal(err)
	}
	if loopsOf(m, "a")[key] != l {
		t.Errorf("reapplying the same password replaced the loop")
	}
	if err := m.ApplyConfig(config("second")); err != nil {
		t.Fatal(err)
	}
	if loopsOf(m, "a")[key] == l {
		t.Errorf("changing the password kept the old loop")
	}
	waitFor(t, 10*time.Second, "a request with the second password", func() bool { return auth() == basic("u", "second") })
}

// TestPrometheusClientFields scrapes with settings that only Prometheus'
// HTTP client configuration has: an OAuth2 token fetched from a token URL
// and extra headers, one of them read from a file.
func TestPrometheusClientFields(t *testing.T) {
	profile := encodeProfile(t, goroutineProfile(1))
	var mu sync.Mutex
	var got http.Header
	ft := newFakeTarget(t, map[string]http.HandlerFunc{
		"/token": func(w http.ResponseWriter, r *http.Request) {
			if id, secret, _ := r.BasicAuth(); id != "hearth" || secret != "client-secret" || r.FormValue("grant_type") != "client_credentials" {
				http.Error(w, "bad client", http.StatusUnauthorized)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"access_token": "oauth-token", "token_type": "Bearer", "expires_in": 3600}`)
		},
		"/debug/pprof/goroutine": func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			got = r.Header.Clone()
			mu.Unlock()
			w.Write(profile)
		},
	})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "tenant"), []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "hearth.yml")
	src := fmt.Sprintf(`
scrape_configs:
  - job_name: oauth
    scrape_interval: 100ms
    oauth2:
      client_id: hearth
      client_secret: client-secret
      token_url: http://%s/token
    http_headers:
      X-Scope: {values: [team-a], secrets: [hidden]}
      X-Tenant: {files: [tenant]}
    static_configs: [{targets: [%q]}]
    profiling_config: %s
`, ft.addr(), ft.addr(), onlyEndpoints("goroutine"))
	if err := os.WriteFile(cfgFile, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadFile(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	m := NewManager(&countingAppender{}, testLogger(t), Options{})
	if err := m.ApplyConfig(cfg); err != nil {
		t.Fatal(err)
	}
	go m.Run(context.Background())
	t.Cleanup(m.Stop)
	waitFor(t, 10*time.Second, "a stored scrape", func() bool { return stored(m, ft.addr(), "goroutine") > 0 })
	mu.Lock()
	defer mu.Unlock()
	for name, want := range map[string]string{
		"Authorization": "Bearer oauth-token",
		"X-Scope":       "team-a,hidden",
		"X-Tenant":      "from-file",
		"User-Agent":    userAgent,
	} {
		if v := strings.Join(got.Values(name), ","); v != want {
			t.Errorf("the target saw %s: %q; want %q", name, v, want)
		}
	}
}

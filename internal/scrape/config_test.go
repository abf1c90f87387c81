package scrape

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hearth-profiler/hearth/internal/ingest"
	yaml "go.yaml.in/yaml/v2"
)

func mustLoad(t *testing.T, src string) *Config {
	t.Helper()
	cfg, err := Load([]byte(src))
	if err != nil {
		t.Fatalf("Load:\n%s\nerror: %v", src, err)
	}
	return cfg
}

func TestLoadDefaults(t *testing.T) {
	cfg := mustLoad(t, `
scrape_configs:
  - job_name: api
    static_configs:
      - targets: ["localhost:6060"]
`)
	g := cfg.Global
	if g.ScrapeInterval != DefaultScrapeInterval || g.ScrapeTimeout != DefaultScrapeTimeout || g.BodySizeLimit != DefaultBodySizeLimit {
		t.Errorf("global = %+v; want interval %s, timeout %s, body limit %s", g, DefaultScrapeInterval, DefaultScrapeTimeout, DefaultBodySizeLimit)
	}
	sc := cfg.ScrapeConfigs[0]
	if sc.ScrapeInterval != g.ScrapeInterval || sc.ScrapeTimeout != g.ScrapeTimeout || sc.Scheme != "http" || sc.Tenant != "anonymous" {
		t.Errorf("job = interval %s timeout %s scheme %q tenant %q; want the global ones, http, anonymous", sc.ScrapeInterval, sc.ScrapeTimeout, sc.Scheme, sc.Tenant)
	}
	want := []Endpoint{
		{Name: "process_cpu", Path: "/debug/pprof/profile", Seconds: 10},
		{Name: "memory", Path: "/debug/pprof/heap", SampleTypes: []string{"inuse_objects", "inuse_space"}},
		{Name: "allocs", Path: "/debug/pprof/allocs", Delta: true, SampleTypes: []string{"alloc_objects", "alloc_space"}},
		{Name: "goroutine", Path: "/debug/pprof/goroutine"},
		{Name: "mutex", Path: "/debug/pprof/mutex", Delta: true, Contention: ingest.ContentionMutex},
		{Name: "block", Path: "/debug/pprof/block", Delta: true, Contention: ingest.ContentionBlock},
	}
	if diff := cmp.Diff(want, sc.Endpoints()); diff != "" {
		t.Errorf("endpoints (-want +got):\n%s", diff)
	}
	// Validate again must not change anything.
	before := sc.Endpoints()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, sc.Endpoints()); diff != "" {
		t.Errorf("second Validate changed the endpoints (-first +second):\n%s", diff)
	}
}

func TestLoadProfilingConfig(t *testing.T) {
	cfg := mustLoad(t, `
global:
  scrape_interval: 1m
  external_labels: {region: eu}
scrape_configs:
  - job_name: api
    scheme: https
    tenant: team-a
    params: {debug: ["0"]}
    body_size_limit: 1MB
    static_configs:
      - targets: ["a:1", "[::1]:2"]
        labels: {env: prod}
    profiling_config:
      path_prefix: /admin/
      pprof_config:
        block: {enabled: false}
        mutex: {enabled: false}
        memory:
          keep_sample_type: [{type: inuse_space}]
        process_cpu: {seconds: 30}
        fgprof:
          path: /debug/fgprof?format=pprof
          seconds: 5
        delta_block:
          path: /debug/pprof/delta_block
          kind: block
`)
	sc := cfg.ScrapeConfigs[0]
	if sc.ScrapeInterval != Duration(time.Minute) || sc.ScrapeTimeout != Duration(10*time.Second) {
		t.Errorf("interval %s timeout %s; want 1m and 10s", sc.ScrapeInterval, sc.ScrapeTimeout)
	}
	if sc.BodySizeLimit != 1<<20 || sc.Tenant != "team-a" || sc.Scheme != "https" {
		t.Errorf("body limit %d tenant %q scheme %q", sc.BodySizeLimit, sc.Tenant, sc.Scheme)
	}
	want := []Endpoint{
		{Name: "process_cpu", Path: "/admin/debug/pprof/profile", Seconds: 30},
		{Name: "memory", Path: "/admin/debug/pprof/heap", SampleTypes: []string{"inuse_space"}},
		{Name: "allocs", Path: "/admin/debug/pprof/allocs", Delta: true, SampleTypes: []string{"alloc_objects", "alloc_space"}},
		{Name: "goroutine", Path: "/admin/debug/pprof/goroutine"},
		{Name: "delta_block", Path: "/admin/debug/pprof/delta_block", Contention: ingest.ContentionBlock},
		{Name: "fgprof", Path: "/admin/debug/fgprof?format=pprof", Seconds: 5},
	}
	if diff := cmp.Diff(want, sc.Endpoints()); diff != "" {
		t.Errorf("endpoints (-want +got):\n%s", diff)
	}
	// The URL of a loop carries params, the path's query and seconds.
	tg := newTarget(sc, cfg.Global.ExternalLabels, "a:1", sc.StaticConfigs[0].Labels)
	got := map[string]string{}
	for _, ep := range sc.Endpoints() {
		got[ep.Name] = newLoopSpec(sc, tg, ep, "").URL
	}
	for name, u := range map[string]string{
		"process_cpu": "https://a:1/admin/debug/pprof/profile?debug=0&seconds=30",
		"fgprof":      "https://a:1/admin/debug/fgprof?debug=0&format=pprof&seconds=5",
		"memory":      "https://a:1/admin/debug/pprof/heap?debug=0",
	} {
		if got[name] != u {
			t.Errorf("URL of %s = %q; want %q", name, got[name], u)
		}
	}
	wantLabels := map[string]string{"env": "prod", "region": "eu", "job": "api", "instance": "a:1", "service_name": "api"}
	if diff := cmp.Diff(wantLabels, tg.series.Map()); diff != "" {
		t.Errorf("series labels (-want +got):\n%s", diff)
	}
}

func TestScrapeTimeoutDefaults(t *testing.T) {
	for _, tc := range []struct {
		src                   string
		globalTimeout         Duration
		jobInterval, jobTimer Duration
	}{
		// A short global interval shortens the default timeout.
		{"global: {scrape_interval: 2s}\nscrape_configs: [{job_name: a}]", Duration(2 * time.Second), Duration(2 * time.Second), Duration(2 * time.Second)},
		// A job interval below the global timeout caps the job's timeout.
		{"scrape_configs: [{job_name: a, scrape_interval: 3s}]", DefaultScrapeTimeout, Duration(3 * time.Second), Duration(3 * time.Second)},
		{"global: {scrape_timeout: 4s}\nscrape_configs: [{job_name: a, scrape_interval: 1m}]", Duration(4 * time.Second), Duration(time.Minute), Duration(4 * time.Second)},
		// CPU-only jobs may wait longer than the interval.
		{"scrape_configs: [{job_name: a, scrape_interval: 5s, scrape_timeout: 8s, profiling_config: {pprof_config: {memory: {enabled: false}, allocs: {enabled: false}, goroutine: {enabled: false}, mutex: {enabled: false}, block: {enabled: false}}}}]", DefaultScrapeTimeout, Duration(5 * time.Second), Duration(8 * time.Second)},
	} {
		cfg := mustLoad(t, tc.src)
		sc := cfg.ScrapeConfigs[0]
		if cfg.Global.ScrapeTimeout != tc.globalTimeout || sc.ScrapeInterval != tc.jobInterval || sc.ScrapeTimeout != tc.jobTimer {
			t.Errorf("%s:\nglobal timeout %s, job interval %s timeout %s; want %s, %s, %s", tc.src,
				cfg.Global.ScrapeTimeout, sc.ScrapeInterval, sc.ScrapeTimeout, tc.globalTimeout, tc.jobInterval, tc.jobTimer)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"unknown top-level field", "scrape_config: []", `line 1: unknown field "scrape_config" at the top level`},
		{"unknown job field", "scrape_configs:\n  - job_name: a\n    scrape_intervall: 5s", `line 3: unknown field "scrape_intervall" in a scrape config`},
		{"unknown endpoint field", "scrape_configs:\n  - job_name: a\n    profiling_config:\n      pprof_config:\n        memory: {enable: false}", `line 5: unknown field "enable" in a pprof_config endpoint`},
		{"duplicate key", "scrape_configs:\n  - job_name: a\n    job_name: b", `line 3: field "job_name" set twice in a scrape config`},
		{"missing job name", "scrape_configs: [{scrape_interval: 5s}]", "scrape_configs[0]: job_name is required"},
		{"duplicate job name", "scrape_configs: [{job_name: a}, {job_name: b}, {job_name: a}]", `scrape_configs[2]: duplicate job_name "a" (also scrape_configs[0])`},
		{"bad duration", "global: {scrape_interval: 10}", `not a valid duration string: "10"`},
		{"duration units out of order", "global: {scrape_interval: 10s1m}", `not a valid duration string: "10s1m"`},
		{"unknown duration unit", "scrape_configs: [{job_name: a, scrape_interval: 1x}]", `job "a": unknown unit "x" in duration "1x"`},
		{"target without port", "scrape_configs: [{job_name: a, static_configs: [{targets: [localhost]}]}]", `job "a": static_configs[0]: target "localhost": want host:port: missing port in address`},
		{"target with scheme", "scrape_configs: [{job_name: a, static_configs: [{targets: ['http://x:80']}]}]", `job "a": static_configs[0]: target "http://x:80": want host:port without a scheme`},
		{"target with bad port", "scrape_configs: [{job_name: a, static_configs: [{targets: ['x:http']}]}]", `target "x:http": want host:port: port "http" is not a number from 1 to 65535`},
		{"target with path", "scrape_configs: [{job_name: a, static_configs: [{targets: ['x:80/debug']}]}]", `target "x:80/debug": want host:port without a path`},
		{"timeout over interval", "scrape_configs: [{job_name: a, scrape_interval: 5s, scrape_timeout: 6s}]", `job "a": scrape_timeout 6s is greater than scrape_interval 5s (allowed only when every endpoint takes seconds, as process_cpu does; memory does not)`},
		{"global timeout over interval", "global: {scrape_interval: 5s, scrape_timeout: 6s}", "global: scrape_timeout 6s is greater than scrape_interval 5s"},
		{"reserved label", "scrape_configs: [{job_name: a, static_configs: [{targets: ['x:1'], labels: {__x: y}}]}]", `job "a": static_configs[0]: labels: label name "__x" is reserved`},
		{"invalid label", "scrape_configs: [{job_name: a, static_configs: [{targets: ['x:1'], labels: {a-b: y}}]}]", `job "a": static_configs[0]: labels: invalid label name "a-b"`},
		{"invalid external label", "global: {external_labels: {1a: x}}", `global: external_labels: invalid label name "1a"`},
		{"bad scheme", "scrape_configs: [{job_name: a, scheme: ftp}]", `job "a": scheme "ftp": want http or https`},
		{"bad tenant", "scrape_configs: [{job_name: a, tenant: a/b}]", `job "a": tenant "a/b" is not a valid tenant ID`},
		{"custom endpoint without path", "scrape_configs: [{job_name: a, profiling_config: {pprof_config: {fgprof: {seconds: 1}}}}]", `job "a": profiling_config: pprof_config fgprof: path is required`},
		{"relative path", "scrape_configs: [{job_name: a, profiling_config: {pprof_config: {memory: {path: heap}}}}]", `pprof_config memory: path "heap" must start with /`},
		{"bad endpoint name", "scrape_configs: [{job_name: a, profiling_config: {pprof_config: {my-prof: {path: /x}}}}]", `pprof_config my-prof: invalid name`},
		{"all disabled", "scrape_configs: [{job_name: a, profiling_config: {pprof_config: {process_cpu: {enabled: false}, memory: {enabled: false}, allocs: {enabled: false}, goroutine: {enabled: false}, mutex: {enabled: false}, block: {enabled: false}}}}]", `job "a": profiling_config: every pprof endpoint is disabled`},
		{"file_sd extension", "scrape_configs: [{job_name: a, file_sd_configs: [{files: [targets.txt]}]}]", `job "a": file_sd_configs[0]: files[0] "targets.txt": the name must end in .json, .yml or .yaml`},
		{"file_sd glob in dir", "scrape_configs: [{job_name: a, file_sd_configs: [{files: ['*/t.json']}]}]", `a glob may only be in the last path element`},
		{"file_sd without files", "scrape_configs: [{job_name: a, file_sd_configs: [{refresh_interval: 1m}]}]", `job "a": file_sd_configs[0]: files is empty`},
		{"two kinds of auth", "scrape_configs: [{job_name: a, bearer_token_file: /t, basic_auth: {username: u}}]", `job "a": at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be configured`},
		{"basic authorization", "scrape_configs: [{job_name: a, authorization: {type: Basic, credentials: x}}]", `job "a": authorization type cannot be set to "basic", use "basic_auth" instead`},
		{"cert without key", "scrape_configs: [{job_name: a, tls_config: {cert_file: /c}}]", `job "a": exactly one of key or key_file must be configured when a client certificate is configured`},
		{"job named after the failure", "scrape_configs: [{tls_config: {cert_file: /c}, job_name: a}]", `job "a": exactly one of key or key_file`},
		{"bad tls version", "scrape_configs: [{job_name: a, tls_config: {min_version: TLS9}}]", `job "a": unknown TLS version: TLS9`},
		{"unknown tls field", "scrape_configs:\n  - job_name: a\n    tls_config: {cafile: x}", `line 3: unknown field "cafile" in basic_auth, tls_config or oauth2`},
		{"unknown authorization field", "scrape_configs:\n  - job_name: a\n    authorization: {typ: x}", `line 3: unknown field "typ" in authorization`},
		{"bad proxy", "scrape_configs: [{job_name: a, proxy_url: 'localhost'}]", `job "a": proxy_url "localhost": want scheme://host:port`},
		{"no_proxy without proxy_url", "scrape_configs: [{job_name: a, no_proxy: example.com}]", `job "a": if no_proxy is configured, proxy_url must also be configured`},
		{"oauth2 without token_url", "scrape_configs: [{job_name: a, oauth2: {client_id: x}}]", `job "a": oauth2 token_url must be configured`},
		{"reserved header", "scrape_configs: [{job_name: a, http_headers: {Authorization: {values: [x]}}}]", `job "a": setting header "Authorization" is not allowed`},
		{"bad size", "global: {body_size_limit: 10XB}", `invalid size "10XB": unknown unit "XB"`},
		{"negative seconds", "scrape_configs: [{job_name: a, profiling_config: {pprof_config: {process_cpu: {seconds: -1}}}}]", `pprof_config process_cpu: seconds -1 must not be negative`},
		{"unknown limit", "limits:\n  max_serie_per_tenant: 5", `line 2: unknown field "max_serie_per_tenant" in limits`},
		{"unknown tenant limit", "limits:\n  overrides:\n    team-a:\n      query_timout: 1m", `line 4: unknown field "query_timout" in limits overrides`},
		{"negative limit", "limits: {overrides: {team-a: {query_max_series: -1}}}", `limits: overrides: tenant "team-a": query_max_series: -1 is negative`},
		{"bad tenant", "limits: {overrides: {'a/b': {}}}", `limits: overrides: "a/b" is not a valid tenant ID`},
		{"limit not a number", "limits: {max_samples: lots}", "line 1: cannot unmarshal !!str `lots` into int"},
		{"unknown storage field", "storage:\n  buckets: {}", `line 2: unknown field "buckets" in storage`},
		{"unknown bucket field", "storage:\n  bucket:\n    typ: s3", `line 3: unknown field "typ" in storage.bucket`},
		{"no bucket type", "storage: {bucket: {config: {directory: x}}}", `storage.bucket: type is required`},
		{"unknown bucket type", "storage: {bucket: {type: gcs}}", `storage.bucket: unknown type "gcs": want filesystem or s3`},
		{"no directory", "storage: {bucket: {type: filesystem}}", `directory is required for type filesystem`},
		{"unknown filesystem key", "storage: {bucket: {type: filesystem, config: {dir: x}}}", `unknown key "dir" for type filesystem`},
		{"no bucket name", "storage: {bucket: {type: s3, config: {endpoint: x}}}", `bucket is required for type s3`},
		{"no endpoint", "storage: {bucket: {type: s3, config: {bucket: x}}}", `endpoint is required for type s3`},
		{"unknown s3 key", "storage: {bucket: {type: s3, config: {bucket: x, endpoint: y, secret: z}}}", `field secret not found for type s3`},
		{"bad s3 value", "storage: {bucket: {type: s3, config: {bucket: x, endpoint: y, insecure: maybe}}}", "cannot unmarshal !!str `maybe` into bool"},
		{"key and key file", "storage: {bucket: {type: s3, config: {bucket: x, endpoint: y, secret_key: a, secret_key_file: b}}}", `secret_key and secret_key_file are both set`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load([]byte(tc.src))
			if err == nil {
				t.Fatalf("Load(%q) = nil error; want %q", tc.src, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load(%q) error:\n  %v\nwant it to contain:\n  %s", tc.src, err, tc.want)
			}
		})
	}
}

// TestDurations loads durations in Prometheus' forms, and checks that they
// are shown in a form that loads again.
func TestDurations(t *testing.T) {
	for s, want := range map[string]time.Duration{
		"10s": 10 * time.Second, "1m30s": 90 * time.Second, "500ms": 500 * time.Millisecond, "1d": 24 * time.Hour,
		"2w": 14 * 24 * time.Hour, "1y": 365 * 24 * time.Hour, "1h0m5s": time.Hour + 5*time.Second,
	} {
		src := fmt.Sprintf("global: {scrape_interval: %s, scrape_timeout: 1ms}", s)
		cfg, err := Load([]byte(src))
		if err != nil || time.Duration(cfg.Global.ScrapeInterval) != want {
			t.Errorf("Load(%q): %v; want scrape_interval %s", src, err, want)
			continue
		}
		shown := cfg.Global.ScrapeInterval.String()
		if again, err := Load([]byte("global: {scrape_interval: " + shown + "}")); err != nil || again.Global.ScrapeInterval != cfg.Global.ScrapeInterval {
			t.Errorf("%s is shown as %q, which does not load back: %v", s, shown, err)
		}
	}
	for _, s := range []string{`""`, "s", "10", "-1s", "1.5s", "1s1s", "1m1h", "10x", "99999999999999999999s", "1000000y"} {
		if _, err := Load([]byte("global: {scrape_interval: " + s + "}")); err == nil {
			t.Errorf("scrape_interval %s loaded; want an error", s)
		}
	}
}

func TestParseByteSize(t *testing.T) {
	for s, want := range map[string]ByteSize{"0": 0, "100": 100, "100B": 100, "1KB": 1024, "64MiB": 64 << 20, "2GB": 2 << 30, "1TiB": 1 << 40} {
		got, err := ParseByteSize(s)
		if err != nil || got != want {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", s, got, err, want)
			continue
		}
		if back, err := ParseByteSize(got.String()); err != nil || back != got {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", got.String(), back, err, got)
		}
	}
	for _, s := range []string{"", "MB", "-1MB", "1.5MB", "10XB", "99999999999TB"} {
		if b, err := ParseByteSize(s); err == nil {
			t.Errorf("ParseByteSize(%q) = %d; want an error", s, b)
		}
	}
}

func TestLoadFileRelativePaths(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hearth.yml")
	src := `
scrape_configs:
  - job_name: a
    bearer_token_file: secrets/token
    tls_config: {ca_file: /etc/ca.pem}
    file_sd_configs:
      - files: [targets/*.json]
`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sc := cfg.ScrapeConfigs[0]
	if got, want := sc.HTTPClientConfig.Authorization.CredentialsFile, filepath.Join(dir, "secrets/token"); got != want {
		t.Errorf("credentials file = %q; want %q", got, want)
	}
	if got := sc.HTTPClientConfig.TLSConfig.CAFile; got != "/etc/ca.pem" {
		t.Errorf("ca_file = %q; want the absolute path unchanged", got)
	}
	if got, want := sc.FileSDConfigs[0].Files[0], filepath.Join(dir, "targets/*.json"); got != want {
		t.Errorf("file_sd file = %q; want %q", got, want)
	}
	for src, want := range map[string]map[string]any{
		"storage: {bucket: {type: s3, config: {bucket: b, endpoint: e, access_key_file: ak, secret_key_file: /etc/sk}}}": {
			"bucket": "b", "endpoint": "e", "access_key_file": filepath.Join(dir, "ak"), "secret_key_file": "/etc/sk"},
		"storage: {bucket: {type: filesystem, config: {directory: blocks}}}": {"directory": filepath.Join(dir, "blocks")},
	} {
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := LoadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want, cfg.Storage.Bucket.Config); d != "" {
			t.Errorf("storage.bucket.config of %s (-want +got):\n%s", src, d)
		}
	}
	if _, err := LoadFile(filepath.Join(dir, "missing.yml")); err == nil || !strings.Contains(err.Error(), "missing.yml") {
		t.Errorf("LoadFile of a missing file: %v; want an error naming it", err)
	}
}

func TestSecretsHiddenWhenMarshalled(t *testing.T) {
	cfg := mustLoad(t, `
scrape_configs:
  - job_name: a
    basic_auth: {username: u, password: hunter2}
    tls_config: {key: "PRIVATE", cert: "CERT"}
storage:
  bucket: {type: s3, config: {bucket: b, endpoint: e, access_key: AK, secret_key: hunter3, session_token: hunter4}}
`)
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "hunter2") || strings.Contains(string(out), "PRIVATE") ||
		strings.Contains(string(out), "hunter3") || strings.Contains(string(out), "hunter4") {
		t.Errorf("marshalled config shows a secret:\n%s", out)
	}
	if !strings.Contains(string(out), "<secret>") {
		t.Errorf("marshalled config does not mark the secrets:\n%s", out)
	}
}

package scrape

import (
	"testing"

	"github.com/hearth-profiler/hearth/internal/limits"
)

// configSeeds are configurations that exercise every part of the schema.
var configSeeds = []string{
	"",
	"global: {scrape_interval: 15s, scrape_timeout: 5s, body_size_limit: 1MB, external_labels: {region: eu}}",
	`
scrape_configs:
  - job_name: api
    scrape_interval: 10s
    scrape_timeout: 5s
    scheme: https
    params: {debug: ["0"]}
    tenant: team-a
    body_size_limit: 32MiB
    bearer_token_file: /var/run/token
    tls_config: {ca_file: /etc/ca.pem, server_name: api, min_version: TLS12, insecure_skip_verify: false}
    follow_redirects: false
    enable_http2: false
    proxy_url: http://proxy:3128
    static_configs:
      - targets: ["api-1:6060", "[::1]:6060"]
        labels: {env: prod, service_name: checkout}
    file_sd_configs:
      - files: [targets/*.json, more/*.yml]
        refresh_interval: 1m
    profiling_config:
      path_prefix: /admin
      pprof_config:
        process_cpu: {seconds: 5}
        memory: {keep_sample_type: [{type: inuse_space}]}
        block: {enabled: false}
        fgprof: {path: "/debug/fgprof?format=pprof", seconds: 3}
        delta_block: {path: /debug/pprof/delta_block, kind: block, delta: false}
`,
	"scrape_configs: [{job_name: a, basic_auth: {username: u, password_file: p}}]",
	"scrape_configs: [{job_name: a, authorization: {type: Token, credentials: x}}]",
	`
scrape_configs:
  - job_name: prom
    oauth2:
      client_id: id
      client_secret_file: secret
      token_url: https://auth/token
      scopes: [a, b]
      endpoint_params: {audience: x}
      claims: {n: 1, l: [x, {y: z}]}
      tls_config: {insecure_skip_verify: true}
      proxy_url: http://proxy:3128
    http_headers:
      X-Scope: {values: [a], secrets: [s], files: [f]}
    proxy_url: http://u:p@proxy:3128
    no_proxy: localhost,10.0.0.0/8
    proxy_connect_header: {X-Proxy: [secret]}
    tls_config: {cert: c, key: k, max_version: TLS13}
`,
	"scrape_configs: [{job_name: a, proxy_from_environment: true, bearer_token: t}]",
	"scrape_configs: [{job_name: a}, {job_name: a}]",
	"scrape_configs: [{job_name: a, scrape_interval: 1y2w3d4h5m6s7ms}]",
	"scrape_configs:\n  - job_name: a\n    static_configs: [{targets: [localhost]}]",
	"a: &a [*a, *a]\nb: *a",
	`
limits:
  max_samples: 1000
  max_series_per_tenant: 50000
  ingest_rate_bytes: 1048576
  ingest_burst_bytes: 4194304
  query_timeout: 30s
  query_concurrency: 4
  overrides:
    team-a: {max_series_per_tenant: 0, query_max_series: 10, query_max_samples: 1000000, max_label_value_length: 64}
    team-b: {ingest_burst_bytes: 0, max_stack_depth: 16, max_labels: 8, max_label_name_length: 32}
    team-c:
`,
	"limits: {overrides: {'a/b': {max_samples: 1}}}",
	`
storage:
  bucket:
    type: s3
    config:
      bucket: hearth
      endpoint: s3.eu-west-1.amazonaws.com
      region: eu-west-1
      insecure: false
      secret_key_file: secret
      access_key: AK
      http_config: {idle_conn_timeout: 1m, tls_config: {ca_file: ca.pem}}
      put_user_metadata: {X-Amz-Storage-Class: STANDARD_IA}
      part_size: 16777216
      bucket_lookup_type: path
`,
	"storage: {bucket: {type: filesystem, config: {directory: blocks}}}",
}

// FuzzLoadConfig checks that Load never panics, and that what it accepts
// validates again unchanged and can be scraped.
func FuzzLoadConfig(f *testing.F) {
	for _, s := range configSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Load(data)
		if err != nil {
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Load accepted %q, then Validate refused it: %v", data, err)
		}
		// The limits a reload would apply: when they resolve, every
		// tenant's are valid.
		if tab, err := cfg.Limits.Resolve(limits.Defaults()); err == nil {
			if err := tab.Defaults.Validate(); err != nil {
				t.Fatalf("resolved defaults of %q: %v", data, err)
			}
			for id, l := range tab.Tenants {
				if err := l.Validate(); err != nil {
					t.Fatalf("resolved limits of tenant %q in %q: %v", id, data, err)
				}
			}
		}
		// The fingerprint decides whether a reload keeps a job's loops:
		// the same file loaded again, into new pointers and maps, must
		// give the same one.
		again, err := Load(data)
		if err != nil {
			t.Fatalf("Load accepted %q once, then refused it: %v", data, err)
		}
		// A reload compares the storage sections: the same file must
		// give an equal one.
		if cfg.Storage != nil && !cfg.Storage.Bucket.Equal(again.Storage.Bucket) {
			t.Fatalf("the storage section of %q does not equal itself", data)
		}
		for i, sc := range cfg.ScrapeConfigs {
			if clientFingerprint(&sc.HTTPClientConfig) != clientFingerprint(&again.ScrapeConfigs[i].HTTPClientConfig) {
				t.Fatalf("job %q: the client fingerprint is not stable", sc.JobName)
			}
			if len(sc.Endpoints()) == 0 {
				t.Fatalf("job %q has no endpoints", sc.JobName)
			}
			if sc.ScrapeInterval <= 0 || sc.ScrapeTimeout <= 0 || sc.BodySizeLimit <= 0 {
				t.Fatalf("job %q: interval %s, timeout %s, body limit %d; want all positive", sc.JobName, sc.ScrapeInterval, sc.ScrapeTimeout, sc.BodySizeLimit)
			}
			for _, st := range sc.StaticConfigs {
				for _, addr := range st.Targets {
					tg := newTarget(sc, cfg.Global.ExternalLabels, addr, st.Labels)
					if err := tg.series.Validate(); err != nil {
						t.Fatalf("job %q target %q: series labels %s: %v", sc.JobName, addr, tg.series, err)
					}
					for _, ep := range sc.Endpoints() {
						spec := newLoopSpec(sc, tg, ep, "")
						_ = spec.key()
						_ = sampleTypeConfig(sc, ep)
					}
				}
			}
		}
	})
}

// FuzzFileSD checks that file_sd contents never make the parser panic, and
// that every target it accepts is a valid address.
func FuzzFileSD(f *testing.F) {
	for _, s := range []string{
		`[{"targets": ["a:1", "b:2"], "labels": {"env": "prod", "__meta_x": "y"}}]`,
		`[]`, `null`, `[{"targets": []}]`, `[{"targets": ["a"]}]`,
		"- targets: ['a:1']\n  labels: {env: prod}\n",
		"- targets: [a:1, '[::1]:2']\n",
		"",
	} {
		f.Add([]byte(s), byte(0))
		f.Add([]byte(s), byte(1))
	}
	exts := []string{".json", ".yml", ".yaml"}
	f.Fuzz(func(t *testing.T, data []byte, which byte) {
		ext := exts[int(which)%len(exts)]
		groups, err := ParseFileSD(data, ext)
		if err != nil {
			return
		}
		for _, g := range groups {
			for _, addr := range g.Targets {
				if err := validateAddress(addr); err != nil {
					t.Fatalf("accepted target %q: %v", addr, err)
				}
			}
			if err := validateLabels(g.Labels, true); err != nil {
				t.Fatalf("accepted labels %v: %v", g.Labels, err)
			}
		}
	})
}

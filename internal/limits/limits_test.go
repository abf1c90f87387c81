package limits

import (
	"strings"
	"testing"
	"time"

	yaml "go.yaml.in/yaml/v2"
)

func parse(t *testing.T, src string) *Config {
	t.Helper()
	var c Config
	if err := yaml.UnmarshalStrict([]byte(src), &c); err != nil {
		t.Fatalf("parse %q: %v", src, err)
	}
	return &c
}

// TestResolve: a key of the section replaces the flag's value for every
// tenant, a key of a tenant's overrides replaces it for that tenant, and a
// key left out keeps the level above.
func TestResolve(t *testing.T) {
	flags := Defaults()
	c := parse(t, `
max_series_per_tenant: 500
query_timeout: 30s
overrides:
  team-a:
    max_series_per_tenant: 0
    ingest_rate_bytes: 1000
    ingest_burst_bytes: 5000
  team-b:
    query_timeout: 5m
    retention: 90d
  team-c:
`)
	tab, err := c.Resolve(flags)
	if err != nil {
		t.Fatal(err)
	}
	def := flags
	def.MaxSeriesPerTenant, def.QueryTimeout = 500, 30*time.Second
	if got := tab.For("anyone"); got != def {
		t.Errorf("defaults = %+v, want %+v", got, def)
	}
	a := def
	a.MaxSeriesPerTenant, a.IngestRateBytes, a.IngestBurstBytes = 0, 1000, 5000
	if got := tab.For("team-a"); got != a {
		t.Errorf("team-a = %+v, want %+v", got, a)
	}
	b := def
	b.QueryTimeout, b.Retention = 5*time.Minute, 90*24*time.Hour
	if got := tab.For("team-b"); got != b {
		t.Errorf("team-b = %+v, want %+v", got, b)
	}
	if got := tab.For("team-c"); got != def {
		t.Errorf("team-c, listed with no keys = %+v, want the defaults %+v", got, def)
	}

	var none *Config
	if tab, err := none.Resolve(flags); err != nil || tab.For("x") != flags {
		t.Errorf("no section: %+v, %v; want the flags' limits", tab.For("x"), err)
	}

	o := NewOverrides(flags)
	if o.For("team-a") != flags {
		t.Error("NewOverrides: not the defaults")
	}
	o.Set(tab)
	if o.For("team-a") != a || o.For("other") != def {
		t.Error("Overrides.Set: the table set is not the one in force")
	}
}

// TestConfigErrors: what cannot be a limit is refused with its key, or
// with the tenant that holds it.
func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"max_samples: -1", "max_samples: -1 is negative"},
		{"overrides: {x: {query_concurrency: -2}}", `tenant "x": query_concurrency: -2 is negative`},
		{"overrides: {'a/b': {max_samples: 1}}", `"a/b" is not a valid tenant ID`},
		{"overrides: {'..': {max_samples: 1}}", `".." is not a valid tenant ID`},
		{"overrides: {'': {max_samples: 1}}", "a tenant ID is empty"},
		{"ingest_rate_bytes: 100\ningest_burst_bytes: 0", "ingest_burst_bytes is 0"},
		{"overrides: {x: {ingest_burst_bytes: 0}}", `tenant "x": ingest_rate_bytes is 67108864 but ingest_burst_bytes is 0`},
	} {
		_, err := parse(t, tc.src).Resolve(Defaults())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error with %q", tc.src, err, tc.want)
		}
	}
	var c Config
	if err := yaml.UnmarshalStrict([]byte("max_sample: 3"), &c); err == nil {
		t.Error("a misspelt key was accepted")
	}
}

func TestFlag(t *testing.T) {
	for name, want := range map[string]string{
		MaxSeriesPerTenant: "--limits.max-series-per-tenant",
		IngestBurstBytes:   "--limits.ingest-burst-bytes",
		QueryMaxSamples:    "--limits.query-max-samples",
		Retention:          "--retention",
	} {
		if got := Flag(name); got != want {
			t.Errorf("Flag(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestRefusals(t *testing.T) {
	var r Refusals
	r.Add("b", QueryTimeout)
	r.Add("a", MaxSamples)
	r.Add("b", QueryTimeout)
	got := r.All()
	want := []Refusal{{"a", MaxSamples, 1}, {"b", QueryTimeout, 2}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("All = %v, want %v", got, want)
	}
	if r.Count("b", QueryTimeout) != 2 || r.Count("a", QueryTimeout) != 0 {
		t.Error("Count disagrees with All")
	}
	var none *Refusals
	none.Add("a", MaxSamples) // counts nothing, and does not panic
	if none.All() != nil {
		t.Error("a nil Refusals has counts")
	}
}

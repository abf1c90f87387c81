// Package limits holds what each tenant may do: how large its profiles may
// be, how many series its head may hold, how fast it may send, and how much
// its queries may read. Flags set every tenant's limits; the limits: section
// of the configuration file changes them for all tenants or for some (see
// Config), and a reload applies it to requests that arrive afterwards.
//
// Every limit is named by its key in the configuration file (Name); the
// flag that sets it is that name in the form --limits.max-samples (Flag).
// Zero means no limit, for every one of them.
package limits

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
)

// The names of the limits: their keys in the configuration file, and the
// values of the limit label of hearth_limits_refused_total.
const (
	MaxSamples          = "max_samples"
	MaxStackDepth       = "max_stack_depth"
	MaxLabels           = "max_labels"
	MaxLabelNameLength  = "max_label_name_length"
	MaxLabelValueLength = "max_label_value_length"
	MaxSeriesPerTenant  = "max_series_per_tenant"
	IngestRateBytes     = "ingest_rate_bytes"
	IngestBurstBytes    = "ingest_burst_bytes"
	QueryMaxSeries      = "query_max_series"
	QueryMaxSamples     = "query_max_samples"
	QueryTimeout        = "query_timeout"
	QueryConcurrency    = "query_concurrency"
	Retention           = "retention"
)

// Flag returns the server flag of the limit called name:
// Flag("max_samples") is "--limits.max-samples".
func Flag(name string) string {
	if name == Retention {
		return "--retention" // older than the limits' flags
	}
	return "--limits." + strings.ReplaceAll(name, "_", "-")
}

// Limits are one tenant's limits. Zero means no limit.
type Limits struct {
	// MaxSamples is the most samples one profile may hold.
	MaxSamples int
	// MaxStackDepth is the most frames one stack may hold.
	MaxStackDepth int
	// MaxLabels is the most series labels one profile may carry.
	MaxLabels int
	// MaxLabelNameLength and MaxLabelValueLength bound the name and the
	// value of every label, in bytes: series labels and per-sample labels
	// alike, since both are kept in memory and in every block.
	MaxLabelNameLength, MaxLabelValueLength int
	// MaxSeriesPerTenant is the most series the tenant's head may hold: a
	// profile that would add one past it is refused, while profiles of
	// series the head already holds are still stored.
	MaxSeriesPerTenant int
	// IngestRateBytes is the rate, in bytes per second, at which the
	// tenant's request bodies refill its token bucket, which holds at most
	// IngestBurstBytes. A request whose body finds too few tokens is
	// refused as too many requests, with the time the bucket needs.
	IngestRateBytes, IngestBurstBytes int64
	// QueryMaxSeries is the most distinct series one query may read.
	QueryMaxSeries int
	// QueryMaxSamples is the most sample rows one query may read.
	QueryMaxSamples int64
	// QueryTimeout bounds the time of one query.
	QueryTimeout time.Duration
	// QueryConcurrency is the most queries of the tenant that run at
	// once; more wait a little for their turn, then are refused.
	QueryConcurrency int
	// Retention is how long the tenant's data is kept: its blocks whose
	// newest profile is older are deleted (by `all`, or marked for
	// deletion by a compactor). The server sets it from --retention.
	Retention time.Duration
}

// Defaults are the limits of a server started without limit flags.
//
// The profile limits are generous for real profilers: Go keeps at most 128
// frames per stack (Java deeper), and a 10 s CPU profile of a busy service
// holds a few thousand distinct samples.
//
// 100,000 series per tenant: a series with the nine labels the eBPF agent
// gives a process takes about 0.7 KiB of head memory before its samples
// (measured), so the series of a full head take about 70 MiB, beside its
// 128 MiB of samples. That is 45 times the series of 200 scraped Go
// services (eleven sample types over the six default endpoints), and the
// agent's CPU profiles of 100 hosts running 1,000 processes each.
//
// 64 MiB/s of ingest per tenant, with a burst of 256 MiB: about twice what
// a 2-core server takes in at most (2,000 profiles/s of 16 KiB), so a
// tenant alone is never slowed, while on a larger machine shared by
// tenants one cannot take it all. The burst holds 16 bodies of the
// largest size (--limits.max-body-bytes).
//
// Queries: 100,000 series (every series a full head holds) and 1 billion
// sample rows (about 10 s of scanning per core), within 2 minutes, 8 at
// once per tenant: the web UI sends up to five queries at once.
func Defaults() Limits {
	return Limits{
		MaxSamples: 1_000_000, MaxStackDepth: 4096, MaxLabels: 64,
		MaxLabelNameLength: 1024, MaxLabelValueLength: 2048,
		MaxSeriesPerTenant: 100_000,
		IngestRateBytes:    64 << 20, IngestBurstBytes: 256 << 20,
		QueryMaxSeries: 100_000, QueryMaxSamples: 1_000_000_000,
		QueryTimeout: 2 * time.Minute, QueryConcurrency: 8,
	}
}

// Validate refuses negative limits, and a rate without a burst, which
// would refuse every request.
func (l Limits) Validate() error {
	if err := l.nonNegative(); err != nil {
		return err
	}
	if l.IngestRateBytes > 0 && l.IngestBurstBytes == 0 {
		return fmt.Errorf("%s is %d but %s is 0, which would refuse every request: set a burst of at least the largest body", IngestRateBytes, l.IngestRateBytes, IngestBurstBytes)
	}
	return nil
}

// nonNegative refuses negative limits.
func (l Limits) nonNegative() error {
	for _, f := range []struct {
		name string
		v    int64
	}{
		{MaxSamples, int64(l.MaxSamples)}, {MaxStackDepth, int64(l.MaxStackDepth)}, {MaxLabels, int64(l.MaxLabels)},
		{MaxLabelNameLength, int64(l.MaxLabelNameLength)}, {MaxLabelValueLength, int64(l.MaxLabelValueLength)},
		{MaxSeriesPerTenant, int64(l.MaxSeriesPerTenant)}, {IngestRateBytes, l.IngestRateBytes}, {IngestBurstBytes, l.IngestBurstBytes},
		{QueryMaxSeries, int64(l.QueryMaxSeries)}, {QueryMaxSamples, l.QueryMaxSamples},
		{QueryTimeout, int64(l.QueryTimeout)}, {QueryConcurrency, int64(l.QueryConcurrency)},
		{Retention, int64(l.Retention)},
	} {
		if f.v < 0 {
			return fmt.Errorf("%s: %d is negative; 0 means no limit", f.name, f.v)
		}
	}
	return nil
}

// Table is the limits in force: the defaults, and those of the tenants
// that the configuration file names.
type Table struct {
	Defaults Limits
	Tenants  map[string]Limits
}

// For returns the limits of tenant.
func (t *Table) For(tenant string) Limits {
	if l, ok := t.Tenants[tenant]; ok {
		return l
	}
	return t.Defaults
}

// Overrides are the limits in force, read by every request and replaced
// whole on reload. It is safe for concurrent use.
type Overrides struct {
	t atomic.Pointer[Table]
}

// NewOverrides returns overrides that give every tenant defaults.
func NewOverrides(defaults Limits) *Overrides {
	o := &Overrides{}
	o.Set(Table{Defaults: defaults})
	return o
}

// Set replaces the limits in force; requests that arrive afterwards see
// the new ones.
func (o *Overrides) Set(t Table) { o.t.Store(&t) }

// For returns the limits of tenant.
func (o *Overrides) For(tenant string) Limits { return o.t.Load().For(tenant) }

// Table returns the limits in force.
func (o *Overrides) Table() Table { return *o.t.Load() }

// errNoTenant is the error of an overrides entry with an empty tenant.
var errNoTenant = errors.New("overrides: a tenant ID is empty")

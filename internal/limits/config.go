package limits

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/prometheus/common/model"

	"github.com/hearth-profiler/hearth/internal/tenant"
)

// Config is the limits: section of the configuration file: limits for
// every tenant, which replace those of the flags, and under overrides the
// limits of some tenants, which replace those:
//
//	limits:
//	  max_series_per_tenant: 50000
//	  overrides:
//	    team-a:
//	      max_series_per_tenant: 200000
//	      query_timeout: 5m
//	      retention: 90d
//
// A key left out keeps the value from the level above it (overrides, then
// the section, then the flag).
type Config struct {
	Values `yaml:",inline"`
	// Overrides are the limits of some tenants, by tenant ID.
	Overrides map[string]*Values `yaml:"overrides,omitempty"`
}

// Values are limits written in the configuration file; a nil field is
// one left out. Sizes are in bytes and durations as Prometheus writes them
// (30s, 2m, 1h).
type Values struct {
	MaxSamples          *int            `yaml:"max_samples,omitempty"`
	MaxStackDepth       *int            `yaml:"max_stack_depth,omitempty"`
	MaxLabels           *int            `yaml:"max_labels,omitempty"`
	MaxLabelNameLength  *int            `yaml:"max_label_name_length,omitempty"`
	MaxLabelValueLength *int            `yaml:"max_label_value_length,omitempty"`
	MaxSeriesPerTenant  *int            `yaml:"max_series_per_tenant,omitempty"`
	IngestRateBytes     *int64          `yaml:"ingest_rate_bytes,omitempty"`
	IngestBurstBytes    *int64          `yaml:"ingest_burst_bytes,omitempty"`
	QueryMaxSeries      *int            `yaml:"query_max_series,omitempty"`
	QueryMaxSamples     *int64          `yaml:"query_max_samples,omitempty"`
	QueryTimeout        *model.Duration `yaml:"query_timeout,omitempty"`
	QueryConcurrency    *int            `yaml:"query_concurrency,omitempty"`
	Retention           *model.Duration `yaml:"retention,omitempty"`
}

// Apply returns base with the values that v sets.
func (v *Values) Apply(base Limits) Limits {
	if v == nil {
		return base
	}
	set := func(dst *int, src *int) {
		if src != nil {
			*dst = *src
		}
	}
	set64 := func(dst *int64, src *int64) {
		if src != nil {
			*dst = *src
		}
	}
	set(&base.MaxSamples, v.MaxSamples)
	set(&base.MaxStackDepth, v.MaxStackDepth)
	set(&base.MaxLabels, v.MaxLabels)
	set(&base.MaxLabelNameLength, v.MaxLabelNameLength)
	set(&base.MaxLabelValueLength, v.MaxLabelValueLength)
	set(&base.MaxSeriesPerTenant, v.MaxSeriesPerTenant)
	set64(&base.IngestRateBytes, v.IngestRateBytes)
	set64(&base.IngestBurstBytes, v.IngestBurstBytes)
	set(&base.QueryMaxSeries, v.QueryMaxSeries)
	set64(&base.QueryMaxSamples, v.QueryMaxSamples)
	if v.QueryTimeout != nil {
		base.QueryTimeout = time.Duration(*v.QueryTimeout)
	}
	set(&base.QueryConcurrency, v.QueryConcurrency)
	if v.Retention != nil {
		base.Retention = time.Duration(*v.Retention)
	}
	return base
}

// Validate checks the section on its own: tenant IDs, and values that no
// flag could make valid (negative ones). A rate without a burst is found
// by Resolve, where the flags are known.
func (c *Config) Validate() error {
	if err := c.Values.Apply(Limits{}).nonNegative(); err != nil {
		return fmt.Errorf("limits: %w", err)
	}
	for _, id := range slices.Sorted(maps.Keys(c.Overrides)) {
		if id == "" {
			return fmt.Errorf("limits: %w", errNoTenant)
		}
		if checked, err := tenant.Check(id); err != nil || checked != id {
			return fmt.Errorf("limits: overrides: %q is not a valid tenant ID", id)
		}
		if err := c.Overrides[id].Apply(Limits{}).nonNegative(); err != nil {
			return fmt.Errorf("limits: overrides: tenant %q: %w", id, err)
		}
	}
	return nil
}

// Resolve returns the limits in force under c, with flags as the limits
// of the flags. A nil Config leaves the flags' limits.
func (c *Config) Resolve(flags Limits) (Table, error) {
	if c == nil {
		return Table{Defaults: flags}, flags.Validate()
	}
	if err := c.Validate(); err != nil {
		return Table{}, err
	}
	t := Table{Defaults: c.Values.Apply(flags)}
	if err := t.Defaults.Validate(); err != nil {
		return Table{}, fmt.Errorf("limits: %w", err)
	}
	if len(c.Overrides) > 0 {
		t.Tenants = make(map[string]Limits, len(c.Overrides))
	}
	for id, v := range c.Overrides {
		l := v.Apply(t.Defaults)
		if err := l.Validate(); err != nil {
			return Table{}, fmt.Errorf("limits: overrides: tenant %q: %w", id, err)
		}
		t.Tenants[id] = l
	}
	return t, nil
}

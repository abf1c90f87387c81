package scrape

import (
	"cmp"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"
)

// TargetStatus is one target as the targets page shows it, with the JSON
// names of the activeTargets of Prometheus' /api/v1/targets, plus the
// endpoints that Hearth pulls from it.
type TargetStatus struct {
	// DiscoveredLabels are the target's labels before Hearth added job,
	// instance and service_name, with the __ ones that say how it is
	// scraped (__address__, __scheme__, __meta_filepath...).
	DiscoveredLabels map[string]string `json:"discoveredLabels"`
	// Labels are the labels of every series stored from the target.
	Labels map[string]string `json:"labels"`
	// ScrapePool is the job name.
	ScrapePool string `json:"scrapePool"`
	// ScrapeURL is the base of the target's endpoint URLs:
	// scheme://host:port plus the path prefix.
	ScrapeURL string `json:"scrapeUrl"`
	Instance  string `json:"instance"`
	// LastError joins the last errors of the endpoints that are down,
	// each after its endpoint's name.
	LastError string `json:"lastError"`
	// LastScrape and LastScrapeDuration (seconds) are those of the
	// endpoint scraped most recently.
	LastScrape         time.Time `json:"lastScrape"`
	LastScrapeDuration float64   `json:"lastScrapeDuration"`
	// Health is down when any endpoint is down, up when at least one is up
	// and none is down, and unknown before the first scrape.
	Health         string           `json:"health"`
	ScrapeInterval string           `json:"scrapeInterval"`
	ScrapeTimeout  string           `json:"scrapeTimeout"`
	Tenant         string           `json:"tenant"`
	Endpoints      []EndpointStatus `json:"endpoints"`
}

// EndpointStatus is one pprof endpoint of a target.
type EndpointStatus struct {
	Name               string    `json:"name"`
	ScrapeURL          string    `json:"scrapeUrl"`
	Health             string    `json:"health"`
	LastError          string    `json:"lastError"`
	LastScrape         time.Time `json:"lastScrape"`
	LastScrapeDuration float64   `json:"lastScrapeDuration"` // seconds
	LastScrapeBytes    int64     `json:"lastScrapeBytes"`
	// Scrapes and Failures count this endpoint's scrapes since its loop
	// started (a reload that changes its settings starts a new loop).
	Scrapes  uint64 `json:"scrapes"`
	Failures uint64 `json:"failures"`
}

// DroppedTarget is a target that discovery found and configuration
// dropped. Hearth has no relabelling yet, so there are none; the type
// keeps the JSON shape of Prometheus' API.
type DroppedTarget struct {
	DiscoveredLabels map[string]string `json:"discoveredLabels"`
}

// TargetsData is the data object of a /api/v1/targets answer.
type TargetsData struct {
	ActiveTargets  []TargetStatus  `json:"activeTargets"`
	DroppedTargets []DroppedTarget `json:"droppedTargets"`
}

// NewTargetsData wraps active targets in the /api/v1/targets data object;
// both lists are empty rather than null when there is nothing.
func NewTargetsData(active []TargetStatus) TargetsData {
	if active == nil {
		active = []TargetStatus{}
	}
	return TargetsData{ActiveTargets: active, DroppedTargets: []DroppedTarget{}}
}

// TargetsData returns the /api/v1/targets data object of every target.
func (m *Manager) TargetsData() TargetsData { return NewTargetsData(m.Targets()) }

// Targets returns the status of every target, by job in configuration
// order and then by labels.
func (m *Manager) Targets() []TargetStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []TargetStatus
	for _, job := range m.order {
		p := m.pools[job]
		if p == nil {
			continue
		}
		byTarget := map[string][]*loop{}
		for _, l := range p.loops {
			byTarget[l.spec.Target] = append(byTarget[l.spec.Target], l)
		}
		start := len(out)
		for _, t := range p.targets {
			out = append(out, targetStatus(p.cfg, t, byTarget[t.key]))
		}
		slices.SortStableFunc(out[start:], func(a, b TargetStatus) int {
			return cmp.Or(cmp.Compare(a.Instance, b.Instance), strings.Compare(labelString(a.Labels), labelString(b.Labels)))
		})
	}
	return out
}

func labelString(m map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		b.WriteString(k)
		b.WriteByte(0)
		b.WriteString(m[k])
		b.WriteByte(0)
	}
	return b.String()
}

func targetStatus(sc *ScrapeConfig, t *target, loops []*loop) TargetStatus {
	base := url.URL{Scheme: sc.Scheme, Host: t.address, Path: sc.ProfilingConfig.PathPrefix}
	ts := TargetStatus{
		DiscoveredLabels: t.discovered.Map(),
		Labels:           t.series.Map(),
		ScrapePool:       sc.JobName,
		ScrapeURL:        base.String(),
		Instance:         t.address,
		Health:           HealthUnknown,
		ScrapeInterval:   sc.ScrapeInterval.String(),
		ScrapeTimeout:    sc.ScrapeTimeout.String(),
		Tenant:           sc.Tenant,
		Endpoints:        []EndpointStatus{},
	}
	// Endpoints in configuration order.
	order := map[string]int{}
	for i, ep := range sc.endpoints {
		order[ep.Name] = i
	}
	slices.SortFunc(loops, func(a, b *loop) int { return cmp.Compare(order[a.endpoint.Name], order[b.endpoint.Name]) })
	var errs []string
	for _, l := range loops {
		es := l.status()
		ts.Endpoints = append(ts.Endpoints, es)
		switch es.Health {
		case HealthDown:
			ts.Health = HealthDown
			errs = append(errs, es.Name+": "+es.LastError)
		case HealthUp:
			if ts.Health == HealthUnknown {
				ts.Health = HealthUp
			}
		}
		if es.LastScrape.After(ts.LastScrape) {
			ts.LastScrape, ts.LastScrapeDuration = es.LastScrape, es.LastScrapeDuration
		}
	}
	ts.LastError = strings.Join(errs, "; ")
	return ts
}

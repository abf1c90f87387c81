package scrape

import (
	"strings"

	"github.com/hearth-profiler/hearth/internal/labels"
)

// Labels of a target that Hearth sets.
const (
	// JobLabel is the job of a target; it defaults to the job name.
	JobLabel = "job"
	// InstanceLabel is the target's host:port unless the target's labels
	// set it.
	InstanceLabel = "instance"
	// AddressLabel and the other discovered labels below are shown in a
	// target's status and never stored.
	AddressLabel        = "__address__"
	SchemeLabel         = "__scheme__"
	ScrapeIntervalLabel = "__scrape_interval__"
	ScrapeTimeoutLabel  = "__scrape_timeout__"
)

// target is one address of one job.
type target struct {
	// key identifies the target within Hearth: its job and discovered
	// labels.
	key     string
	job     string
	address string
	// discovered are the labels from the configuration or the file, with
	// the __ ones that say how it is scraped.
	discovered labels.Labels
	// series are the labels of every profile stored from the target.
	series labels.Labels
}

// buildTargets turns a job's groups into targets, in order, without
// duplicates (the same address with the same labels listed twice).
func buildTargets(sc *ScrapeConfig, external map[string]string, groups []group) []*target {
	var out []*target
	seen := map[string]bool{}
	for _, g := range groups {
		for _, addr := range g.targets {
			t := newTarget(sc, external, addr, g.labels)
			if seen[t.key] {
				continue
			}
			seen[t.key] = true
			out = append(out, t)
		}
	}
	return out
}

func newTarget(sc *ScrapeConfig, external map[string]string, addr string, groupLabels map[string]string) *target {
	var d labels.Builder
	for name, v := range groupLabels {
		d.Set(name, v)
	}
	d.Set(AddressLabel, addr)
	d.Set(SchemeLabel, sc.Scheme)
	d.Set(ScrapeIntervalLabel, sc.ScrapeInterval.String())
	d.Set(ScrapeTimeoutLabel, sc.ScrapeTimeout.String())
	d.Set(JobLabel, sc.JobName)
	discovered := d.Labels()

	// Precedence, lowest first: external labels, then the target's own
	// labels, then job, instance and service_name where the target left
	// them unset (as Prometheus sets job and instance).
	var s labels.Builder
	for name, v := range external {
		s.Set(name, v)
	}
	for name, v := range groupLabels {
		if !strings.HasPrefix(name, "__") {
			s.Set(name, v)
		}
	}
	setDefault := func(name, v string) {
		if groupLabels[name] == "" {
			s.Set(name, v)
		}
	}
	setDefault(JobLabel, sc.JobName)
	setDefault(InstanceLabel, addr)
	setDefault(labels.ServiceName, sc.JobName)

	return &target{
		key:        sc.JobName + "\x00" + discovered.String(),
		job:        sc.JobName,
		address:    addr,
		discovered: discovered,
		series:     s.Labels(),
	}
}

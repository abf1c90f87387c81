package calc

import (
	"math"
	"strconv"
	"time"
)

// Number is a calculation's value. NaN stands for no value (an avg over
// no events, a percentile of a field no event has) and is null in JSON;
// null reads back as NaN.
type Number float64

// MarshalJSON writes the number as encoding/json writes a float64, and
// NaN or an infinity as null.
func (n Number) MarshalJSON() ([]byte, error) {
	f := float64(n)
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return []byte("null"), nil
	}
	fmtc := byte('f')
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		fmtc = 'e'
	}
	return strconv.AppendFloat(nil, f, fmtc, -1, 64), nil
}

// UnmarshalJSON reads a number, or null as NaN.
func (n *Number) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = Number(math.NaN())
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return err
	}
	*n = Number(f)
	return nil
}

// Result is what Run computed: the groups, best first by the query's
// order, each with its values over the whole range and, with a step, per
// step.
type Result struct {
	From  time.Time `json:"from"`
	Until time.Time `json:"until"`
	// StepMs is the step in milliseconds; 0 when the query had none.
	StepMs float64 `json:"step_ms"`
	// Times are the starts of the steps, in Unix milliseconds, when the
	// query has a step. Steps are aligned on multiples of the step since
	// the epoch, so the first may start before From.
	Times []float64 `json:"times,omitempty"`
	// By are the fields grouped by, in order: the keys of each group's by.
	By []string `json:"by"`
	// Calcs are the calculations, in order: the keys of values (or of
	// histograms, for heatmaps).
	Calcs []string `json:"calcs"`
	// Units gives the unit of the calculations that have one: "ns" for
	// those over the duration.
	Units map[string]string `json:"units"`
	// Buckets gives each heatmap's rows, shared by every group and step;
	// the counts in histograms line up with them.
	Buckets map[string][]Bucket `json:"buckets,omitempty"`
	Groups  []Group             `json:"groups"`
	// GroupCount is how many groups passed having, before limit.
	GroupCount int `json:"group_count"`
	// Scanned counts the events in the time range the filter looked at;
	// Matched those it selected.
	Scanned int64 `json:"scanned"`
	Matched int64 `json:"matched"`
	// Truncated says the grouping made more groups than the query may
	// keep apart (max groups): Ungrouped matched events, of the groups
	// that came after, are in none, and a group that would have ranked
	// high may be missing.
	Truncated bool     `json:"truncated"`
	Ungrouped int64    `json:"ungrouped"`
	Warnings  []string `json:"warnings,omitempty"`
}

// Group is one distinct combination of the group-by fields' values.
type Group struct {
	// By maps each group-by field to the group's value: a string,
	// number or bool; null where the events lack the field.
	By map[string]any `json:"by"`
	// Values are the calculations over the whole range.
	Values map[string]Number `json:"values"`
	// Histograms are the heatmaps over the whole range: counts per
	// bucket of Result.Buckets.
	Histograms map[string][]uint64 `json:"histograms,omitempty"`
	// Series has, per calculation, its value in each step: one entry per
	// time in Result.Times, empty steps included (count 0, others null).
	Series map[string][]Number `json:"series,omitempty"`
	// HistogramSeries has, per heatmap, its counts in each step: one
	// histogram per time in Result.Times.
	HistogramSeries map[string][][]uint64 `json:"histogram_series,omitempty"`
	// Examples are some of the group's events, the slowest first, for
	// opening their traces; only when the query asks for them.
	Examples []Example `json:"examples,omitempty"`
}

// Example is one event of a group.
type Example struct {
	TraceID  string    `json:"trace_id,omitempty"`
	SpanID   string    `json:"span_id,omitempty"`
	Start    time.Time `json:"start"`
	Duration int64     `json:"duration"`
}

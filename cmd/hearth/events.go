package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hearth-profiler/hearth/internal/api"
	"github.com/hearth-profiler/hearth/internal/events/calc"
)

const eventsUsage = `usage:
  hearth events FILTER --from -1h [--until now] [--by FIELDS] [--calc CALCS] [--step 1m]
                [--order CALC] [--having COND] [--limit N] [--output table|json] [--server URL]
  hearth events search FILTER [--limit N] [--output table|json]
  hearth events trace TRACE_ID [--output tree|json]
  hearth events compare SELECTION [--filter FILTER] [--baseline FILTER] [--output table|json]

FILTER is a TraceQL span filter, e.g. '{ resource.service.name = "shop" && duration > 500ms }'.
CALCS: count, sum(F), avg(F), min(F), max(F), p50(F) ... p99(F), count_distinct(F), heatmap(F).`

// eventsFlags are the flags every events command takes.
type eventsFlags struct {
	server, from, until, output, tenant string
	timeout                             time.Duration
	cf                                  clientFlags
}

func (f *eventsFlags) register(fs *flag.FlagSet, output, from string) {
	fs.StringVar(&f.server, "server", "http://localhost:4040", "Hearth server URL")
	fs.StringVar(&f.from, "from", from, "start: RFC 3339, Unix seconds, now, or relative like -1h, -7d")
	fs.StringVar(&f.until, "until", "now", "end, in the same forms as --from")
	fs.StringVar(&f.output, "output", output, "output format")
	fs.StringVar(&f.tenant, "tenant", "", "tenant ID (X-Scope-OrgID)")
	fs.DurationVar(&f.timeout, "timeout", 2*time.Minute, "request timeout")
	f.cf.register(fs)
}

func runEvents(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "trace":
			return runEventsTrace(ctx, args[1:], stdout, stderr)
		case "compare":
			return runEventsCompare(ctx, args[1:], stdout, stderr)
		case "search":
			return runEventsSearch(ctx, args[1:], stdout, stderr)
		}
	}
	fs := flag.NewFlagSet("hearth events", flag.ContinueOnError)
	var ef eventsFlags
	ef.register(fs, "table", "-1h")
	by := fs.String("by", "", "comma-separated fields to group by, e.g. span.http.route,resource.service.version")
	calcs := fs.String("calc", "count", "comma-separated calculations, e.g. count,p99(duration),avg(duration)")
	step := fs.String("step", "", "compute per time step, e.g. 1m")
	order := fs.String("order", "", "order groups by a calculation, e.g. 'p99(duration) desc' (default: the first, descending)")
	having := fs.String("having", "", "keep groups whose calculations pass, e.g. 'count > 10'")
	limit := fs.Int("limit", 0, "groups to show (default: server's, 100)")
	var rf runningFlags
	rf.register(fs)
	fs.Usage = func() { fmt.Fprintln(fs.Output(), eventsUsage); fs.PrintDefaults() }
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("want one filter, got %d arguments: usage: hearth events '{ duration > 500ms }' --by span.http.route", len(pos))
	}
	if ef.output != "table" && ef.output != "json" {
		return fmt.Errorf("--output %q: want table or json", ef.output)
	}
	q := url.Values{"q": {pos[0]}, "from": {ef.from}, "until": {ef.until}, "by": {*by}, "calc": {*calcs},
		"step": {*step}, "order": {*order}, "having": {*having}}
	if *limit > 0 {
		q.Set("limit", strconv.Itoa(*limit))
	}
	rf.set(q)
	data, err := eventsCall(ctx, &ef, "query", q, stderr)
	if err != nil || ef.output == "json" {
		return writeJSON(stdout, data, err)
	}
	var res calc.Result
	if err := json.Unmarshal(data, &res); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	printWarnings(stderr, res.Warnings)
	return printEventsResult(stdout, &res)
}

// runningFlags select the spans that ran a function, by their profiles.
type runningFlags struct{ running, profile string }

func (rf *runningFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&rf.running, "running", "", "keep the spans whose own profile samples ran a function matching this regexp (as --focus); the field cpu is their time in it")
	fs.StringVar(&rf.profile, "profile", "", `the profiles --running reads (default: cpu of the filter's services, e.g. cpu{service_name="shop"})`)
}

func (rf *runningFlags) set(q url.Values) {
	if rf.running != "" {
		q.Set("running", rf.running)
	}
	if rf.profile != "" {
		q.Set("profile", rf.profile)
	}
}

// printWarnings prints what an answer says it lacks or rests on.
func printWarnings(w io.Writer, warnings []string) {
	for _, s := range warnings {
		fmt.Fprintf(w, "warning: %s\n", printable(s))
	}
}

// eventsCall posts q to /api/v1/events/<path> and returns the answer's
// data, printing its warnings on stderr.
func eventsCall(ctx context.Context, ef *eventsFlags, path string, q url.Values, stderr io.Writer) (json.RawMessage, error) {
	c, err := newClient(ef.server, ef.tenant, ef.timeout, &ef.cf)
	if err != nil {
		return nil, err
	}
	for k, v := range q {
		if len(v) == 1 && v[0] == "" {
			delete(q, k)
		}
	}
	req, err := http.NewRequestWithContext(ctx, "POST", c.base+"/api/v1/events/"+path, strings.NewReader(q.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	body, err := c.do(req)
	if err != nil {
		return nil, err
	}
	var env struct {
		Data     json.RawMessage `json:"data"`
		Warnings []string        `json:"warnings"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("decode answer: %w", err)
	}
	for _, w := range env.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", printable(w))
	}
	return env.Data, nil
}

func writeJSON(w io.Writer, data json.RawMessage, err error) error {
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", data)
	return err
}

// formatCalc prints a calculation's value in its unit.
func formatCalc(v *float64, unit string) string {
	if v == nil {
		return "-"
	}
	if unit == "ns" {
		return formatNanos(*v)
	}
	if *v == math.Trunc(*v) && math.Abs(*v) < 1e15 {
		return strconv.FormatInt(int64(*v), 10)
	}
	return strconv.FormatFloat(*v, 'g', 4, 64)
}

func formatNanos(ns float64) string {
	switch a := math.Abs(ns); {
	case a >= 1e9:
		return fmt.Sprintf("%.2fs", ns/1e9)
	case a >= 1e6:
		return fmt.Sprintf("%.2fms", ns/1e6)
	case a >= 1e3:
		return fmt.Sprintf("%.2fµs", ns/1e3)
	}
	return fmt.Sprintf("%.0fns", ns)
}

func numberPtr(m map[string]calc.Number, k string) *float64 {
	n, ok := m[k]
	if !ok || math.IsNaN(float64(n)) {
		return nil
	}
	f := float64(n)
	return &f
}

func formatBy(v any) string {
	switch v {
	case nil:
		return "(none)"
	case "":
		return `""`
	}
	return printable(fmt.Sprint(v))
}

// printEventsResult prints one row per group, or per step and group.
func printEventsResult(w io.Writer, res *calc.Result) error {
	if len(res.Groups) == 0 {
		fmt.Fprintf(w, "no events match (%d scanned)\n", res.Scanned)
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	var head []string
	if len(res.Times) > 0 {
		head = append(head, "time")
	}
	head = append(head, res.By...)
	var shown []string // heatmaps are for the UI and JSON
	for _, c := range res.Calcs {
		if _, heat := res.Buckets[c]; !heat {
			shown = append(shown, c)
		}
	}
	head = append(head, shown...)
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	row := func(prefix []string, g *calc.Group, vals func(c string) *float64) {
		cells := append([]string(nil), prefix...)
		for _, b := range res.By {
			cells = append(cells, formatBy(g.By[b]))
		}
		for _, c := range shown {
			cells = append(cells, formatCalc(vals(c), res.Units[c]))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	if len(res.Times) == 0 {
		for i := range res.Groups {
			g := &res.Groups[i]
			row(nil, g, func(c string) *float64 { return numberPtr(g.Values, c) })
		}
	} else {
		for ti, t := range res.Times {
			at := time.UnixMilli(int64(t)).UTC().Format(time.RFC3339)
			for i := range res.Groups {
				g := &res.Groups[i]
				row([]string{at}, g, func(c string) *float64 {
					s := g.Series[c]
					if ti >= len(s) || math.IsNaN(float64(s[ti])) {
						return nil
					}
					f := float64(s[ti])
					return &f
				})
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "%d of %d groups; %d events matched of %d scanned\n", len(res.Groups), res.GroupCount, res.Matched, res.Scanned)
	if res.Truncated {
		fmt.Fprintf(w, "truncated: %d matched events fell in groups past the limit of groups kept apart\n", res.Ungrouped)
	}
	return nil
}

func runEventsSearch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hearth events search", flag.ContinueOnError)
	var ef eventsFlags
	ef.register(fs, "table", "-1h")
	limit := fs.Int("limit", 20, "events to show, newest first")
	fs.Usage = func() { fmt.Fprintln(fs.Output(), eventsUsage); fs.PrintDefaults() }
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return fmt.Errorf("want at most one filter, got %d arguments", len(pos))
	}
	if ef.output != "table" && ef.output != "json" {
		return fmt.Errorf("--output %q: want table or json", ef.output)
	}
	q := url.Values{"from": {ef.from}, "until": {ef.until}, "limit": {strconv.Itoa(*limit)}}
	if len(pos) == 1 {
		q.Set("q", pos[0])
	}
	data, err := eventsCall(ctx, &ef, "search", q, stderr)
	if err != nil || ef.output == "json" {
		return writeJSON(stdout, data, err)
	}
	var res api.EventSearchResult
	if err := json.Unmarshal(data, &res); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "start\tduration\tservice\tname\tstatus\ttrace")
	for _, e := range res.Events {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Start.Format(time.RFC3339Nano), formatNanos(float64(e.DurationNanos)),
			printable(e.Service), printable(e.Name), e.Status, e.TraceID)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d shown of %d matched; %d scanned\n", len(res.Events), res.Matched, res.Scanned)
	return nil
}

func runEventsTrace(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hearth events trace", flag.ContinueOnError)
	var ef eventsFlags
	ef.register(fs, "tree", "-24h")
	fs.Usage = func() { fmt.Fprintln(fs.Output(), eventsUsage); fs.PrintDefaults() }
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("want one trace ID, got %d arguments: usage: hearth events trace TRACE_ID", len(pos))
	}
	if ef.output != "tree" && ef.output != "json" {
		return fmt.Errorf("--output %q: want tree or json", ef.output)
	}
	q := url.Values{"from": {ef.from}, "until": {ef.until}}
	data, err := eventsCall(ctx, &ef, "trace/"+url.PathEscape(pos[0]), q, stderr)
	if err != nil || ef.output == "json" {
		return writeJSON(stdout, data, err)
	}
	var tr api.TraceResult
	if err := json.Unmarshal(data, &tr); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	return printTrace(stdout, &tr)
}

// printTrace prints a trace's spans as an indented tree, each with its
// offset from the trace's start, its duration and its service.
func printTrace(w io.Writer, tr *api.TraceResult) error {
	fmt.Fprintf(w, "trace %s  %s  %d spans  services %s  %d errors\n", tr.TraceID, formatNanos(float64(tr.DurationNanos)),
		len(tr.Spans), printable(strings.Join(tr.Services, ",")), tr.Errors)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "offset\tduration\tservice\tspan")
	for _, s := range tr.Spans {
		depth := 0
		if s.Depth != nil {
			depth = *s.Depth
		}
		line := strings.Repeat("  ", depth) + printable(s.Name)
		if s.Status == "error" {
			line += "  [error"
			if s.StatusMessage != "" {
				line += ": " + printable(s.StatusMessage)
			}
			line += "]"
		}
		fmt.Fprintf(tw, "+%s\t%s\t%s\t%s\n", formatNanos(float64(s.StartUnixNano-tr.Start.UnixNano())),
			formatNanos(float64(s.DurationNanos)), printable(s.Service), line)
	}
	return tw.Flush()
}

func runEventsCompare(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hearth events compare", flag.ContinueOnError)
	var ef eventsFlags
	ef.register(fs, "table", "-1h")
	filter := fs.String("filter", "", "the events both sides are drawn from (default: all)")
	baseline := fs.String("baseline", "", "what to compare with (default: the filter's events outside the selection)")
	values := fs.Int("values", 3, "values to show per attribute")
	top := fs.Int("limit", 10, "attributes to show")
	var rf runningFlags
	rf.register(fs)
	fs.Usage = func() { fmt.Fprintln(fs.Output(), eventsUsage); fs.PrintDefaults() }
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 || len(pos) == 0 && rf.running == "" {
		return fmt.Errorf("want one selection filter, or --running FUNCTION, got %d arguments: usage: hearth events compare '{ duration > 800ms }'", len(pos))
	}
	pos = append(pos, "")
	if ef.output != "table" && ef.output != "json" {
		return fmt.Errorf("--output %q: want table or json", ef.output)
	}
	q := url.Values{"selection": {pos[0]}, "q": {*filter}, "baseline": {*baseline}, "from": {ef.from}, "until": {ef.until},
		"values": {strconv.Itoa(*values)}}
	rf.set(q)
	data, err := eventsCall(ctx, &ef, "compare", q, stderr)
	if err != nil || ef.output == "json" {
		return writeJSON(stdout, data, err)
	}
	var c calc.Comparison
	if err := json.Unmarshal(data, &c); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	printWarnings(stderr, c.Warnings)
	return printComparison(stdout, &c, *top)
}

// printComparison prints the attributes that set the selection apart,
// best first, each with its top values' shares on both sides.
func printComparison(w io.Writer, c *calc.Comparison, top int) error {
	fmt.Fprintf(w, "selection: %d events, baseline: %d events\n", c.SelectionCount, c.BaselineCount)
	if c.SelectionCount == 0 {
		fmt.Fprintln(w, "nothing to compare: the selection is empty")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "attribute\tscore\tvalue\tselection\tbaseline")
	attrs := c.Attributes
	sort.SliceStable(attrs, func(i, j int) bool { return attrs[i].Score > attrs[j].Score })
	for i, a := range attrs {
		if i >= top {
			break
		}
		for k, v := range a.Values {
			name, score := printable(a.Attribute), fmt.Sprintf("%.3f", a.Score)
			if k > 0 {
				name, score = "", ""
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f%%\t%.1f%%\n", name, score, formatShare(&v, a.Unit), 100*v.SelectionShare, 100*v.BaselineShare)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(c.Defining) > 0 {
		var names []string
		for _, d := range c.Defining {
			names = append(names, d.Attribute)
		}
		fmt.Fprintf(w, "defining the selection (not ranked): %s\n", printable(strings.Join(names, ", ")))
	}
	return nil
}

// formatShare names a compared value: the value, a range, or the pooled
// absent and other values.
func formatShare(v *calc.ValueShare, unit string) string {
	switch {
	case v.Absent:
		return "(absent)"
	case v.Other:
		return "(other values)"
	case v.Range != nil:
		lo, hi := v.Range.Lo, v.Range.Hi
		if unit == "ns" {
			return "[" + formatNanos(lo) + ", " + formatNanos(hi) + ")"
		}
		return fmt.Sprintf("[%g, %g)", lo, hi)
	}
	return formatBy(v.Value)
}

package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hearth-profiler/hearth/internal/query"
)

func runQuery(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("hearth query", flag.ContinueOnError)
	server := fs.String("server", "http://localhost:4040", "Hearth server URL")
	from := fs.String("from", "-1h", "start: RFC 3339, Unix seconds, now, or relative like -1h, -7d")
	until := fs.String("until", "now", "end, in the same forms as --from")
	output := fs.String("output", "flame", "flame, top, series, pprof or json")
	out := fs.String("o", "", "write to this file instead of standard output")
	tenant := fs.String("tenant", "", "tenant ID (X-Scope-OrgID)")
	var cf clientFlags
	cf.register(fs)
	maxNodes := fs.Int("max-nodes", 0, "flame graph size (default: server's)")
	limit := fs.Int("limit", 20, "rows of the top table; 0 for all")
	sortBy := fs.String("sort", "self", "top table order: self, total or name")
	step := fs.String("step", "", "series step, e.g. 1m (default: server's)")
	groupBy := fs.String("group-by", "", "series: comma-separated labels to group by")
	focus := fs.String("focus", "", "keep only stacks with a function matching this regexp")
	ignore := fs.String("ignore", "", "drop stacks with a function matching this regexp")
	hide := fs.String("hide", "", "remove functions matching this regexp from stacks")
	spans := fs.String("spans", "", "keep the samples of the spans this event filter selects in the range, e.g. '{ span.http.route = \"/cart\" && duration > 500ms }'")
	timeout := fs.Duration("timeout", 2*time.Minute, "request timeout")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), `usage: hearth query 'cpu{service_name="api"}' --server URL --from -1h --until now --output flame|top|series|pprof|json [-o FILE]`)
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("want one query expression, got %d arguments: usage: hearth query EXPR --output flame", len(pos))
	}
	c, err := newClient(*server, *tenant, *timeout, &cf)
	if err != nil {
		return err
	}
	q := url.Values{"query": {pos[0]}, "from": {*from}, "until": {*until}}
	for k, v := range map[string]string{"focus": *focus, "ignore": *ignore, "hide": *hide, "spans": *spans} {
		if v != "" {
			q.Set(k, v)
		}
	}
	var endpoint string
	switch *output {
	case "flame", "json":
		endpoint = "flamegraph"
		if *maxNodes > 0 {
			q.Set("max_nodes", strconv.Itoa(*maxNodes))
		}
	case "top":
		endpoint = "top"
		q.Set("sort", *sortBy)
		q.Set("limit", strconv.Itoa(*limit))
	case "series":
		endpoint = "series"
		if *step != "" {
			q.Set("step", *step)
		}
		if *groupBy != "" {
			q.Set("group_by", *groupBy)
		}
	case "pprof":
		endpoint = "pprof"
	default:
		return fmt.Errorf("--output %q: want flame, top, series, pprof or json", *output)
	}
	req, err := http.NewRequestWithContext(ctx, "POST", c.base+"/api/v1/query/"+endpoint, strings.NewReader(q.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	body, err := c.do(req)
	if err != nil {
		return err
	}
	w := stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	if *output == "pprof" {
		for _, warning := range c.warnings {
			fmt.Fprintf(stderr, "warning: %s\n", printable(warning))
		}
		_, err = w.Write(body)
		return err
	}
	var env struct {
		Data     json.RawMessage `json:"data"`
		Warnings []string        `json:"warnings"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	// What the answer lacks goes beside it, not into it: stdout may be
	// piped into another tool.
	for _, w := range env.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", printable(w))
	}
	switch *output {
	case "json":
		_, err = fmt.Fprintf(w, "%s\n", env.Data)
		return err
	case "flame":
		var fg query.FlameGraph
		if err := json.Unmarshal(env.Data, &fg); err != nil {
			return fmt.Errorf("decode flame graph: %w", err)
		}
		return printFlame(w, &fg)
	case "top":
		var t query.Top
		if err := json.Unmarshal(env.Data, &t); err != nil {
			return fmt.Errorf("decode top table: %w", err)
		}
		return printTop(w, &t)
	case "series":
		var s query.SeriesResult
		if err := json.Unmarshal(env.Data, &s); err != nil {
			return fmt.Errorf("decode series: %w", err)
		}
		return printSeries(w, &s)
	}
	return nil
}

// printFlame prints the tree indented, one frame a line, with its total and
// share of the whole.
func printFlame(w io.Writer, fg *query.FlameGraph) error {
	printSpans(w, fg.Spans)
	if fg.Total == 0 && (fg.Root == nil || len(fg.Root.Children) == 0) {
		_, err := fmt.Fprintln(w, "no samples match the selector in this time range")
		return err
	}
	fmt.Fprintf(w, "%s  total %s\n", printable(fg.ProfileType), formatValue(fg.Total, fg.Unit))
	if fg.Truncated {
		fmt.Fprintf(w, "(showing %d of %d nodes; the rest are folded into %q)\n", fg.MaxNodes, fg.NumNodes, query.OtherName)
	}
	var walk func(n *query.Node, depth int)
	walk = func(n *query.Node, depth int) {
		share := 0.0
		if fg.Total != 0 {
			share = 100 * float64(n.Total) / float64(fg.Total)
		}
		fmt.Fprintf(w, "%6.2f%% %12s  %s%s\n", share, formatValue(n.Total, fg.Unit), strings.Repeat("  ", depth), printable(n.Name))
		for _, c := range n.Children {
			walk(c, depth+1)
		}
	}
	if fg.Root != nil {
		for _, c := range fg.Root.Children {
			walk(c, 0)
		}
	}
	return nil
}

// printSpans says what span filter an answer rests on, if any.
func printSpans(w io.Writer, s *query.SpanSelection) {
	if s != nil {
		fmt.Fprintf(w, "samples of the %d spans that %s selects\n", s.Spans, printable(s.Filter))
	}
}

func printTop(w io.Writer, t *query.Top) error {
	printSpans(w, t.Spans)
	if len(t.Entries) == 0 {
		_, err := fmt.Fprintln(w, "no samples match the selector in this time range")
		return err
	}
	fmt.Fprintf(w, "%s  total %s\n", printable(t.ProfileType), formatValue(t.Total, t.Unit))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "self\tself%\ttotal\ttotal%\t\tfunction")
	for _, e := range t.Entries {
		fmt.Fprintf(tw, "%s\t%.2f%%\t%s\t%.2f%%\t\t%s\n", formatValue(e.Self, t.Unit), 100*e.SelfShare, formatValue(e.Total, t.Unit), 100*e.TotalShare, printable(e.Name))
	}
	return tw.Flush()
}

func printSeries(w io.Writer, s *query.SeriesResult) error {
	if len(s.Series) == 0 {
		_, err := fmt.Fprintln(w, "no series match the selector in this time range")
		return err
	}
	for _, ser := range s.Series {
		var ls []string
		for k, v := range ser.Labels {
			ls = append(ls, k+"="+strconv.Quote(v))
		}
		fmt.Fprintf(w, "{%s}\n", strings.Join(ls, ", "))
		for _, p := range ser.Points {
			fmt.Fprintf(w, "  %s  %g\n", time.UnixMilli(int64(p[0])).UTC().Format(time.RFC3339), p[1])
		}
	}
	return nil
}

// formatValue prints a value in its unit the way a person reads it.
func formatValue(v int64, unit string) string {
	f := float64(v)
	switch unit {
	case "nanoseconds":
		switch {
		case f >= 1e9:
			return fmt.Sprintf("%.2fs", f/1e9)
		case f >= 1e6:
			return fmt.Sprintf("%.2fms", f/1e6)
		case f >= 1e3:
			return fmt.Sprintf("%.2fµs", f/1e3)
		}
		return fmt.Sprintf("%dns", v)
	case "bytes":
		switch {
		case f >= 1<<30:
			return fmt.Sprintf("%.2fGiB", f/(1<<30))
		case f >= 1<<20:
			return fmt.Sprintf("%.2fMiB", f/(1<<20))
		case f >= 1<<10:
			return fmt.Sprintf("%.2fKiB", f/(1<<10))
		}
		return fmt.Sprintf("%dB", v)
	}
	return strconv.FormatInt(v, 10)
}

// printable escapes control characters and bytes that are not UTF-8, so
// that a function name, which comes from whoever sent the profile, cannot
// move the cursor, recolour or retitle the terminal it is printed to.
func printable(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unicode.IsControl(r) && r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		case unicode.IsControl(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	gpprof "github.com/google/pprof/profile"

	"github.com/hearth-profiler/hearth/internal/labels"
)

func runPush(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("hearth push", flag.ContinueOnError)
	server := fs.String("server", "http://localhost:4040", "Hearth server URL")
	lbls := fs.String("labels", "", "series labels, 'service_name=x,env=y' (service_name is required)")
	tenant := fs.String("tenant", "", "tenant ID (X-Scope-OrgID)")
	var cf clientFlags
	cf.register(fs)
	timeout := fs.Duration("timeout", time.Minute, "timeout per file")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: hearth push FILE... --server URL --labels 'service_name=x,env=y'")
		fs.PrintDefaults()
	}
	files, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("no files given: usage: hearth push FILE... --server URL --labels 'service_name=x'")
	}
	ls, err := parseLabelFlag(*lbls)
	if err != nil {
		return fmt.Errorf("--labels: %w", err)
	}
	svc := ls.Get(labels.ServiceName)
	if svc == "" {
		return fmt.Errorf("--labels must set service_name, e.g. --labels 'service_name=api'")
	}
	c, err := newClient(*server, *tenant, *timeout, &cf)
	if err != nil {
		return err
	}
	for _, f := range files {
		at, own, err := pushFile(ctx, c, f, svc, ls)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		// The time decides which queries find the profile: say it.
		why := "the time the profile records"
		if !own {
			why = "now: the file records no time"
		}
		fmt.Fprintf(stdout, "pushed %s, stored at %s (%s)\n", f, at.UTC().Format(time.RFC3339), why)
	}
	return nil
}

// pushFile sends one file and returns the time it was stored at, and
// whether that is the profile's own time rather than now.
func pushFile(ctx context.Context, c *client, file, svc string, ls labels.Labels) (time.Time, bool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return time.Time{}, false, err
	}
	// Parse locally first: a file that is not a profile gets a clear
	// message without a round trip, and its own time is kept.
	p, err := gpprof.ParseData(data)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("not a profile google/pprof can read: %v", err)
	}
	from, own := time.Now(), p.TimeNanos > 0
	if own {
		from = time.Unix(0, p.TimeNanos)
	}
	until := from.Add(time.Duration(max(p.DurationNanos, int64(time.Second))))
	q := url.Values{}
	q.Set("name", pyroscopeName(svc, ls))
	q.Set("format", "pprof")
	q.Set("from", strconv.FormatInt(from.UnixNano(), 10))
	q.Set("until", strconv.FormatInt(until.UnixNano(), 10))
	q.Set("spyName", "hearth-push")
	req, err := http.NewRequestWithContext(ctx, "POST", c.base+"/ingest?"+q.Encode(), bytes.NewReader(data))
	if err != nil {
		return time.Time{}, false, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	if _, err := c.do(req); err != nil {
		return time.Time{}, false, err
	}
	return from, own, nil
}

// pyroscopeName builds the name parameter: app{k=v,...}.
func pyroscopeName(app string, ls labels.Labels) string {
	var b strings.Builder
	b.WriteString(app)
	b.WriteByte('{')
	i := 0
	ls.Range(func(l labels.Label) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(l.Name)
		b.WriteByte('=')
		b.WriteString(l.Value)
		i++
	})
	b.WriteByte('}')
	return b.String()
}

// parseLabelFlag reads 'k=v,k2=v2'. Values cannot hold the characters that
// the Pyroscope name syntax reserves.
func parseLabelFlag(s string) (labels.Labels, error) {
	var b labels.Builder
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		k, v = strings.TrimSpace(k), strings.Trim(strings.TrimSpace(v), `"'`)
		if !ok || k == "" {
			return labels.Labels{}, fmt.Errorf("%q is not name=value", kv)
		}
		if !labels.ValidName(k) || strings.HasPrefix(k, "__") {
			return labels.Labels{}, fmt.Errorf("invalid label name %q: must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __", k)
		}
		if v == "" || strings.ContainsAny(v, "{},=") {
			return labels.Labels{}, fmt.Errorf("label %s: value %q must be non-empty and hold none of { } , =", k, v)
		}
		b.Set(k, v)
	}
	return b.Labels(), nil
}

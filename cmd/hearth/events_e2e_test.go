package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/hearth-profiler/hearth/internal/events/calc"
)

// TestEventsSlowRegion is the incident the events half exists for: a
// service instrumented with the OpenTelemetry SDK serves requests under a
// generated load, and the requests of one region are slow. Sent over OTLP
// gRPC to a real server, the CLI's group by must put that region on top
// of p99, and compare over the slow requests must rank the region first,
// ahead of the user ID that differs on every request.
func TestEventsSlowRegion(t *testing.T) {
	grpcAddr := freeAddr(t)
	srv := startServer(t, t.TempDir(), freeAddr(t), "--otlp.grpc.listen="+grpcAddr)

	ctx := context.Background()
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(grpcAddr), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	res := resource.NewSchemaless(attribute.String("service.name", "shop"), attribute.String("service.version", "1.4.2"))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(100*time.Millisecond)), sdktrace.WithResource(res))
	tracer := tp.Tracer("shop")

	regions := []string{"eu-west-1", "us-east-1", "eu-west-3", "ap-south-1"}
	shop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		region, user := r.URL.Query().Get("region"), r.URL.Query().Get("user")
		_, span := tracer.Start(r.Context(), "POST /checkout", trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.route", "/checkout"), attribute.String("region", region),
				attribute.String("user.id", user), attribute.Int("http.response.status_code", 200)))
		defer span.End()
		d := time.Millisecond
		if region == "eu-west-3" {
			d = 150 * time.Millisecond // the incident
		}
		time.Sleep(d)
	}))
	defer shop.Close()

	// The load: 400 requests from 16 clients, regions evenly, a user
	// per request.
	var wg sync.WaitGroup
	reqs := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range reqs {
				resp, err := http.Get(fmt.Sprintf("%s/checkout?region=%s&user=u-%d", shop.URL, regions[i%len(regions)], rand.Int64()))
				if err != nil {
					t.Error(err)
					continue
				}
				resp.Body.Close()
			}
		})
	}
	for i := range 400 {
		reqs <- i
	}
	close(reqs)
	wg.Wait()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(hearthBin, append(args, "--server", srv.url, "--from", "-10m")...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("hearth %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
		}
		return out.String()
	}
	var res1 calc.Result
	out := run("events", `{ resource.service.name = "shop" && span.http.route = "/checkout" }`, "--by", "span.region",
		"--calc", "count,p99(duration)", "--order", "p99(duration) desc", "--output", "json")
	if err := json.Unmarshal([]byte(out), &res1); err != nil {
		t.Fatalf("decode %s: %v", out, err)
	}
	if res1.Matched != 400 || len(res1.Groups) != 4 || res1.Groups[0].By["span.region"] != "eu-west-3" ||
		res1.Groups[0].Values["p99(duration)"] < calc.Number(150*time.Millisecond) {
		t.Fatalf("group by region, p99 first: %s", out)
	}
	// The table says the same, to a person.
	table := run("events", `{ span.http.route = "/checkout" }`, "--by", "span.region", "--calc", "p99(duration),count")
	if lines := strings.Split(table, "\n"); len(lines) < 3 || !strings.HasPrefix(lines[1], "eu-west-3") {
		t.Errorf("table:\n%s", table)
	}

	var cmp calc.Comparison
	// On a loaded machine a few fast requests may be slow too: the
	// region must stand out all the same.
	out = run("events", "compare", "{ duration > 100ms }", "--filter", `{ resource.service.name = "shop" }`, "--output", "json")
	if err := json.Unmarshal([]byte(out), &cmp); err != nil {
		t.Fatalf("decode %s: %v", out, err)
	}
	if cmp.SelectionCount < 100 || len(cmp.Attributes) == 0 || cmp.Attributes[0].Attribute != "span.region" {
		t.Fatalf("compare: %s", out)
	}
	top := cmp.Attributes[0].Values[0]
	if top.Value != "eu-west-3" || top.SelectionShare < 0.8 || top.BaselineShare > 0.01 {
		t.Errorf("compare: region's top value %+v", top)
	}
	for i, a := range cmp.Attributes {
		if a.Attribute == "span.user.id" && i < 3 {
			t.Errorf("compare: the per-request user ID ranks %d: %s", i+1, out)
		}
	}
	if table := run("events", "compare", "{ duration > 100ms }"); !strings.Contains(table, "span.region") || !strings.Contains(table, "defining the selection") {
		t.Errorf("compare table:\n%s", table)
	}
	// One trace, as a tree.
	var found struct {
		Events []struct {
			TraceID string `json:"trace_id"`
		} `json:"events"`
	}
	out = run("events", "search", "{ span.region = \"eu-west-3\" }", "--limit", "1", "--output", "json")
	if err := json.Unmarshal([]byte(out), &found); err != nil || len(found.Events) != 1 {
		t.Fatalf("search: %s %v", out, err)
	}
	if tree := run("events", "trace", found.Events[0].TraceID); !strings.Contains(tree, "POST /checkout") || !strings.Contains(tree, "1 spans") {
		t.Errorf("trace:\n%s", tree)
	}
}

// TestEventsCLIErrors: a bad filter or calculation is one readable line
// and exit code 1; bad usage is refused before any request.
func TestEventsCLIErrors(t *testing.T) {
	srv := startServer(t, t.TempDir(), freeAddr(t))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"events", `{ duration > "x" }`}, "1:14:"},
		{[]string{"events", "{ }", "--calc", "p98x(duration)"}, "p98x"},
		{[]string{"events", "trace", "not-hex"}, "not hex"},
		{[]string{"events", "{ }", "--output", "yaml"}, "want table or json"},
		{[]string{"events"}, "want one filter"},
	} {
		cmd := exec.Command(hearthBin, append(tc.args, "--server", srv.url)...)
		var errb bytes.Buffer
		cmd.Stderr = &errb
		err := cmd.Run()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 1 || strings.Count(strings.TrimSpace(errb.String()), "\n") != 0 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("hearth %s: %v, stderr %q; want exit 1 and one line with %q", strings.Join(tc.args, " "), err, errb.String(), tc.want)
		}
	}
}

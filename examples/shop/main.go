// Command shop is a small HTTP service set up the way the README's
// walk-through asks of a Go service: OpenTelemetry spans sent to Hearth
// over OTLP, its tracer provider wrapped by Hearth's instrument package so
// that profiles know each sample's span, and the runtime's /debug/pprof
// endpoints for Hearth to scrape. With -pyroscope, the pyroscope-go SDK
// sends profiles to Hearth (Pyroscope's /ingest) instead.
//
// It serves GET /cart and POST /checkout. A cart view reads the cart (a
// sleep standing for the database) and renders it in renderCart, which
// burns CPU on every view. Checkout prices the cart in priceCart, which
// burns CPU; for enterprise customers (one user in twenty) it also
// computes taxes in computeTax, which burns far more, so that their
// checkouts are slow in code a profile can name. With -load, it sends
// itself requests for that long from a few clients.
//
//	go run ./examples/shop -hearth http://localhost:4040 -load 2m
//	go run ./examples/shop -hearth http://localhost:4040 -pyroscope http://localhost:4040 -load 2m
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	_ "net/http/pprof" // /debug/pprof, for Hearth to scrape
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/grafana/pyroscope-go"

	"github.com/hearth-profiler/hearth/instrument"
)

// options are the command's flags.
type options struct {
	listen, hearth, service string
	load                    time.Duration
	clients                 int
	pyroscope               string
	uploadRate              time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address to serve the shop and /debug/pprof on")
	flag.StringVar(&o.hearth, "hearth", "http://localhost:4040", "Hearth server to send spans to (OTLP/HTTP at /v1/traces)")
	flag.StringVar(&o.service, "service", "shop", "service.name of the spans, and application name of -pyroscope's profiles")
	flag.DurationVar(&o.load, "load", 0, "send the shop requests for this long, then keep serving; 0 sends none")
	flag.IntVar(&o.clients, "clients", 4, "concurrent clients of -load")
	flag.StringVar(&o.pyroscope, "pyroscope", "", "send profiles with the pyroscope-go SDK to this server (Pyroscope's /ingest; Hearth's URL).\n"+
		"Its CPU profiler holds the process's one CPU profile: /debug/pprof/profile is then refused, scrape one or the other")
	flag.DurationVar(&o.uploadRate, "pyroscope-upload-rate", 15*time.Second, "how often pyroscope-go sends what it profiled")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(o, logger); err != nil {
		fmt.Fprintln(os.Stderr, "shop:", err)
		os.Exit(1)
	}
}

func run(o options, logger *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.pyroscope != "" {
		// The SDK's CPU profiler is the runtime's, as /debug/pprof's is:
		// its samples carry the pprof labels instrument sets while a span
		// runs, and Hearth reads them the same way.
		p, err := pyroscope.Start(pyroscope.Config{
			ApplicationName: o.service, // Hearth's service_name
			ServerAddress:   o.pyroscope,
			UploadRate:      o.uploadRate,
			Logger:          sdkLogger{logger},
			// ProfileTypes: the SDK's default, CPU, allocations and heap.
		})
		if err != nil {
			return fmt.Errorf("pyroscope-go: %w", err)
		}
		// What was profiled since the last upload is sent on the way
		// out: Flush waits for it (Stop alone may drop it).
		defer func() {
			p.Flush(true)
			_ = p.Stop()
		}()
	}
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(o.hearth+"/v1/traces"))
	if err != nil {
		return fmt.Errorf("OTLP exporter: %w", err)
	}
	res := resource.NewSchemaless(attribute.String("service.name", o.service), attribute.String("service.version", "1.0.0"))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(time.Second)), sdktrace.WithResource(res))
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := tp.Shutdown(sctx); err != nil {
			logger.Error("flush spans", "err", err)
		}
	}()
	s := &shop{tracer: instrument.TracerProvider(tp).Tracer("shop")}
	mux := http.NewServeMux()
	mux.Handle("/debug/pprof/", http.DefaultServeMux)
	mux.HandleFunc("GET /cart", s.serve("/cart", s.cart))
	mux.HandleFunc("POST /checkout", s.serve("/checkout", s.checkout))
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	logger.Info("serving", "addr", ln.Addr().String(), "hearth", o.hearth, "service", o.service, "pyroscope", o.pyroscope)
	if o.load > 0 {
		go sendLoad(ctx, "http://"+ln.Addr().String(), o.load, o.clients, logger)
	}
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// sdkLogger gives pyroscope-go's log lines to the shop's logger: its
// errors (a refused upload) as errors, the rest as debug lines.
type sdkLogger struct{ l *slog.Logger }

func (s sdkLogger) Infof(format string, args ...any) {
	s.l.Debug(fmt.Sprintf(format, args...), "from", "pyroscope-go")
}

func (s sdkLogger) Debugf(format string, args ...any) {
	s.l.Debug(fmt.Sprintf(format, args...), "from", "pyroscope-go")
}

func (s sdkLogger) Errorf(format string, args ...any) {
	s.l.Error(fmt.Sprintf(format, args...), "from", "pyroscope-go")
}

type shop struct {
	tracer trace.Tracer
}

// serve makes a handler of a route: a server span, with the request's
// identifiers as fields, around handle.
func (s *shop) serve(route string, handle func(context.Context, string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		user := r.URL.Query().Get("user")
		name := r.Method + " " + route
		err := instrument.Run(r.Context(), s.tracer, name, func(ctx context.Context) error {
			instrument.AddFields(ctx, attribute.String("http.request.method", r.Method), attribute.String("http.route", route))
			// Who the request is for goes on each of its spans, so that
			// any of them can be grouped or compared by it.
			ctx = instrument.AddTraceFields(ctx, attribute.String("user.id", user), attribute.String("app.customer.tier", tier(user)))
			return handle(ctx, user)
		}, trace.WithSpanKind(trace.SpanKindServer))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	}
}

// tier is a user's customer tier: one user in twenty is an enterprise.
func tier(user string) string {
	if crc32.ChecksumIEEE([]byte(user))%20 == 0 {
		return "enterprise"
	}
	return "free"
}

func (s *shop) cart(ctx context.Context, user string) error {
	items := 0
	err := instrument.Run(ctx, s.tracer, "SELECT cart", func(ctx context.Context) error {
		time.Sleep(2 * time.Millisecond) // the database's time, not ours
		items = 3 + rand.IntN(5)
		return nil
	}, trace.WithAttributes(attribute.String("db.system.name", "postgresql")), trace.WithSpanKind(trace.SpanKindClient))
	if err != nil {
		return err
	}
	// Rendered in the request's own span: its samples are GET /cart's.
	instrument.AddField(ctx, "cart.items", items)
	instrument.AddField(ctx, "cart.page_bytes", len(renderCart(items)))
	return nil
}

func (s *shop) checkout(ctx context.Context, user string) error {
	items := 3 + rand.IntN(5)
	instrument.AddField(ctx, "cart.items", items)
	var total float64
	err := instrument.Run(ctx, s.tracer, "price cart", func(ctx context.Context) error {
		total = priceCart(items)
		if tier(user) == "enterprise" {
			total += computeTax(total)
		}
		return nil
	})
	instrument.AddField(ctx, "cart.total", total)
	return err
}

// The functions below each burn CPU in a loop of their own rather than
// in a shared helper, so that a profile's samples land in them (their self
// time), not in the helper.

// renderCart burns a few hundred microseconds of CPU per view and
// returns the page.
//
//go:noinline
func renderCart(items int) string {
	x := 1.0
	for i := range items * 60_000 {
		x += float64(i%5) * 1.0000001
	}
	return fmt.Sprintf("<p>%d items</p><!-- %x -->", items, int64(x))
}

// priceCart burns a little less, per checkout.
//
//go:noinline
func priceCart(items int) float64 {
	x := 1.0
	for i := range items * 40_000 {
		x += float64(i%7) * 1.0000001
	}
	return x / 1e9
}

// computeTax burns far more, about two milliseconds: enterprise checkouts
// are slow here.
//
//go:noinline
func computeTax(total float64) float64 {
	x := 1.0
	for i := range 2_000_000 {
		x += float64(i%11) * 1.0000001
	}
	return x/1e12 + total*0.2
}

// sendLoad sends the shop requests from clients goroutines for d: a cart
// view and then a checkout, for users drawn from ten thousand.
func sendLoad(ctx context.Context, base string, d time.Duration, clients int, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	sent, failed := 0, 0
	for c := range clients {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(c), 7))
			for ctx.Err() == nil {
				user := "u-" + strconv.Itoa(r.IntN(10_000))
				for _, req := range []struct{ method, path string }{{"GET", "/cart"}, {"POST", "/checkout"}} {
					hr, _ := http.NewRequestWithContext(ctx, req.method, base+req.path+"?user="+user, nil)
					resp, err := http.DefaultClient.Do(hr)
					mu.Lock()
					sent++
					if err != nil || resp.StatusCode != http.StatusOK {
						failed++
					}
					mu.Unlock()
					if err == nil {
						_ = resp.Body.Close()
					}
				}
			}
		})
	}
	wg.Wait()
	logger.Info("load done", "requests", sent, "failed", failed)
}

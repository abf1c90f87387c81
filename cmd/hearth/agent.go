package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hearth-profiler/hearth/internal/agent"
	"github.com/hearth-profiler/hearth/internal/agent/bpf"
	"github.com/hearth-profiler/hearth/internal/agent/symbolize"
)

// newSampler opens the kernel sampler with opts (FrequencyHz per CPU, map
// sizes), leaving out the agent's own process. What the host lacks for it
// (root or capabilities, the bpf syscall, perf events) is said first, one
// line each, with the fix.
var newSampler = func(opts bpf.Options) (agent.Sampler, error) {
	if err := bpf.Check(); err != nil {
		return nil, err
	}
	p, err := bpf.Open(opts)
	if err != nil {
		return nil, err
	}
	return bpfSampler{p}, nil
}

// bpfSampler is the kernel sampler as the agent sees it.
type bpfSampler struct{ p *bpf.Profiler }

func (s bpfSampler) Drain() ([]agent.Sample, agent.SamplerStats, error) {
	samples, st, err := s.p.Drain()
	return samples, agent.SamplerStats{Samples: st.Samples, Lost: st.Lost}, err
}

func (s bpfSampler) Close() error { return s.p.Close() }

// newSymbolizer opens the symbolizer, reading processes' binaries through
// procRoot.
var newSymbolizer = func(procRoot string) (agent.Symbolizer, error) {
	return symbolize.New(symbolize.Options{ProcRoot: procRoot}), nil
}

const agentUsage = `usage: hearth agent --server URL [flags]

Profiles the CPU of every process on this host with eBPF and pushes one
profile per process every --interval. Needs root (or CAP_BPF, CAP_PERFMON
and CAP_SYS_PTRACE).

flags:
`

func runAgent(ctx context.Context, args []string, stderr io.Writer) error {
	cfg := agent.DefaultConfig()
	fs := flag.NewFlagSet("hearth agent", flag.ContinueOnError)
	// Bad flags fail with one line (run prints it); the full usage is for
	// -h only.
	fs.SetOutput(io.Discard)
	fs.StringVar(&cfg.Server, "server", cfg.Server, "Hearth server URL")
	fs.Var(durationFlag{&cfg.Interval}, "interval", "span of each profile")
	fs.Var(durationFlag{&cfg.DrainInterval}, "drain-interval", "longest wait between drains of the kernel's sample maps; down to an eighth of it while drains lose samples")
	fs.Float64Var(&cfg.LostShareTarget, "lost-share-target", cfg.LostShareTarget, "share of samples (0 to 1) a drain may lose to full kernel maps before draining more often")
	fs.IntVar(&cfg.FrequencyHz, "frequency", cfg.FrequencyHz, "samples per second per CPU, 1 to 1000")
	serviceEnv := fs.String("service-name-env", strings.Join(cfg.ServiceNameEnv, ","), "environment variables naming a process's service, first set first; else the executable's name")
	includeComm := fs.String("include-comm", "", "profile only processes whose comm or executable path matches this regexp (unanchored)")
	excludeComm := fs.String("exclude-comm", "", "leave out processes whose comm or executable path matches this regexp (unanchored)")
	includeCgroup := fs.String("include-cgroup", "", "profile only processes whose cgroup path matches this regexp (unanchored)")
	excludeCgroup := fs.String("exclude-cgroup", "", "leave out processes whose cgroup path matches this regexp (unanchored)")
	includePID := fs.String("include-pid", "", "profile only these process IDs, comma-separated")
	excludePID := fs.String("exclude-pid", "", "leave out these process IDs, comma-separated")
	lbls := fs.String("labels", "", "labels added to every series, 'env=prod,region=eu'")
	fs.StringVar(&cfg.Tenant, "tenant", "", "tenant ID (X-Scope-OrgID)")
	var cf clientFlags
	cf.register(fs)
	fs.Lookup("token-file").Usage += "; read again before every push, so it can be rotated"
	fs.StringVar(&cf.tokenFile, "bearer-token-file", "", "older name of --token-file")
	fs.Int64Var(&cfg.MaxBufferBytes, "max-buffer-bytes", cfg.MaxBufferBytes, "profiles kept in memory while the server is away; beyond, the oldest are dropped")
	fs.IntVar(&cfg.MaxProcesses, "max-processes", cfg.MaxProcesses, "most processes tracked at once")
	fs.IntVar(&cfg.MaxStacks, "max-stacks", cfg.MaxStacks, "most distinct stacks per interval, over all processes")
	fs.StringVar(&cfg.ProcRoot, "proc", cfg.ProcRoot, "where the host's /proc is mounted")
	stackEntries := fs.Int("stack-map-entries", bpf.DefaultStackMapEntries, "distinct stacks, user and kernel, each of the kernel's two stack maps holds between drains (about 1 KiB of kernel memory each)")
	countEntries := fs.Int("count-map-entries", bpf.DefaultCountMapEntries, "distinct (thread, stacks) keys each of the kernel's two count maps holds between drains")
	listen := fs.String("listen", ":4041", "address to serve /metrics and /debug/pprof on; empty serves nothing")
	logLevel := fs.String("log.level", "info", "debug, info, warn or error")
	logFormat := fs.String("log.format", "text", "text or json")
	pos, err := parseInterleaved(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(stderr)
		fmt.Fprint(stderr, agentUsage)
		fs.PrintDefaults()
		return err
	}
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return fmt.Errorf("unexpected argument %q", pos[0])
	}
	if err := agentFlags(&cfg, *serviceEnv, *includeComm, *excludeComm, *includeCgroup, *excludeCgroup, *includePID, *excludePID, *lbls); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		n    int
	}{{"stack-map-entries", *stackEntries}, {"count-map-entries", *countEntries}} {
		if f.n < 1 || f.n > 1<<24 {
			return fmt.Errorf("--%s %d: want 1 to %d", f.name, f.n, 1<<24)
		}
	}
	logger, err := newLogger(stderr, *logLevel, *logFormat)
	if err != nil {
		return err
	}
	// The token file is read before every push and the client
	// certificate's files checked on handshakes, so that both can be
	// rotated under a running agent.
	tok, tr, err := cf.transport(cfg.Server, logger.With("component", "push"))
	if err != nil {
		return err
	}
	cfg.HTTPClient = &http.Client{Transport: tr}
	if tok != nil {
		cfg.Token = tok.Token
	}
	// A SIGHUP meant for a server on the same host (which re-reads its
	// configuration on one) must not end the agent, whose default action
	// it would be: the agent has no file to re-read, so it says so.
	defer onHangup(ctx, func() {
		logger.Info("SIGHUP ignored: the agent has no configuration file; restart it to change its flags")
	})()
	sampler, err := newSampler(bpf.Options{
		FrequencyHz:     cfg.FrequencyHz,
		StackMapEntries: *stackEntries,
		CountMapEntries: *countEntries,
		ExcludeTGID:     uint32(os.Getpid()),
	})
	if err != nil {
		return fmt.Errorf("open the sampler: %w", err)
	}
	defer sampler.Close()
	sym, err := newSymbolizer(cfg.ProcRoot)
	if err != nil {
		return fmt.Errorf("open the symbolizer: %w", err)
	}
	a, err := agent.New(cfg, sampler, sym, logger.With("component", "agent"))
	if err != nil {
		return err
	}
	if *listen != "" {
		stop, err := serveAgentHTTP(*listen, a, logger)
		if err != nil {
			return err
		}
		defer stop()
	}
	return a.Run(ctx)
}

// serveAgentHTTP serves the agent's metrics and Go's profiling endpoints
// on addr until stop is called. The address is bound before it returns, so
// that a port in use fails the start, not a log line later.
func serveAgentHTTP(addr string, a *agent.Agent, logger *slog.Logger) (stop func(), err error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		a.Collector(),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelError)}))
	mux.HandleFunc("GET /-/healthy", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--listen: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	logger.Info("serving metrics", "addr", ln.Addr().String())
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("serve metrics", "err", err)
		}
	}()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}

// agentFlags puts the flags that need parsing into cfg, naming the flag in
// any error.
func agentFlags(cfg *agent.Config, serviceEnv, includeComm, excludeComm, includeCgroup, excludeCgroup, includePID, excludePID, lbls string) error {
	cfg.ServiceNameEnv = nil
	for n := range strings.SplitSeq(serviceEnv, ",") {
		if n = strings.TrimSpace(n); n != "" {
			cfg.ServiceNameEnv = append(cfg.ServiceNameEnv, n)
		}
	}
	for _, re := range []struct {
		flag, expr string
		dst        **regexp.Regexp
	}{
		{"include-comm", includeComm, &cfg.Include.Comm},
		{"exclude-comm", excludeComm, &cfg.Exclude.Comm},
		{"include-cgroup", includeCgroup, &cfg.Include.Cgroup},
		{"exclude-cgroup", excludeCgroup, &cfg.Exclude.Cgroup},
	} {
		if re.expr == "" {
			continue
		}
		r, err := regexp.Compile(re.expr)
		if err != nil {
			return fmt.Errorf("--%s: %w", re.flag, err)
		}
		*re.dst = r
	}
	var err error
	if cfg.Include.PIDs, err = agent.ParsePIDList(includePID); err != nil {
		return fmt.Errorf("--include-pid: %w", err)
	}
	if cfg.Exclude.PIDs, err = agent.ParsePIDList(excludePID); err != nil {
		return fmt.Errorf("--exclude-pid: %w", err)
	}
	if cfg.Labels, err = parseLabelFlag(lbls); err != nil {
		return fmt.Errorf("--labels: %w", err)
	}
	return nil
}

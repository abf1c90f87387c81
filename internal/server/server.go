// Package server wires Hearth's parts into one process: storage, ingest,
// query, the HTTP API and the self-profiler.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"
	"golang.org/x/net/netutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/hearth-profiler/hearth/internal/api"
	"github.com/hearth-profiler/hearth/internal/auth"
	"github.com/hearth-profiler/hearth/internal/events"
	"github.com/hearth-profiler/hearth/internal/events/jsonl"
	"github.com/hearth-profiler/hearth/internal/ingest"
	"github.com/hearth-profiler/hearth/internal/ingesters"
	"github.com/hearth-profiler/hearth/internal/limits"
	"github.com/hearth-profiler/hearth/internal/otlp"
	"github.com/hearth-profiler/hearth/internal/priority"
	"github.com/hearth-profiler/hearth/internal/push"
	"github.com/hearth-profiler/hearth/internal/querier"
	"github.com/hearth-profiler/hearth/internal/query"
	"github.com/hearth-profiler/hearth/internal/scrape"
	"github.com/hearth-profiler/hearth/internal/selfevents"
	"github.com/hearth-profiler/hearth/internal/selfprofile"
	"github.com/hearth-profiler/hearth/internal/settings"
	"github.com/hearth-profiler/hearth/internal/storage"
	"github.com/hearth-profiler/hearth/internal/storage/bucket"
	"github.com/hearth-profiler/hearth/internal/tlsconfig"
	"github.com/hearth-profiler/hearth/web"
	"github.com/prometheus/client_golang/prometheus"
)

// Config is what a server needs to start.
type Config struct {
	ListenAddr   string
	DataDir      string
	MaxBodyBytes int64
	// Limits are every tenant's limits (profiles, series, ingest rate,
	// queries), unless the limits: section of ConfigFile says otherwise.
	Limits limits.Limits
	// MaxDecompressedBytes bounds every decompression of a request
	// (gzipped bodies, profiles, JFR recordings and labels, gRPC and
	// Connect messages), for every tenant.
	MaxDecompressedBytes int64
	// Events bound the events of one request (OTLP traces and logs, JSON
	// lines) and each event; zero fields take events.DefaultLimits.
	Events events.Limits
	// MaxInflightBytes bounds the bytes held by requests being decoded;
	// past it, requests are refused with 429 / resource exhausted. 0
	// bounds nothing.
	MaxInflightBytes int64
	// MaxConnections bounds the open connections of the HTTP listener;
	// more wait in the kernel's backlog. 0 bounds nothing.
	MaxConnections int
	// ReadTimeout bounds reading one request, body included, so that a
	// client trickling bytes cannot hold a connection (and its memory)
	// for ever; IdleTimeout bounds a kept-alive connection with no
	// request; WriteTimeout bounds serving one request, answer included,
	// and must leave room for a query's time.
	ReadTimeout, IdleTimeout, WriteTimeout time.Duration
	WALSync                                bool
	// Retention is how long profiles are kept; 0 keeps them forever.
	Retention time.Duration
	// BlockDuration is the span of data a head holds before it is cut
	// into a block.
	BlockDuration time.Duration
	// SelfProfileInterval is the window of the self-profiler; 0 turns it
	// off.
	SelfProfileInterval time.Duration
	// SelfEvents records Hearth's own requests and log records as events
	// of the default tenant (package selfevents).
	SelfEvents bool
	// Version names this build in Hearth's own events.
	Version string
	// OTLPGRPCAddr is where OTLP's gRPC ProfilesService listens (4317 by
	// OTLP's convention); "" serves it only on ListenAddr.
	OTLPGRPCAddr string
	// QueryCPUShare is the share of the CPUs (0 to 1) that queries may use
	// while profiles arrive; 1 or more holds queries back never.
	QueryCPUShare float64
	// ConfigFile is the YAML file with scrape_configs; "" scrapes nothing.
	// It is read again on Reload (SIGHUP, POST /-/reload).
	ConfigFile string
	// TLS, when its files are set, serves HTTPS (HTTP/1.1 and HTTP/2)
	// on ListenAddr and TLS on OTLPGRPCAddr, instead of cleartext.
	TLS tlsconfig.Server
	// AuthTokensFile is the YAML file of the tokens that requests must
	// carry (package auth); "" leaves every route open to anyone. It is
	// read again on Reload and when it changes.
	AuthTokensFile string
	// AuthProtectMetrics makes /metrics need a token with the admin
	// scope; without it /metrics stays open, as scrapers expect.
	AuthProtectMetrics bool
	// AuthPollInterval is how often the tokens file is looked at for
	// changes; 0 means auth.DefaultPollInterval.
	AuthPollInterval time.Duration
	// BucketCheckTimeout bounds the check at start-up that the bucket
	// of the configuration file's storage section answers; 0 means
	// DefaultBucketCheckTimeout.
	BucketCheckTimeout time.Duration
	// Target is the role of the server: TargetAll (the default; "" is
	// the same), TargetIngester or TargetQuerier. The last two need the
	// configuration file's storage section, a bucket they share.
	Target string
	// SyncInterval is how often a querier lists the bucket again; 0
	// means DefaultSyncInterval.
	SyncInterval time.Duration
	// CacheMemoryBytes and CacheDiskBytes bound the cache of blocks'
	// files read from an object store (bucket.Cached): in memory, and
	// on disk in DataDir/cache, which survives restarts. 0 turns a tier
	// off. A filesystem bucket is not cached.
	CacheMemoryBytes, CacheDiskBytes int64
	// BucketReadTimeout bounds one ranged read of a block's samples or
	// events from an object store (a chunk of the cache), which has no
	// query's context to end it; 0 leaves it to the HTTP client's
	// timeouts. It applies while the cache has a tier.
	BucketReadTimeout time.Duration
	// Ingesters are the ingesters a querier asks for what is not in the
	// bucket yet: comma-separated host:port or dns+NAME:PORT entries
	// (package ingesters); "" asks none, and the querier serves the
	// bucket's blocks alone.
	Ingesters string
	// IngestersRefresh is how often a querier resolves the dns+ entries
	// of Ingesters; 0 means DefaultIngestersRefresh.
	IngestersRefresh time.Duration
	// IngesterTimeout bounds one ingester's answer to a querier; 0 means
	// DefaultIngesterTimeout.
	IngesterTimeout time.Duration
	// IngesterMaxBytes bounds one ingester's answer, which a querier
	// holds in memory for the query; 0 means DefaultIngesterMaxBytes.
	IngesterMaxBytes int64
	// KeepUploaded is how long an ingester keeps a block it uploaded in
	// its view; 0 means DefaultKeepUploaded.
	KeepUploaded time.Duration
	// Compactor configures the compactor of TargetCompactor.
	Compactor CompactorConfig
}

// DefaultBucketCheckTimeout is how long the start-up check of a bucket
// waits for an answer: long enough for the S3 client to retry a request
// that failed on the way (a 503, a connection reset); a store that takes
// connections and never answers, or an address that drops them, fails
// the start at this.
const DefaultBucketCheckTimeout = 15 * time.Second

// DefaultConfig is the configuration of a plain `hearth server`.
func DefaultConfig() Config {
	return Config{
		ListenAddr:   ":4040",
		DataDir:      "./data",
		MaxBodyBytes: 16 << 20,
		Limits:       limits.Defaults(),
		// See ingest.DefaultMaxDecompressedBytes.
		MaxDecompressedBytes: ingest.DefaultMaxDecompressedBytes,
		Events:               events.DefaultLimits(),
		// 16 requests decompressing to the 64 MiB limit at once, or many
		// more ordinary ones: with what parsing adds, about 1 GiB at
		// worst, where eight gzip bombs used to take 11 GiB.
		MaxInflightBytes: 256 << 20,
		// Far below the default limit of open files that Go raises
		// itself to on Linux, leaving room for the blocks and the log.
		MaxConnections: 4096,
		// A 16 MiB body at 1 Mbit/s takes about 2 minutes.
		ReadTimeout: 2 * time.Minute,
		IdleTimeout: 2 * time.Minute,
		// The query timeout (2 minutes) and time to write the answer; a
		// 30 s CPU profile of /debug/pprof fits too.
		WriteTimeout:        3 * time.Minute,
		Retention:           storage.DefaultOptions().Retention,
		BlockDuration:       storage.DefaultOptions().BlockDuration,
		SelfProfileInterval: 10 * time.Second,
		SelfEvents:          true,
		OTLPGRPCAddr:        ":4317",
		// Measured with bench/peer -query-clients 4 on 2 cores: see the
		// README's "Queries beside ingest".
		QueryCPUShare:      0.1,
		BucketCheckTimeout: DefaultBucketCheckTimeout,
		Target:             TargetAll,
		SyncInterval:       DefaultSyncInterval,
		CacheMemoryBytes:   DefaultCacheMemoryBytes,
		CacheDiskBytes:     DefaultCacheDiskBytes,
		// Far above a healthy store's second for a 1 MiB chunk, and
		// well within a query's 2 minutes, so that the query fails
		// saying that the bucket did not answer.
		BucketReadTimeout: 30 * time.Second,
		Compactor:         DefaultCompactorConfig(),
	}
}

// Defaults of the cache of an object store's blocks. In memory, enough
// for the chunks that opening a day of one service's blocks reads; on
// disk, the index, symbols and samples of some hundred blocks.
const (
	DefaultCacheMemoryBytes = 256 << 20
	DefaultCacheDiskBytes   = 10 << 30
)

// Server is a running Hearth.
type Server struct {
	cfg     Config
	logger  *slog.Logger
	db      *storage.DB
	ing     *ingest.Ingester
	mux     *routes
	scrape  *scrape.Manager
	grpc    *grpc.Server
	grpcLn  net.Listener // nil: OTLP gRPC only on the main port
	tls     *tls.Config  // nil: cleartext
	metrics *metrics
	gov     *priority.Governor // holds queries back for ingest
	events  *events.Tally      // what the ways in of events did
	self    selfEvents
	// tokenFile holds the tokens requests must carry; nil when
	// authentication is off.
	tokenFile *auth.File
	access    map[string]access // the access of each route; see accessTable
	// limits are the tenants' limits in force, refusals the requests
	// and profiles that they refused.
	limits   *limits.Overrides
	refusals *limits.Refusals
	// bkt is the bucket of the configuration file's storage section,
	// which the server closes after the storage; nil for the default
	// one, which the storage opens and closes itself. storage is that
	// section as it was at start-up, which a reload may not change.
	bkt     bucket.Bucket
	storage *bucket.Config
	// discovery and ingesters are a querier's ingesters (--ingesters);
	// nil without them.
	discovery *ingesters.Discovery
	ingesters *ingesters.Client

	reloadMu sync.Mutex // one reload at a time
}

// routes is the server's mux; it remembers the patterns registered, so
// that each can be given its access and tested.
type routes struct {
	*http.ServeMux
	patterns []string
}

func (m *routes) Handle(pattern string, h http.Handler) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.Handle(pattern, h)
}

func (m *routes) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(h))
}

// Patterns returns the patterns of every route of the server's HTTP
// handler, in the order they were registered.
func (s *Server) Patterns() []string { return slices.Clone(s.mux.patterns) }

// New opens the storage (replaying its log) and builds the handlers.
func New(cfg Config, logger *slog.Logger) (*Server, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.forTarget()
	logger, self := recordSelf(cfg, logger)
	// Before storage: a wrong file fails at once, without replaying the
	// log first.
	l, err := load(context.Background(), cfg, logger)
	if err != nil {
		return nil, err
	}
	return newServer(cfg, logger, l, self)
}

// loaded is what a server reads and checks before it opens the storage,
// so that a wrong file or a bucket out of reach fails the start at once,
// in one line, without replaying the log first.
type loaded struct {
	tls    *tls.Config // nil: cleartext
	tokens *auth.File  // nil: no tokens required
	file   *scrape.Config
	// bkt is the bucket of file's storage section, checked; nil for the
	// default one.
	bkt bucket.Bucket
	// reg is the server's metrics registry, made before the bucket so
	// that an object store's operation metrics go to /metrics too.
	reg *prometheus.Registry
}

func load(ctx context.Context, cfg Config, logger *slog.Logger) (loaded, error) {
	var l loaded
	var err error
	if l.tls, err = loadTLS(cfg, logger); err != nil {
		return l, err
	}
	if l.tokens, err = loadTokens(cfg, logger); err != nil {
		return l, err
	}
	if l.file, err = loadConfigFile(cfg); err != nil {
		return l, err
	}
	if err := checkTarget(cfg, storageOf(l.file) != nil); err != nil {
		return l, err
	}
	l.reg = prometheus.NewRegistry()
	if l.bkt, err = openBucket(ctx, cfg, storageOf(l.file), l.reg, logger); err != nil {
		return l, err
	}
	// Once all is loaded, so that a start that fails says only why.
	logAuthMode(logger, l.tokens, cfg.AuthProtectMetrics)
	return l, nil
}

// loadConfigFile reads cfg.ConfigFile; an empty configuration without
// one.
func loadConfigFile(cfg Config) (*scrape.Config, error) {
	if cfg.ConfigFile == "" {
		return &scrape.Config{}, nil
	}
	return scrape.LoadFile(cfg.ConfigFile)
}

// storageOf returns the bucket section of a configuration file; nil when
// it has none.
func storageOf(c *scrape.Config) *bucket.Config {
	if c.Storage == nil {
		return nil
	}
	return c.Storage.Bucket
}

// openBucket opens the bucket that bc describes and checks that it
// answers, within cfg.BucketCheckTimeout: wrong credentials, a bucket that
// does not exist and an endpoint out of reach stop the start here, and
// so do keys that may not write, but for a querier, which never does. It
// returns nil for the default bucket (bc nil), which the storage opens.
func openBucket(ctx context.Context, cfg Config, bc *bucket.Config, reg prometheus.Registerer, logger *slog.Logger) (bucket.Bucket, error) {
	if bc == nil {
		logger.Info("blocks kept in the data directory", "bucket", (*bucket.Config)(nil), "dir", filepath.Join(cfg.DataDir, "tenants"))
		return nil, nil
	}
	start := time.Now()
	b, err := bucket.Open(bc, bucket.Options{
		SpoolDir:   filepath.Join(cfg.DataDir, "upload-spool"),
		Logger:     logger.With("component", "bucket"),
		Registerer: reg,
	})
	if err != nil {
		return nil, err
	}
	timeout := cfg.BucketCheckTimeout
	if timeout <= 0 {
		timeout = DefaultBucketCheckTimeout
	}
	if err := bucket.Check(ctx, b, timeout); err != nil {
		b.Close()
		return nil, fmt.Errorf("storage.bucket: %w", err)
	}
	if cfg.Target != TargetQuerier {
		if err := bucket.CheckWrite(ctx, b, timeout); err != nil {
			b.Close()
			return nil, fmt.Errorf("storage.bucket: may not write: %w", err)
		}
	}
	logger.Info("blocks kept in a bucket", "bucket", bc, "dur", time.Since(start))
	if bc.Type == bucket.TypeFilesystem || cfg.CacheMemoryBytes <= 0 && cfg.CacheDiskBytes <= 0 {
		return b, nil
	}
	cdir := filepath.Join(cfg.DataDir, "cache")
	c, err := bucket.NewCached(b, bucket.CacheOptions{
		Cacheable:   storage.ImmutableObject,
		MemoryBytes: max(cfg.CacheMemoryBytes, 0),
		Dir:         cdir,
		DiskBytes:   max(cfg.CacheDiskBytes, 0),
		ReadTimeout: max(cfg.BucketReadTimeout, 0),
		Registerer:  reg,
		Logger:      logger.With("component", "bucket-cache"),
	})
	if err != nil {
		b.Close()
		return nil, err
	}
	logger.Info("blocks' files cached", "memory_bytes", cfg.CacheMemoryBytes, "disk_bytes", cfg.CacheDiskBytes, "dir", cdir)
	return c, nil
}

// selfEvents is the recorder of Hearth's own events (nil when they are
// off) and the logger its failures go to.
type selfEvents struct {
	rec   *selfevents.Recorder
	plain *slog.Logger
}

// recordSelf makes the recorder of Hearth's own events, when cfg asks
// for them, and the logger every component then logs through. The
// recorder's own failures go to the plain logger, so that failing to
// store events does not make more of them.
func recordSelf(cfg Config, logger *slog.Logger) (*slog.Logger, selfEvents) {
	self := selfEvents{plain: logger.With("component", "selfevents")}
	if cfg.SelfEvents {
		self.rec = selfevents.New(cfg.Version)
		logger = slog.New(self.rec.LogHandler(logger.Handler()))
	}
	return logger, self
}

func loadTLS(cfg Config, logger *slog.Logger) (*tls.Config, error) {
	return cfg.TLS.Config(logger.With("component", "tls"))
}

// loadTokens loads the tokens file; nil without one.
func loadTokens(cfg Config, logger *slog.Logger) (*auth.File, error) {
	var f *auth.File
	if cfg.AuthTokensFile != "" {
		var err error
		if f, err = auth.OpenFile(cfg.AuthTokensFile, logger.With("component", "auth")); err != nil {
			return nil, fmt.Errorf("--auth.tokens-file: %w", err)
		}
	}
	return f, nil
}

// newServer is New with the files loaded and the bucket checked; it
// closes l.bkt when it fails.
func newServer(cfg Config, logger *slog.Logger, l loaded, self selfEvents) (_ *Server, err error) {
	if l.bkt != nil {
		defer func() {
			if err != nil {
				l.bkt.Close()
			}
		}()
	}
	tlsCfg, tokenFile := l.tls, l.tokens
	// Retention is a tenant limit too, which the limits: section may set
	// per tenant; --retention is its flag.
	cfg.Limits.Retention = cfg.Retention
	if err := cfg.Limits.Validate(); err != nil {
		return nil, fmt.Errorf("limits: %w", err)
	}
	if err := cfg.Events.Validate(); err != nil {
		return nil, err
	}
	opts := storage.DefaultOptions()
	opts.Decode = ingest.Replay
	opts.WALSync = cfg.WALSync
	opts.Retention = cfg.Retention
	if cfg.BlockDuration > 0 {
		opts.BlockDuration = cfg.BlockDuration
	}
	opts.Bucket = l.bkt
	lim := limits.NewOverrides(cfg.Limits)
	if cfg.Target == "" || cfg.Target == TargetAll || cfg.Target == TargetCompactor {
		opts.RetentionFor = func(tenant string) time.Duration { return lim.For(tenant).Retention }
	}
	cfg.storageOptions(&opts)
	if cfg.Target != "" && cfg.Target != TargetAll {
		logger.Info("role", "target", cfg.Target, "block_duration", opts.BlockDuration, "sync_interval", opts.SyncInterval,
			"compaction", len(opts.CompactionRanges) > 0, "retention", opts.Retention)
	}
	db, err := storage.Open(filepath.Clean(cfg.DataDir), logger.With("component", "storage"), opts)
	if err != nil {
		return nil, fmt.Errorf("open storage in %s: %w", cfg.DataDir, err)
	}
	maxDecompressed := cfg.MaxDecompressedBytes
	if maxDecompressed <= 0 {
		maxDecompressed = ingest.DefaultMaxDecompressedBytes
	}
	s := &Server{cfg: cfg, logger: logger, db: db, mux: &routes{ServeMux: http.NewServeMux()}, tls: tlsCfg, tokenFile: tokenFile,
		limits: lim, refusals: &limits.Refusals{}, self: self,
		bkt: l.bkt, storage: storageOf(l.file)}
	if err := s.setupIngesters(l.reg); err != nil {
		db.Close()
		return nil, err
	}
	s.ing = ingest.New(db, ingest.ProfileLimits{MaxDecompressedBytes: maxDecompressed}, logger.With("component", "ingest"))
	s.ing.UseLimits(s.limits, s.refusals)
	s.ing.LimitInflight(cfg.MaxInflightBytes)
	gov := priority.New(cfg.QueryCPUShare)
	s.gov = gov
	s.ing.Prioritize(gov)
	s.scrape = scrape.NewManager(s.ing, logger, scrape.Options{})
	if err := s.applyConfig(l.file); err != nil {
		db.Close()
		return nil, err
	}
	eng := query.NewEngine(db)
	a := api.New(s.ing, eng, api.Options{MaxBodyBytes: cfg.MaxBodyBytes, Governor: gov,
		Limits: s.limits, Refusals: s.refusals, Events: db, Version: cfg.Version}, logger.With("component", "api"))
	a.Register(s.mux)
	s.events = &events.Tally{}
	otlpOpts := otlp.Options{MaxBodyBytes: cfg.MaxBodyBytes, MaxDecompressedBytes: maxDecompressed, Logger: logger.With("component", "otlp"),
		Events: cfg.Events, Tally: s.events}
	otlp.NewHandler(s.ing, otlpOpts).Register(s.mux)
	// Events are stored by the storage itself, and held to the same
	// in-flight budget and ingest rates as profiles by the ingester.
	otlp.RegisterEvents(s.mux, db, s.ing, otlpOpts)
	s.mux.Handle("POST "+jsonl.Path, jsonl.NewHandler(db, s.ing, jsonl.HandlerOptions{
		Decode: jsonl.Options{Limits: cfg.Events}, MaxBodyBytes: cfg.MaxBodyBytes, MaxDecompressedBytes: maxDecompressed,
		Tally: s.events, Logger: logger.With("component", "events"),
	}))
	// gRPC bounds a message after decompression only, so the
	// decompression limit is its limit; a message that is not compressed
	// is held to the body limit on the main port (below), not on 4317.
	// As many gzipped gRPC messages may decompress at once as the
	// in-flight budget holds at the decompression limit (4 by default).
	turns := 0 // no in-flight bound, no bound here either
	if cfg.MaxInflightBytes > 0 {
		turns = int(max(cfg.MaxInflightBytes/maxDecompressed, 1))
	}
	otlp.LimitGRPCDecompressions(turns)
	grpcOpts := []grpc.ServerOption{grpc.MaxRecvMsgSize(int(maxDecompressed)),
		grpc.ChainUnaryInterceptor(self.rec.UnaryInterceptor(), s.unaryAuth, s.refuseGRPCWrites), grpc.ChainStreamInterceptor(s.streamAuth)}
	if tlsCfg != nil {
		// For the OTLP port; on the main port the HTTP server does TLS.
		grpcOpts = append(grpcOpts, grpc.Creds(credentials.NewTLS(tlsCfg)))
	}
	s.grpc = grpc.NewServer(grpcOpts...)
	pprofileotlp.RegisterGRPCServer(s.grpc, otlp.NewGRPCServer(s.ing, otlpOpts))
	otlp.RegisterEventsGRPC(s.grpc, db, s.ing, otlpOpts)
	// connect-go bounds a message after decompression, streaming; the
	// body limit bounds it before.
	pushPath, pushHandler := push.NewHandler(s.ing, logger.With("component", "push"), push.WithMaxMessageBytes(int(maxDecompressed)))
	s.mux.Handle(pushPath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, cfg.MaxBodyBytes)
		pushHandler.ServeHTTP(w, r)
	}))
	// Pyroscope's query API, for Grafana's data source and profilecli.
	querierPath, querierHandler := querier.NewHandler(eng, db, querier.Options{Limits: a.QueryLimits},
		connect.WithReadMaxBytes(int(cfg.MaxBodyBytes)))
	querierHandler = a.Gate(querierHandler)
	s.mux.Handle(querierPath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, cfg.MaxBodyBytes)
		querierHandler.ServeHTTP(w, r)
	}))
	// Profiles Drilldown's settings, kept per tenant in the data directory.
	st, err := settings.Open(filepath.Clean(cfg.DataDir), settings.DefaultLimits, logger.With("component", "settings"))
	if err != nil {
		db.Close()
		return nil, err
	}
	settingsPath, settingsHandler := settings.NewHandler(st, connect.WithReadMaxBytes(int(cfg.MaxBodyBytes)))
	s.mux.Handle(settingsPath, settingsHandler)
	// What else Profiles Drilldown asks of a Pyroscope server.
	rulesPath, rulesHandler := settings.NewRecordingRulesHandler(connect.WithReadMaxBytes(int(cfg.MaxBodyBytes)))
	s.mux.Handle(rulesPath, rulesHandler)
	flagsPath, flagsHandler := querier.NewFeatureFlagsHandler(connect.WithReadMaxBytes(int(cfg.MaxBodyBytes)))
	s.mux.Handle(flagsPath, flagsHandler)
	legacy := a.Gate(querier.NewLegacyHandler(eng, db, querier.Options{Limits: a.QueryLimits}))
	for _, p := range querier.LegacyPaths {
		s.mux.Handle(p, legacy)
	}
	s.mux.HandleFunc("GET /ready", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ready\n"))
		// Still ready while blocks cannot be written: writes are logged
		// and kept in the heads, and taking the instance out of a load
		// balancer would only move them elsewhere. Say so to whoever looks.
		st := s.db.Stats()
		if st.Compactor && !st.LeaseHeld {
			fmt.Fprintln(w, "standing by: another compactor holds the bucket's compactor lease")
		}
		if !st.CutFailingSince.IsZero() {
			fmt.Fprintf(w, "blocks not written since %s (writes are kept in the log and the heads, and cuts retried): %s\n",
				st.CutFailingSince.UTC().Format(time.RFC3339), st.CutError)
		}
	})
	// Cuts every head into a block now; for operators and benchmarks.
	s.mux.HandleFunc("POST /-/flush", func(w http.ResponseWriter, r *http.Request) {
		if err := s.db.Flush(r.Context()); err != nil {
			http.Error(w, "flush: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Write([]byte("flushed\n"))
	})
	// Re-reads the configuration file, as SIGHUP does.
	s.mux.HandleFunc("POST /-/reload", func(w http.ResponseWriter, r *http.Request) {
		if err := s.Reload(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Write([]byte("reloaded\n"))
	})
	s.mux.HandleFunc("GET /api/v1/targets", s.serveTargets)
	s.mux.HandleFunc("GET /api/v1/auth/whoami", s.serveWhoami)
	s.mux.Handle("/", unknownProcedures(web.Handler()))
	s.metrics = newMetrics(s, l.reg)
	s.mux.Handle("GET /metrics", s.metrics.handler())
	s.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	s.mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	s.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	s.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	s.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	s.access = accessTable(pushPath, querierPath, settingsPath, cfg.AuthProtectMetrics)
	s.access[rulesPath] = needRead
	s.access[flagsPath] = needRead
	return s, nil
}

// Reload reads the configuration file and the tokens file again. The
// scrape configuration is applied (unchanged targets keep scraping,
// removed ones stop, new ones start), and the file's limits, to requests
// that arrive afterwards. On error the running configuration, limits
// included, or the tokens loaded before, stay.
func (s *Server) Reload() error {
	err := s.reloadConfig()
	if s.tokenFile != nil {
		err = errors.Join(err, s.tokenFile.Reload())
	}
	return err
}

func (s *Server) reloadConfig() error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	cfg, err := loadConfigFile(s.cfg)
	if err != nil {
		s.logger.Error("reload configuration", "file", s.cfg.ConfigFile, "err", err)
		return err
	}
	// Blocks stay where the running storage keeps them: another bucket
	// would need the blocks moved and the storage reopened, which only a
	// restart does. Taking the rest of the file and not this would leave
	// the file saying one thing and the server doing another.
	if !storageOf(cfg).Equal(s.storage) {
		err := fmt.Errorf("load %s: the storage section changed; the bucket is chosen at start-up only, restart Hearth to change it (nothing of the file was applied)", s.cfg.ConfigFile)
		s.logger.Error("reload configuration", "file", s.cfg.ConfigFile, "err", err)
		return err
	}
	return s.applyConfig(cfg)
}

// applyConfig applies a loaded configuration file: its scrape jobs and
// limits.
func (s *Server) applyConfig(cfg *scrape.Config) error {
	if _, refuse := s.cfg.takesNoWrites(); refuse && len(cfg.ScrapeConfigs) > 0 {
		err := fmt.Errorf("load %s: scrape_configs: a %s takes no writes, and scraped profiles are writes; scrape from an ingester", s.cfg.ConfigFile, s.cfg.Target)
		s.logger.Error("reload configuration", "file", s.cfg.ConfigFile, "err", err)
		return err
	}
	lim, err := cfg.Limits.Resolve(s.cfg.Limits)
	if err != nil {
		err = fmt.Errorf("load %s: %w", s.cfg.ConfigFile, err)
		s.logger.Error("reload configuration", "file", s.cfg.ConfigFile, "err", err)
		return err
	}
	if err := s.scrape.ApplyConfig(cfg); err != nil {
		err = fmt.Errorf("apply %s: %w", s.cfg.ConfigFile, err)
		s.logger.Error("reload configuration", "file", s.cfg.ConfigFile, "err", err)
		return err
	}
	s.limits.Set(lim)
	if s.cfg.ConfigFile != "" {
		s.logger.Info("configuration loaded", "file", s.cfg.ConfigFile, "jobs", len(cfg.ScrapeConfigs), "tenant_limit_overrides", len(lim.Tenants))
	}
	return nil
}

// Handler serves every route, and OTLP gRPC calls that arrive over
// HTTP/2 on the same port.
func (s *Server) Handler() http.Handler {
	// gRPC calls are authenticated by the gRPC server's interceptors,
	// as on its own port.
	grpcH, muxH := s.metrics.instrument("grpc", s.grpc), s.self.rec.HTTP(s.metrics.instrument("", s.askIngesters(s.authenticate(s.refuseWrites(s.mux)))))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") &&
			strings.HasPrefix(r.URL.Path, "/opentelemetry.") {
			grpcH.ServeHTTP(w, r)
			return
		}
		muxH.ServeHTTP(w, r)
	})
}

// Run serves on cfg.ListenAddr until ctx is done, then shuts down cleanly:
// requests in flight finish, and the log is synced and closed.
func (s *Server) Run(ctx context.Context) error {
	ln, err := s.listen()
	if err != nil {
		s.Close()
		return err
	}
	return s.Serve(ctx, ln)
}

// Start listens on cfg.ListenAddr before it opens the storage, so that
// while the write-ahead log replays, /ready answers 503 and every other
// route 503 with Retry-After instead of refusing connections: an
// orchestrator sees a live process that is not ready yet. Once the
// storage is open, opened is called with the server (to hook signals to
// it) and the server serves until ctx is done, as Run does.
func Start(ctx context.Context, cfg Config, logger *slog.Logger, opened func(*Server)) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.forTarget()
	logger, self := recordSelf(cfg, logger)
	// Before listening: a wrong file or a bucket out of reach fails the
	// start, and while the log replays, /ready is answered over TLS
	// already.
	l, err := load(ctx, cfg, logger)
	if err != nil {
		return err
	}
	tlsCfg := l.tls
	ln, err := net.Listen("tcp", cfg.ListenAddr)
	if err != nil {
		if l.bkt != nil {
			l.bkt.Close()
		}
		return fmt.Errorf("listen on %s: %w", cfg.ListenAddr, err)
	}
	gate := &startGate{}
	srv := newHTTPServer(cfg, gate, tlsCfg, logger)
	ln = limitListener(cfg, ln)
	errc := make(chan error, 2)
	go func() { errc <- serveHTTP(srv, ln) }()
	logger.Info("listening; not ready until the storage is open", "addr", ln.Addr().String(), "tls", tlsCfg != nil, "data", cfg.DataDir)
	beforeOpen()
	s, err := newServer(cfg, logger, l, self)
	if err != nil {
		srv.Close()
		return err
	}
	if ctx.Err() != nil {
		srv.Close()
		return s.Close()
	}
	if cfg.OTLPGRPCAddr != "" {
		if s.grpcLn, err = net.Listen("tcp", cfg.OTLPGRPCAddr); err != nil {
			srv.Close()
			s.Close()
			return fmt.Errorf("listen for OTLP gRPC on %s (--otlp.grpc.listen; empty turns it off): %w", cfg.OTLPGRPCAddr, err)
		}
	}
	if opened != nil {
		opened(s)
	}
	h := s.Handler()
	gate.h.Store(&h)
	return s.serve(ctx, srv, ln, errc)
}

// beforeOpen lets tests hold Start between listening and opening the
// storage, as a long replay does.
var beforeOpen = func() {}

// startGate answers for a server whose storage is still opening, then
// hands every request to the real handler.
type startGate struct {
	h atomic.Pointer[http.Handler]
}

func (g *startGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := g.h.Load(); h != nil {
		(*h).ServeHTTP(w, r)
		return
	}
	w.Header().Set("Retry-After", "5")
	http.Error(w, "not ready: opening storage and replaying the write-ahead log", http.StatusServiceUnavailable)
}

func (s *Server) listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", s.cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", s.cfg.ListenAddr, err)
	}
	if s.cfg.OTLPGRPCAddr != "" {
		if s.grpcLn, err = net.Listen("tcp", s.cfg.OTLPGRPCAddr); err != nil {
			ln.Close()
			return nil, fmt.Errorf("listen for OTLP gRPC on %s (--otlp.grpc.listen; empty turns it off): %w", s.cfg.OTLPGRPCAddr, err)
		}
	}
	return ln, nil
}

// Serve is Run on a listener the caller opened.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := newHTTPServer(s.cfg, s.Handler(), s.tls, s.logger)
	ln = limitListener(s.cfg, ln)
	errc := make(chan error, 2)
	go func() { errc <- serveHTTP(srv, ln) }()
	return s.serve(ctx, srv, ln, errc)
}

// serveHTTP serves ln with srv, over TLS when srv has a TLS
// configuration.
func serveHTTP(srv *http.Server, ln net.Listener) error {
	if srv.TLSConfig != nil {
		return srv.ServeTLS(ln, "", "") // the certificate comes from TLSConfig
	}
	return srv.Serve(ln)
}

// newHTTPServer returns the HTTP server of h, with TLS when tlsCfg is
// not nil.
func newHTTPServer(cfg Config, h http.Handler, tlsCfg *tls.Config, logger *slog.Logger) *http.Server {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: min(10*time.Second, cfg.ReadTimeout),
		ReadTimeout:       cfg.ReadTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		WriteTimeout:      cfg.WriteTimeout,
	}
	if cfg.ReadTimeout <= 0 {
		srv.ReadHeaderTimeout = 10 * time.Second
	}
	// HTTP/2 beside HTTP/1.1, for gRPC clients of the push and OTLP
	// services on the same port: negotiated by ALPN over TLS, cleartext
	// (h2c) otherwise.
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetHTTP1(true)
	if tlsCfg != nil {
		srv.Protocols.SetHTTP2(true)
		srv.TLSConfig = tlsCfg
		// Failed handshakes (a client without a certificate, a scanner)
		// are logged by the HTTP server through this.
		srv.ErrorLog = log.New(httpErrorLog{logger.With("component", "http")}, "", 0)
	} else {
		srv.Protocols.SetUnencryptedHTTP2(true)
	}
	return srv
}

func limitListener(cfg Config, ln net.Listener) net.Listener {
	if cfg.MaxConnections > 0 {
		// Past the limit, Accept waits for a connection to close (the
		// idle and read timeouts see to that) instead of taking file
		// descriptors until none is left for the log and blocks.
		ln = netutil.LimitListener(ln, cfg.MaxConnections)
	}
	return ln
}

// serve runs the background work beside srv, which already serves ln and
// reports its end on errc, until ctx is done or srv fails.
func (s *Server) serve(ctx context.Context, srv *http.Server, ln net.Listener, errc chan error) error {
	var wg sync.WaitGroup
	bg, stopBG := context.WithCancel(ctx)
	defer stopBG()
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.db.Run(bg) // cuts heads into blocks, compacts, applies retention
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		releaseMemory(bg, 10*time.Second, s.db.Appends)
	}()
	if s.discovery != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.discovery.Run(bg, s.cfg.ingestersRefresh())
		}()
	}
	if s.cfg.SelfProfileInterval > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			selfprofile.Run(bg, "hearth", s.cfg.SelfProfileInterval, func(ctx context.Context, r *ingest.Request) error {
				return s.ing.Ingest(ctx, api.DefaultTenant, r)
			}, s.logger.With("component", "selfprofile"))
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = s.scrape.Run(bg)
	}()
	if s.self.rec != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.self.rec.Run(bg, time.Second, func(ctx context.Context, evs []events.Event) error {
				return s.db.AppendEvents(ctx, api.DefaultTenant, evs)
			}, s.self.plain)
		}()
	}
	if s.tokenFile != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.tokenFile.Watch(bg, s.cfg.AuthPollInterval)
		}()
	}
	if s.grpcLn != nil {
		// The OTLP gRPC port holds file descriptors as the main one does.
		go func() { errc <- s.grpc.Serve(limitListener(s.cfg, s.grpcLn)) }()
		s.logger.Info("listening for OTLP gRPC", "addr", s.grpcLn.Addr().String(), "tls", s.tls != nil)
	}
	s.logger.Info("ready", "addr", ln.Addr().String(), "tls", s.tls != nil, "client_certificates", s.tls != nil && s.tls.ClientCAs != nil, "data", s.cfg.DataDir)
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		s.logger.Warn("shutdown", "err", err)
	}
	s.grpc.GracefulStop()
	stopBG()
	wg.Wait()
	// Cutting the heads now makes the next start fast: it has blocks to
	// open instead of a log to replay. If it fails, the log still holds
	// everything.
	if err := s.db.Flush(shutCtx); err != nil {
		s.logger.Warn("flush on shutdown", "err", err)
	}
	if err := s.closeStorage(); err != nil {
		return err
	}
	s.logger.Info("stopped")
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return nil
}

// httpErrorLog carries the HTTP server's own messages, failed TLS
// handshakes mostly, into the log: at warn level, but at debug for a
// connection closed before its handshake, which is what a TCP health
// check or a load balancer's probe does every few seconds.
type httpErrorLog struct{ logger *slog.Logger }

func (w httpErrorLog) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	level := slog.LevelWarn
	if strings.HasSuffix(msg, ": EOF") {
		level = slog.LevelDebug
	}
	w.logger.Log(context.Background(), level, msg)
	return len(p), nil
}

// Close releases the storage of a server that was never Run.
func (s *Server) Close() error {
	s.scrape.Stop()
	return s.closeStorage()
}

// closeStorage closes the storage, then the bucket it was given.
func (s *Server) closeStorage() error {
	err := s.db.Close()
	if err != nil {
		err = fmt.Errorf("close storage: %w", err)
	}
	if s.bkt != nil {
		err = errors.Join(err, s.bkt.Close())
	}
	return err
}

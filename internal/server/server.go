// Package server wires Hearth's parts into one process: storage, ingest,
// query, the HTTP API and the self-profiler.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"path/filepath"
	"sync"
	"time"

	"github.com/hearth-profiler/hearth/internal/api"
	"github.com/hearth-profiler/hearth/internal/ingest"
	"github.com/hearth-profiler/hearth/internal/query"
	"github.com/hearth-profiler/hearth/internal/selfprofile"
	"github.com/hearth-profiler/hearth/internal/storage"
	"github.com/hearth-profiler/hearth/web"
)

// Config is what a server needs to start.
type Config struct {
	ListenAddr   string
	DataDir      string
	MaxBodyBytes int64
	Limits       ingest.ProfileLimits
	WALSync      bool
	// Retention is how long profiles are kept; 0 keeps them forever.
	Retention time.Duration
	// BlockDuration is the span of data a head holds before it is cut
	// into a block.
	BlockDuration time.Duration
	// SelfProfileInterval is the window of the self-profiler; 0 turns it
	// off.
	SelfProfileInterval time.Duration
}

// DefaultConfig is the configuration of a plain `hearth server`.
func DefaultConfig() Config {
	return Config{
		ListenAddr:          ":4040",
		DataDir:             "./data",
		MaxBodyBytes:        16 << 20,
		Limits:              ingest.DefaultProfileLimits(),
		Retention:           storage.DefaultOptions().Retention,
		BlockDuration:       storage.DefaultOptions().BlockDuration,
		SelfProfileInterval: 10 * time.Second,
	}
}

// Server is a running Hearth.
type Server struct {
	cfg    Config
	logger *slog.Logger
	db     *storage.DB
	ing    *ingest.Ingester
	mux    *http.ServeMux
}

// New opens the storage (replaying its log) and builds the handlers.
func New(cfg Config, logger *slog.Logger) (*Server, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts := storage.DefaultOptions()
	opts.Decode = ingest.Replay
	opts.WALSync = cfg.WALSync
	opts.Retention = cfg.Retention
	if cfg.BlockDuration > 0 {
		opts.BlockDuration = cfg.BlockDuration
	}
	db, err := storage.Open(filepath.Clean(cfg.DataDir), logger.With("component", "storage"), opts)
	if err != nil {
		return nil, fmt.Errorf("open storage in %s: %w", cfg.DataDir, err)
	}
	s := &Server{cfg: cfg, logger: logger, db: db, mux: http.NewServeMux()}
	s.ing = ingest.New(db, cfg.Limits, logger.With("component", "ingest"))
	a := api.New(s.ing, query.NewEngine(db), api.Options{MaxBodyBytes: cfg.MaxBodyBytes}, logger.With("component", "api"))
	a.Register(s.mux)
	s.mux.HandleFunc("GET /ready", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ready\n"))
	})
	// Cuts every head into a block now; for operators and benchmarks.
	s.mux.HandleFunc("POST /-/flush", func(w http.ResponseWriter, r *http.Request) {
		if err := s.db.Flush(r.Context()); err != nil {
			http.Error(w, "flush: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Write([]byte("flushed\n"))
	})
	s.mux.Handle("/", web.Handler())
	s.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	s.mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	s.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	s.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	s.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	return s, nil
}

// Handler serves every route.
func (s *Server) Handler() http.Handler { return s.mux }

// Run serves on cfg.ListenAddr until ctx is done, then shuts down cleanly:
// requests in flight finish, and the log is synced and closed.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.ListenAddr)
	if err != nil {
		s.db.Close()
		return fmt.Errorf("listen on %s: %w", s.cfg.ListenAddr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve is Run on a listener the caller opened.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second}
	var wg sync.WaitGroup
	bg, stopBG := context.WithCancel(ctx)
	defer stopBG()
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.db.Run(bg) // cuts heads into blocks, compacts, applies retention
	}()
	if s.cfg.SelfProfileInterval > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			selfprofile.Run(bg, "hearth", s.cfg.SelfProfileInterval, func(ctx context.Context, r *ingest.Request) error {
				return s.ing.Ingest(ctx, api.DefaultTenant, r)
			}, s.logger.With("component", "selfprofile"))
		}()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.logger.Info("listening", "addr", ln.Addr().String(), "data", s.cfg.DataDir)
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
	stopBG()
	wg.Wait()
	// Cutting the heads now makes the next start fast: it has blocks to
	// open instead of a log to replay. If it fails, the log still holds
	// everything.
	if err := s.db.Flush(shutCtx); err != nil {
		s.logger.Warn("flush on shutdown", "err", err)
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close storage: %w", err)
	}
	s.logger.Info("stopped")
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return nil
}

// Close releases the storage of a server that was never Run.
func (s *Server) Close() error { return s.db.Close() }

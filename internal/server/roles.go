package server

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/hearth-profiler/hearth/internal/storage"
)

// The roles of `hearth server --target`, as in issue 14 and DESIGN.md's
// "Past one machine". Built: all, ingester, querier (asking the
// ingesters for what is still in their heads with --ingesters, see
// ingesters.go) and compactor.
const (
	// TargetAll takes writes, keeps blocks, compacts them and applies
	// retention: one server on its own bucket, as Hearth has always been.
	TargetAll = "all"
	// TargetIngester takes writes (write-ahead log and heads on local
	// disk), cuts blocks every --storage.block-duration and uploads them
	// to a bucket it shares with other ingesters; it neither compacts
	// nor expires nor deletes blocks there. It answers queries over its
	// heads and the blocks it uploaded within --ingester.keep-uploaded,
	// and answers queriers' requests for them (ingesters.Path).
	TargetIngester = "ingester"
	// TargetQuerier is stateless: it takes no writes, opens the blocks
	// of the bucket and lists it again every --querier.sync-interval,
	// and with --ingesters asks the ingesters in every query.
	TargetQuerier = "querier"
	// TargetCompactor takes no writes and holds no log or head: under a
	// lease object in the bucket, so that one compactor at a time works,
	// it merges the blocks of all the ingesters, applies each tenant's
	// retention, and deletes in two phases (a deletion mark, then the
	// block after --compactor.deletion-delay). It answers queries over
	// the blocks it holds, as of its last pass (every
	// --compactor.interval while it holds the lease), but is not meant
	// to serve them: queriers are.
	TargetCompactor = "compactor"
)

// Defaults of the compactor's flags; see storage.DefaultCompactorOptions
// for the reasons of the minimum age and the deletion delay.
const (
	// DefaultCompactorInterval is the time between a compactor's passes
	// over the bucket.
	DefaultCompactorInterval = time.Minute
	// DefaultLeaseTTL is how long a compactor's lease holds unrenewed:
	// a standby takes over within about this long of the holder's end.
	DefaultLeaseTTL = time.Minute
	// DefaultMinBlockAge is how old an ingester's block must be before
	// it is compacted; it must exceed the time an ingester keeps serving
	// an uploaded block from memory.
	DefaultMinBlockAge = 10 * time.Minute
	// DefaultDeletionDelay is how long a marked block stays before it is
	// deleted: many querier syncs (15 s) and a longest query (2 min).
	DefaultDeletionDelay = 10 * time.Minute
)

// DefaultSyncInterval is how often a querier lists the bucket for
// blocks uploaded or deleted since: a block an ingester cut is queryable
// within about this long. Thanos' store gateway re-lists every 3 minutes
// (--sync-block-duration), beside blocks cut every 2 hours; Hearth's
// ingesters are meant to cut every few minutes, so that a querier is
// not far behind them when it does not ask them (--ingesters), and 3 minutes on
// top would double that. A sync is one LIST per tenant, plus a GET of
// meta.json and the index and symbols of each new block, which costs
// little at 15 s.
const DefaultSyncInterval = 15 * time.Second

// queriersTakeNoWrites is the answer of a querier to a write, and
// compactorsTakeNoWrites a compactor's.
const (
	queriersTakeNoWrites   = "this instance is a querier (--target=querier): it serves queries over the blocks of its bucket and takes no writes; send them to an ingester"
	compactorsTakeNoWrites = "this instance is a compactor (--target=compactor): it compacts and expires the blocks of its bucket and takes no writes; send them to an ingester"
)

// takesNoWrites says whether cfg's target refuses writes, and returns its
// answer to them.
func (cfg Config) takesNoWrites() (string, bool) {
	switch cfg.Target {
	case TargetQuerier:
		return queriersTakeNoWrites, true
	case TargetCompactor:
		return compactorsTakeNoWrites, true
	}
	return "", false
}

// checkTarget says whether cfg's target is one Hearth has, and whether
// the configuration fits it.
func checkTarget(cfg Config, hasBucket bool) error {
	switch cfg.Target {
	case "", TargetAll:
		return nil
	case TargetIngester, TargetQuerier, TargetCompactor:
		if !hasBucket {
			return fmt.Errorf("--target=%s needs a bucket shared with the other instances: the storage section of --config", cfg.Target)
		}
		return nil
	}
	return fmt.Errorf("--target=%q: want all, ingester, querier or compactor", cfg.Target)
}

// forTarget turns off what a querier or a compactor cannot do: its own
// profiles and events would be writes.
func (cfg Config) forTarget() Config {
	if _, ok := cfg.takesNoWrites(); ok {
		cfg.SelfProfileInterval = 0
		cfg.SelfEvents = false
	}
	return cfg
}

// storageOptions sets what the target changes in the storage's options.
func (cfg Config) storageOptions(opts *storage.Options) {
	switch cfg.Target {
	case TargetIngester:
		// Other ingesters upload beside it, and a compactor (to come)
		// merges and expires: deleting there is not its business.
		opts.SharedBucket = true
		opts.CompactionRanges = []time.Duration{}
		opts.Retention = 0
		opts.KeepUploaded = cfg.KeepUploaded
		if opts.KeepUploaded <= 0 {
			opts.KeepUploaded = DefaultKeepUploaded
		}
	case TargetQuerier:
		opts.ReadOnly = true
		opts.SyncInterval = cfg.SyncInterval
		if opts.SyncInterval <= 0 {
			opts.SyncInterval = DefaultSyncInterval
		}
	case TargetCompactor:
		opts.ReadOnly = true
		opts.CompactInterval = orDefault(cfg.Compactor.Interval, DefaultCompactorInterval)
		opts.Compactor = &storage.CompactorOptions{
			LeaseTTL:         orDefault(cfg.Compactor.LeaseTTL, DefaultLeaseTTL),
			MinBlockAge:      cfg.Compactor.MinBlockAge,
			DeletionDelay:    cfg.Compactor.DeletionDelay,
			PartialUploadAge: cfg.Compactor.PartialUploadAge,
		}
	}
}

// CompactorConfig configures a compactor (--target=compactor).
type CompactorConfig struct {
	// Interval is the time between passes; 0 means
	// DefaultCompactorInterval.
	Interval time.Duration
	// LeaseTTL is how long the lease holds unrenewed; 0 means
	// DefaultLeaseTTL.
	LeaseTTL time.Duration
	// MinBlockAge is how old a block cut by an ingester must be to be
	// compacted; 0 compacts blocks at once.
	MinBlockAge time.Duration
	// DeletionDelay is how long a block marked for deletion stays in the
	// bucket; 0 deletes it at the next pass.
	DeletionDelay time.Duration
	// PartialUploadAge is how old a block directory without meta.json
	// must be to be deleted as an upload cut short; 0 deletes none.
	PartialUploadAge time.Duration
}

// DefaultCompactorConfig is the configuration of a compactor without
// flags.
func DefaultCompactorConfig() CompactorConfig {
	return CompactorConfig{Interval: DefaultCompactorInterval, LeaseTTL: DefaultLeaseTTL,
		MinBlockAge: DefaultMinBlockAge, DeletionDelay: DefaultDeletionDelay,
		PartialUploadAge: storage.DefaultCompactorOptions().PartialUploadAge}
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// refuseWrites answers a querier's write routes with 404 and a sentence
// saying why, as a querier of Mimir, Loki or Tempo answers the push
// routes it does not serve with 404; OTLP exporters and the Pyroscope
// SDKs take 404 as final rather than retrying it.
func (s *Server) refuseWrites(next http.Handler) http.Handler {
	msg, refuse := s.cfg.takesNoWrites()
	if !refuse {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := s.mux.Handler(r); pattern != "" && s.accessOf(r.Method, pattern) == needWrite {
			http.Error(w, msg, http.StatusNotFound)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// refuseGRPCWrites is refuseWrites for gRPC: Unimplemented, the code of a
// method a server does not serve.
func (s *Server) refuseGRPCWrites(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if msg, refuse := s.cfg.takesNoWrites(); refuse && grpcAccess[info.FullMethod] == needWrite {
		return nil, status.Error(codes.Unimplemented, msg)
	}
	return handler(ctx, req)
}

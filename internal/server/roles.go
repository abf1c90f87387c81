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
// "Past one machine". Built: all, ingester and querier, and a querier
// asking the ingesters for what is still in their heads (--ingesters,
// ingesters.go). Not built yet: the compactor (and its lease), a bucket
// index, and a local cache of blocks' indexes and symbols; so nothing
// compacts or expires blocks in a shared bucket.
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

// queriersTakeNoWrites is the answer of a querier to a write.
const queriersTakeNoWrites = "this instance is a querier (--target=querier): it serves queries over the blocks of its bucket and takes no writes; send them to an ingester"

// checkTarget says whether cfg's target is one Hearth has, and whether
// the configuration fits it.
func checkTarget(cfg Config, hasBucket bool) error {
	switch cfg.Target {
	case "", TargetAll:
		return nil
	case TargetIngester, TargetQuerier:
		if !hasBucket {
			return fmt.Errorf("--target=%s needs a bucket shared with the other instances: the storage section of --config", cfg.Target)
		}
		return nil
	}
	return fmt.Errorf("--target=%q: want all, ingester or querier", cfg.Target)
}

// forTarget turns off what a querier cannot do: its own profiles and
// events would be writes.
func (cfg Config) forTarget() Config {
	if cfg.Target == TargetQuerier {
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
	}
}

// refuseWrites answers a querier's write routes with 404 and a sentence
// saying why, as a querier of Mimir, Loki or Tempo answers the push
// routes it does not serve with 404; OTLP exporters and the Pyroscope
// SDKs take 404 as final rather than retrying it.
func (s *Server) refuseWrites(next http.Handler) http.Handler {
	if s.cfg.Target != TargetQuerier {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := s.mux.Handler(r); pattern != "" && s.accessOf(r.Method, pattern) == needWrite {
			http.Error(w, queriersTakeNoWrites, http.StatusNotFound)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// refuseGRPCWrites is refuseWrites for gRPC: Unimplemented, the code of a
// method a server does not serve.
func (s *Server) refuseGRPCWrites(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if s.cfg.Target == TargetQuerier && grpcAccess[info.FullMethod] == needWrite {
		return nil, status.Error(codes.Unimplemented, queriersTakeNoWrites)
	}
	return handler(ctx, req)
}

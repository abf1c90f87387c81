package server

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hearth-profiler/hearth/internal/auth"
	"github.com/hearth-profiler/hearth/internal/ingesters"
	"github.com/hearth-profiler/hearth/internal/storage"
	"github.com/hearth-profiler/hearth/internal/tenant"
)

// A querier with --ingesters asks every ingester, in each query, for what
// of the tenant it holds that the querier may not see in the bucket yet,
// and de-duplicates it against the bucket's blocks (storage.HeadSnapshot
// says how). An ingester serves that at ingesters.Path, with the access
// of a query.

// DefaultIngestersRefresh is how often a querier resolves the dns+
// entries of --ingesters: as often as it lists the bucket, so that a new
// ingester is asked within about the time its first block would show.
const DefaultIngestersRefresh = 15 * time.Second

// DefaultIngesterTimeout bounds one ingester's answer to a querier. An
// ingester writes its heads as blocks in memory (tens of milliseconds for
// a head of thousands of profiles, see BenchmarkHeadSnapshot) and sends
// them; 10 s leaves room for a big head on a loaded ingester, and fails
// a query on an ingester that hangs well before the query's own timeout.
const DefaultIngesterTimeout = 10 * time.Second

// DefaultIngesterMaxBytes bounds one ingester's answer, held in the
// querier's memory for the query: a head is cut at 128 MiB of memory by
// default, and its block is smaller than that.
const DefaultIngesterMaxBytes = 512 << 20

// DefaultKeepUploaded is how long an ingester keeps a block it uploaded
// in its view: longer than DefaultSyncInterval, so that a querier that
// syncs every 15 s has listed a block before the ingester stops counting
// it in its answers, with room for a slow or failed sync; and shorter
// than the compactor's minimum block age (10 minutes), so that no block
// an ingester still counts is merged into one it does not name.
const DefaultKeepUploaded = time.Minute

func (cfg Config) ingestersRefresh() time.Duration {
	if cfg.IngestersRefresh > 0 {
		return cfg.IngestersRefresh
	}
	return DefaultIngestersRefresh
}

// setupIngesters makes a querier's client of its ingesters, and
// registers an ingester's route for queriers.
func (s *Server) setupIngesters(reg prometheus.Registerer) error {
	if s.cfg.Target == TargetIngester {
		s.mux.HandleFunc("GET "+ingesters.Path, s.headSnapshot)
		s.mux.HandleFunc("GET "+ingesters.TenantsPath, s.ingesterTenants)
	}
	if s.cfg.Ingesters == "" {
		return nil
	}
	if s.cfg.Target != TargetQuerier {
		return fmt.Errorf("--ingesters is for --target=querier, not %q", cmp.Or(s.cfg.Target, TargetAll))
	}
	d, err := ingesters.Parse(s.cfg.Ingesters, nil, s.logger.With("component", "ingesters"))
	if err != nil {
		return err
	}
	if d.Empty() {
		return nil
	}
	// A name that does not resolve yet (ingesters still starting) does
	// not stop the querier: its queries fail, naming it, until it does.
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ingestersRefresh())
	defer cancel()
	if err := d.Refresh(ctx); err != nil {
		s.logger.Warn("resolve ingesters; queries fail until they resolve", "err", err)
	}
	timeout := s.cfg.IngesterTimeout
	if timeout <= 0 {
		timeout = DefaultIngesterTimeout
	}
	maxBytes := s.cfg.IngesterMaxBytes
	if maxBytes <= 0 {
		maxBytes = DefaultIngesterMaxBytes
	}
	s.discovery = d
	s.ingesters = ingesters.NewClient(d, ingesters.Options{Timeout: timeout, MaxBytes: maxBytes, Registerer: reg})
	return nil
}

// askIngesters makes the storage's queries of a request ask the
// ingesters, with the request's Authorization header, which is read here
// because authenticate takes it off the request. Nothing is asked of a
// request that reads no storage.
func (s *Server) askIngesters(next http.Handler) http.Handler {
	if s.ingesters == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		authz := slices.Clone(r.Header.Values("Authorization"))
		ctx, release := storage.WithIngesters(r.Context(), func(ctx context.Context, tenantID string, start, end int64) ([]*storage.HeadSnapshot, error) {
			return s.ingesters.Fetch(ctx, authz, tenantID, start, end)
		})
		ctx = context.WithValue(ctx, authorizationKey{}, authz)
		defer release()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// headSnapshot answers a querier with the tenant's storage.HeadSnapshot
// over ?start=&end= (unix nanoseconds), as a tar stream.
func (s *Server) headSnapshot(w http.ResponseWriter, r *http.Request) {
	ten, err := tenant.FromHTTP(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	q := r.URL.Query()
	start, err1 := strconv.ParseInt(q.Get("start"), 10, 64)
	end, err2 := strconv.ParseInt(q.Get("end"), 10, 64)
	if err1 != nil || err2 != nil {
		http.Error(w, "start and end must be unix nanoseconds", http.StatusBadRequest)
		return
	}
	snap, err := s.db.HeadSnapshot(r.Context(), ten, start, end)
	if err != nil {
		s.logger.Error("head snapshot for a querier", "tenant", ten, "err", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/x-tar")
	if _, err := snap.WriteTo(w); err != nil {
		s.logger.Warn("send head snapshot to a querier", "tenant", ten, "err", err)
	}
}

// authorizationKey holds, in a querier's request context, the request's
// Authorization header, for the requests to the ingesters.
type authorizationKey struct{}

// tenants returns the tenants the server holds data of and, on a querier
// with --ingesters, those of the ingesters' heads. It is a listing (the
// UI's choice of tenant): an ingester that does not answer is logged and
// left out, rather than failing it.
func (s *Server) tenants(r *http.Request) []string {
	out := s.db.Tenants()
	if s.ingesters == nil {
		return out
	}
	authz, _ := r.Context().Value(authorizationKey{}).([]string)
	more, err := s.ingesters.Tenants(r.Context(), authz)
	if err != nil {
		s.logger.Warn("list the ingesters' tenants; listing the bucket's", "err", err)
	}
	out = append(out, more...)
	slices.Sort(out)
	return slices.Compact(out)
}

// ingesterTenants answers a querier with the tenants this ingester holds
// data of, to a caller that may read every tenant.
func (s *Server) ingesterTenants(w http.ResponseWriter, r *http.Request) {
	if id, _ := auth.FromContext(r.Context()); id != nil && id.Token != nil && !id.Token.AnyTenant() {
		http.Error(w, "listing the tenants needs a token of every tenant", http.StatusForbidden)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(s.db.Tenants())
}

package api

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hearth-profiler/hearth/internal/limits"
)

// queryQueueWait is how long a query over its tenant's concurrency waits
// for a turn before it is refused: long enough to absorb the burst of
// queries that one page of the UI sends, short enough that a client told
// to retry does so while its user still waits.
const queryQueueWait = 5 * time.Second

// queryRetryAfter is what a query refused for concurrency is told to wait.
const queryRetryAfter = time.Second

// TooManyQueriesError refuses a query because its tenant already runs its
// limit of queries (limits.QueryConcurrency) and none finished within
// queryQueueWait. The client may send it again: HTTP 429 with Retry-After.
type TooManyQueriesError struct {
	Tenant string
	Limit  int
	Waited time.Duration
}

func (e *TooManyQueriesError) Error() string {
	return fmt.Sprintf("tenant %q already runs %d queries at once (%s, %s), and none finished within %s; retry later",
		e.Tenant, e.Limit, limits.QueryConcurrency, limits.Flag(limits.QueryConcurrency), e.Waited)
}

// queryGate lets at most a tenant's limit of its queries run at once;
// the others wait their turn, first come first served, for a while.
type queryGate struct {
	mu      sync.Mutex
	tenants map[string]*tenantQueries // only tenants with queries running or waiting
}

type tenantQueries struct {
	running int
	waiting []chan struct{} // closed when the waiter is let in
}

// acquire waits until tenant runs fewer than max queries (max <= 0: no
// limit), at most wait, and returns the function that ends the query's
// turn. It fails with a *TooManyQueriesError after wait, or ctx's error.
func (g *queryGate) acquire(ctx context.Context, tenant string, max int, wait time.Duration) (release func(), err error) {
	if max <= 0 {
		return func() {}, nil
	}
	g.mu.Lock()
	if g.tenants == nil {
		g.tenants = make(map[string]*tenantQueries)
	}
	tq := g.tenants[tenant]
	if tq == nil {
		tq = &tenantQueries{}
		g.tenants[tenant] = tq
	}
	release = func() { g.release(tenant, max) }
	if tq.running < max && len(tq.waiting) == 0 {
		tq.running++
		g.mu.Unlock()
		return release, nil
	}
	ch := make(chan struct{})
	tq.waiting = append(tq.waiting, ch)
	g.mu.Unlock()

	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-ch:
		return release, nil
	case <-timer.C:
		err = &TooManyQueriesError{Tenant: tenant, Limit: max, Waited: wait}
	case <-ctx.Done():
		err = ctx.Err()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if i := slices.Index(tq.waiting, ch); i >= 0 {
		tq.waiting = slices.Delete(tq.waiting, i, i+1)
		g.forget(tenant, tq)
		return nil, err
	}
	// Let in as the wait ended: take the turn, since a release counted
	// it as running.
	return release, nil
}

// release ends one query's turn and lets the first waiter in while the
// tenant runs fewer than max; max is the limit the query was let in
// under, so that a reload changes the turns of later queries only.
func (g *queryGate) release(tenant string, max int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	tq := g.tenants[tenant]
	tq.running--
	for len(tq.waiting) > 0 && tq.running < max {
		close(tq.waiting[0])
		tq.waiting = tq.waiting[1:]
		tq.running++
	}
	g.forget(tenant, tq)
}

// forget drops a tenant that runs and waits for nothing. The caller holds
// g.mu.
func (g *queryGate) forget(tenant string, tq *tenantQueries) {
	if tq.running == 0 && len(tq.waiting) == 0 {
		delete(g.tenants, tenant)
	}
}

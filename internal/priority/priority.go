// Package priority lets foreground work (taking in profiles) have the CPU
// ahead of background work (answering queries).
//
// Writes are what a server cannot make up for later: a client whose
// profile is refused or delayed drops it, while a query that takes a
// little longer still answers. So while writes arrive, the queries of a
// Governor share a budget of CPU time, a fraction of the machine, and wait
// when they have spent it; when no write has arrived for a short while,
// they run at full speed.
//
// Queries account for their work by calling Step in their loops every few
// thousand samples. Work is measured in wall time between steps, which
// counts time a query waited for the CPU as work too; under contention it
// errs towards giving writes more, never less.
package priority

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Governor holds the queries that carry it (With) to a share of the CPU
// while foreground work is busy.
type Governor struct {
	rate  float64       // CPU-seconds of query work allowed per second
	burst time.Duration // most budget saved up
	idle  time.Duration // foreground is busy if it marked within this
	now   func() time.Time

	lastMark atomic.Int64 // unix nanoseconds of the last Mark
	waits    atomic.Int64 // total nanoseconds queries waited

	mu     sync.Mutex
	tokens time.Duration // budget left; negative is debt
	filled time.Time     // when tokens were last topped up
}

// New returns a governor that allows queries share of the machine's CPUs
// (0 < share <= 1, of GOMAXPROCS) while foreground work is busy. A share
// of 1 or more holds nothing back.
func New(share float64) *Governor {
	g := &Governor{
		rate:  share * float64(runtime.GOMAXPROCS(0)),
		burst: 50 * time.Millisecond,
		idle:  250 * time.Millisecond,
		now:   time.Now,
	}
	g.tokens = g.burst
	return g
}

// Mark says that foreground work arrived now.
func (g *Governor) Mark() {
	if g != nil {
		g.lastMark.Store(g.now().UnixNano())
	}
}

// Waited returns the total time queries waited for their share.
func (g *Governor) Waited() time.Duration {
	if g == nil {
		return 0
	}
	return time.Duration(g.waits.Load())
}

func (g *Governor) busy(now time.Time) bool {
	return now.UnixNano()-g.lastMark.Load() < int64(g.idle)
}

// charge takes work from the budget and returns how long the caller must
// wait before it goes on.
func (g *Governor) charge(work time.Duration, now time.Time) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.filled.IsZero() {
		g.filled = now
	}
	if el := now.Sub(g.filled); el > 0 {
		g.tokens += time.Duration(float64(el) * g.rate)
		g.filled = now
	}
	if !g.busy(now) {
		// Nothing to make room for: start the next busy spell with a
		// full budget rather than debts from an idle one.
		g.tokens = g.burst
		return 0
	}
	g.tokens = min(g.tokens, g.burst) - work
	if g.tokens >= 0 {
		return 0
	}
	return time.Duration(float64(-g.tokens) / g.rate)
}

type ctxKey struct{}

// worker is one query's state: when it last accounted for its work.
type worker struct {
	g    *Governor
	last atomic.Int64 // unix nanoseconds
}

// With returns ctx carrying g for the steps of one query. A nil or
// unlimited g returns ctx as it is.
func With(ctx context.Context, g *Governor) context.Context {
	if g == nil || g.rate >= float64(runtime.GOMAXPROCS(0)) || g.rate <= 0 {
		return ctx
	}
	w := &worker{g: g}
	w.last.Store(g.now().UnixNano())
	return context.WithValue(ctx, ctxKey{}, w)
}

// Step accounts for the work the query of ctx did since its last step and
// waits if its governor's budget is spent. It returns ctx's error, so that
// loops check for cancellation in the same call. Steps of one query may
// come from several goroutines; work they do in parallel is then counted
// once.
func Step(ctx context.Context) error {
	w, _ := ctx.Value(ctxKey{}).(*worker)
	if w == nil {
		return ctx.Err()
	}
	now := w.g.now()
	work := time.Duration(now.UnixNano() - w.last.Swap(now.UnixNano()))
	wait := w.g.charge(max(work, 0), now)
	if wait <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
	}
	w.g.waits.Add(int64(wait))
	w.last.Store(w.g.now().UnixNano())
	return nil
}

// Meter calls Step once per every units of work its query adds, so that
// loops can count samples without a clock read for each.
type Meter struct {
	ctx   context.Context
	every int
	left  int
}

// NewMeter returns a meter for the query of ctx.
func NewMeter(ctx context.Context, every int) *Meter {
	return &Meter{ctx: ctx, every: every, left: every}
}

// Add counts n units of work and steps when a period is full; it returns
// what Step returns, or nil between steps.
func (m *Meter) Add(n int) error {
	m.left -= n
	if m.left > 0 {
		return nil
	}
	m.left = m.every
	return Step(m.ctx)
}

package query

import (
	"fmt"
	"sync"

	"github.com/hearth-profiler/hearth/internal/labels"
	"github.com/hearth-profiler/hearth/internal/limits"
)

// Limits bound what one query reads; a zero field bounds nothing.
type Limits struct {
	// MaxSeries is the most distinct series the query may read, over the
	// head and every block (a series in several counts once).
	MaxSeries int
	// MaxSamples is the most sample rows it may read (for a time series
	// without stack or sample filters, which reads each profile's total,
	// one per profile).
	MaxSamples int64
}

// LimitError is a query stopped by one of its limits, before it read past
// it. Narrowing the selector or the time range, or raising the limit,
// lets it run; sending it again as it is does not.
type LimitError struct {
	// Limit names the limit: limits.QueryMaxSeries or
	// limits.QueryMaxSamples.
	Limit string
	// Max is the limit, Reached what the query had asked for when it was
	// stopped: at least Max+1.
	Max, Reached int64
}

func (e *LimitError) Error() string {
	what := "series"
	if e.Limit == limits.QueryMaxSamples {
		what = "sample rows"
	}
	return fmt.Sprintf("the query reads more than %d %s (%s, %s): it was stopped at %d; narrow the selector or the time range",
		e.Max, what, e.Limit, limits.Flag(e.Limit), e.Reached)
}

// budget counts what one query reads, and stops it at its limits. Selects
// call scan (storage.SelectParams.Scan) before they read a series.
type budget struct {
	lim Limits

	mu   sync.Mutex
	seen map[uint64]struct{} // series read, by label hash
	rows int64
}

// newBudget returns a budget of lim, nil when lim bounds nothing.
func newBudget(lim Limits) *budget {
	if lim.MaxSeries <= 0 && lim.MaxSamples <= 0 {
		return nil
	}
	return &budget{lim: lim, seen: map[uint64]struct{}{}}
}

// scan counts a series and the rows about to be read of it.
func (b *budget) scan(lbls labels.Labels, rows int64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.lim.MaxSeries > 0 {
		h := lbls.Hash()
		if _, ok := b.seen[h]; !ok {
			if len(b.seen) >= b.lim.MaxSeries {
				return &LimitError{Limit: limits.QueryMaxSeries, Max: int64(b.lim.MaxSeries), Reached: int64(len(b.seen)) + 1}
			}
			b.seen[h] = struct{}{}
		}
	}
	b.rows += rows
	if b.lim.MaxSamples > 0 && b.rows > b.lim.MaxSamples {
		return &LimitError{Limit: limits.QueryMaxSamples, Max: b.lim.MaxSamples, Reached: b.rows}
	}
	return nil
}

// checkSeries refuses a list of n series over the series limit, for calls
// that list series rather than read their samples.
func (lim Limits) checkSeries(n int) error {
	if lim.MaxSeries > 0 && n > lim.MaxSeries {
		return &LimitError{Limit: limits.QueryMaxSeries, Max: int64(lim.MaxSeries), Reached: int64(n)}
	}
	return nil
}

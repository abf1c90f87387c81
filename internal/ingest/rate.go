package ingest

import (
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/hearth-profiler/hearth/internal/limits"
)

// RateLimitedError says that a tenant sends faster than its ingest rate
// (limits.IngestRateBytes): the request was not stored, and may be sent
// again after RetryAfter, when the tenant's bucket holds enough. Every way
// in answers it as "too many requests" (HTTP 429 with Retry-After, gRPC
// and Connect resource exhausted).
type RateLimitedError struct {
	Tenant string
	// Bytes is what the request would have taken from the bucket; Rate
	// and Burst are the tenant's limits.
	Bytes, Rate, Burst int64
	// RetryAfter is when the bucket will hold Bytes (or, for a request
	// larger than the burst, be full), if nothing else is sent meanwhile.
	RetryAfter time.Duration
}

func (e *RateLimitedError) Error() string {
	return fmt.Sprintf("tenant %q is over its ingest rate of %d bytes/s with bursts of %d bytes (%s, %s): a request of %d bytes is refused; retry in %s",
		e.Tenant, e.Rate, e.Burst, limits.IngestRateBytes, limits.Flag(limits.IngestRateBytes), e.Bytes, e.RetryAfter.Round(time.Millisecond))
}

// RetryAfterSeconds is d as an HTTP Retry-After value: whole seconds,
// rounded up, at least 1.
func RetryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// AdmitBytes takes n bytes of a request of tenant from its ingest rate
// bucket, or refuses the request with a *RateLimitedError when the bucket
// holds too few; a refused request takes nothing. n is the request's body
// as the way in received it (before decompression, or the decoded message
// where the protocol decompresses it first). A request larger than the
// burst passes only when the bucket is full, and empties it. Ways in call
// it before decoding; scrapes and self-profiling, whose pace Hearth
// sets, do not.
func (ig *Ingester) AdmitBytes(tenant string, n int64) error {
	l := ig.tenants.For(tenant)
	wait, ok := ig.rates.admit(tenant, l.IngestRateBytes, l.IngestBurstBytes, n, ig.now())
	if ok {
		return nil
	}
	ig.refusals.Add(tenant, limits.IngestRateBytes)
	return &RateLimitedError{Tenant: tenant, Bytes: n, Rate: l.IngestRateBytes, Burst: l.IngestBurstBytes, RetryAfter: wait}
}

// tenantRates are the token buckets of the tenants with an ingest rate.
type tenantRates struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
}

// sweepAbove is the number of buckets past which full ones, which are
// the same as new ones, are forgotten: tenant IDs come from clients.
const sweepAbove = 1024

// admit takes n tokens from tenant's bucket of the given rate and burst,
// or says how long until it could; a rate <= 0 admits everything.
func (tr *tenantRates) admit(tenant string, perSecond, burst, n int64, now time.Time) (time.Duration, bool) {
	if perSecond <= 0 {
		return 0, true
	}
	tr.mu.Lock()
	defer tr.mu.Unlock()
	lim := tr.m[tenant]
	switch {
	case lim == nil:
		if tr.m == nil {
			tr.m = make(map[string]*rate.Limiter)
		}
		if len(tr.m) >= sweepAbove {
			for id, l := range tr.m {
				if l.TokensAt(now) >= float64(l.Burst()) {
					delete(tr.m, id)
				}
			}
		}
		lim = rate.NewLimiter(rate.Limit(perSecond), int(burst))
		tr.m[tenant] = lim
	default:
		// A reload may have changed the limits; the tokens stay.
		if lim.Limit() != rate.Limit(perSecond) {
			lim.SetLimitAt(now, rate.Limit(perSecond))
		}
		if lim.Burst() != int(burst) {
			lim.SetBurstAt(now, int(burst))
		}
	}
	take := int(min(n, burst))
	r := lim.ReserveN(now, take)
	if !r.OK() {
		return time.Duration(float64(take) / float64(perSecond) * float64(time.Second)), false
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d, false
	}
	return 0, true
}

package ingest

import (
	"context"
	"errors"
	"sync"
	"time"
)

// RetryAfter is how long a client told to retry (a storage failure, or a
// server busy with other requests) is asked to wait: long enough for a
// full disk or a slow log device to catch up, short enough that an
// exporter's queue does not overflow meanwhile.
const RetryAfter = 5 * time.Second

// StorageError says that storage could not take a request (the log could
// not be written: a full disk, a failed device, a closed log). Nothing of
// the request was stored, and the client may send it again later; every
// way in answers it as "unavailable" (HTTP 503 with Retry-After, Connect
// unavailable, gRPC Unavailable).
type StorageError struct{ Err error }

func (e *StorageError) Error() string { return "store profiles: " + e.Err.Error() }
func (e *StorageError) Unwrap() error { return e.Err }

// failureLogInterval bounds how often storage failures are logged: a full
// disk fails every request, and one line per request would bury the logs
// (and fill the disk that logs go to).
const failureLogInterval = 10 * time.Second

// logLimiter lets one line through per interval and counts the others.
type logLimiter struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// allow says whether to log now, and how many lines were held back since
// the last one logged.
func (l *logLimiter) allow(now time.Time, every time.Duration) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < every {
		l.suppressed++
		return false, 0
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	return true, n
}

// storageFailed turns an error of storage.DB.Append into what the ingest
// path returns: a context's end as it is (the client went away or its
// deadline passed, nothing to log), anything else a *StorageError, logged
// at most once per failureLogInterval.
func (ig *Ingester) storageFailed(tenant string, n int, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if ok, suppressed := ig.failureLog.allow(ig.now(), failureLogInterval); ok {
		ig.logger.Error("profiles not stored: storage failed; clients are told to retry",
			"tenant", tenant, "profiles", n, "err", err, "suppressed_since_last", suppressed)
	}
	return &StorageError{Err: err}
}

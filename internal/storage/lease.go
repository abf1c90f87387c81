package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/hearth-profiler/hearth/internal/storage/bucket"
)

// The compactor's lease: one object at the bucket's root, outside every
// tenant's directory (a listing of tenants takes directories only), which
// says which compactor may change the bucket. It is taken and renewed
// with conditional writes, so that of two compactors racing for it one
// wins: created with If-None-Match: *, renewed, taken over or released
// with If-Match on the ETag its writer read.
//
// Expiry goes by the clock of the one who waits, not by the time written
// in the object: a standby takes the lease over once the object has not
// changed for LeaseTTL by its own clock, so clocks that disagree do not
// hand out the lease twice. The holder renews every third of the TTL and
// stops its work at once when a renewal fails, well before a standby
// would take over.

// leaseObject is the name of the lease object.
const leaseObject = "compactor-lease.json"

// leaseRecord is the content of the lease object. Expires is for people
// reading it; compactors go by their own clocks (see above).
type leaseRecord struct {
	// Holder names the compactor that holds the lease; "" when it was
	// released.
	Holder  string    `json:"holder"`
	Renewed time.Time `json:"renewed"`
	Expires time.Time `json:"expires"`
}

// errLeaseLost is the error of a renewal that found the lease taken by
// another compactor.
var errLeaseLost = errors.New("the compactor lease was taken by another compactor")

// lease is one compactor's side of the lease.
type lease struct {
	bkt    bucket.ConditionalUploader
	holder string
	ttl    time.Duration
	now    func() time.Time

	// etag is that of the object as this holder last wrote it; "" when
	// it does not hold the lease.
	etag string
	// seenETag is the ETag of the object as last read, and seenAt when
	// it was first read with it, by this compactor's clock.
	seenETag string
	seenAt   time.Time
	// other is the holder named in the object last read, for logs.
	other string
}

// defaultHolder names a compactor in its lease: its host and a random
// suffix, so that two on one host differ.
func defaultHolder() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "compactor"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}

func (l *lease) record(holder string) []byte {
	now := l.now()
	raw, _ := json.Marshal(leaseRecord{Holder: holder, Renewed: now.UTC(), Expires: now.Add(l.ttl).UTC()})
	return raw
}

// acquire takes the lease when nobody holds it, its holder released it,
// it is this holder's, or it has not been renewed for the TTL, and says
// whether this compactor holds it.
func (l *lease) acquire(ctx context.Context) (bool, error) {
	l.etag = ""
	data, etag, err := l.bkt.GetWithETag(ctx, leaseObject)
	var newETag string
	switch {
	case l.bkt.IsObjNotFoundErr(err):
		newETag, err = l.bkt.UploadIfAbsent(ctx, leaseObject, l.record(l.holder))
	case err != nil:
		return false, fmt.Errorf("read compactor lease: %w", err)
	default:
		now := l.now()
		if etag != l.seenETag {
			l.seenETag, l.seenAt = etag, now
		}
		var cur leaseRecord
		// An object that does not decode is taken over like an
		// expired one, after the TTL.
		jerr := json.Unmarshal(data, &cur)
		l.other = cur.Holder
		free := jerr == nil && (cur.Holder == "" || cur.Holder == l.holder)
		if !free && now.Sub(l.seenAt) < l.ttl {
			return false, nil
		}
		newETag, err = l.bkt.UploadIfMatch(ctx, leaseObject, l.record(l.holder), etag)
	}
	if errors.Is(err, bucket.ErrPreconditionFailed) {
		return false, nil // another compactor was first
	}
	if err != nil {
		return false, fmt.Errorf("take compactor lease: %w", err)
	}
	l.etag = newETag
	return true, nil
}

// renew extends the lease; an error means that this compactor no longer
// knows that it holds it (errLeaseLost when another took it).
func (l *lease) renew(ctx context.Context) error {
	if l.etag == "" {
		return errLeaseLost
	}
	etag, err := l.bkt.UploadIfMatch(ctx, leaseObject, l.record(l.holder), l.etag)
	if errors.Is(err, bucket.ErrPreconditionFailed) {
		l.etag = ""
		return errLeaseLost
	}
	if err != nil {
		return fmt.Errorf("renew compactor lease: %w", err)
	}
	l.etag = etag
	return nil
}

// release gives the lease up, so that a standby takes it at once rather
// than after the TTL.
func (l *lease) release(ctx context.Context) error {
	if l.etag == "" {
		return nil
	}
	_, err := l.bkt.UploadIfMatch(ctx, leaseObject, l.record(""), l.etag)
	l.etag = ""
	if errors.Is(err, bucket.ErrPreconditionFailed) {
		// Taken by another, or renewed by this holder in a write whose
		// answer was lost (its context ended as the process stopped):
		// the object then still names this holder, under an ETag it
		// never saw.
		data, etag, gerr := l.bkt.GetWithETag(ctx, leaseObject)
		var cur leaseRecord
		if gerr != nil || json.Unmarshal(data, &cur) != nil || cur.Holder != l.holder {
			return nil
		}
		_, err = l.bkt.UploadIfMatch(ctx, leaseObject, l.record(""), etag)
		if errors.Is(err, bucket.ErrPreconditionFailed) {
			return nil
		}
	}
	return err
}

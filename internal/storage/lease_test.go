package storage

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hearth-profiler/hearth/internal/storage/bucket"
)

// TestLease plays two compactors' sides of the lease on one clock that
// the test moves: the first takes it; the second waits until the object
// has not changed for the TTL by its own clock, whatever the expiry
// written in it, then takes it over, and the first's renewal finds it
// lost; a released lease is taken at once; an object that does not
// decode is taken over like an expired one.
func TestLease(t *testing.T) {
	ctx := context.Background()
	d, err := bucket.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	clock := func() time.Time { return now }
	const ttl = time.Minute
	a := &lease{bkt: d, holder: "a", ttl: ttl, now: clock}
	b := &lease{bkt: d, holder: "b", ttl: ttl, now: clock}
	must := func(what string, got bool, err error, want bool) {
		t.Helper()
		if err != nil || got != want {
			t.Fatalf("%s: held %v (%v), want %v", what, got, err, want)
		}
	}
	ok, err := a.acquire(ctx)
	must("a takes the free lease", ok, err, true)
	ok, err = b.acquire(ctx)
	must("b, while a holds it", ok, err, false)
	now = now.Add(ttl / 3)
	if err := a.renew(ctx); err != nil {
		t.Fatal(err)
	}
	// a renewed: b's wait starts again from when it saw the new object.
	now = now.Add(ttl / 3)
	ok, err = b.acquire(ctx)
	must("b, a third of the TTL after a renewal", ok, err, false)
	now = now.Add(ttl - time.Second)
	ok, err = b.acquire(ctx)
	must("b, just short of the TTL since it saw the object change", ok, err, false)
	now = now.Add(2 * time.Second)
	ok, err = b.acquire(ctx)
	must("b, past the TTL without a renewal", ok, err, true)
	if err := a.renew(ctx); !errors.Is(err, errLeaseLost) {
		t.Fatalf("a's renewal after b took over: %v, want errLeaseLost", err)
	}
	ok, err = a.acquire(ctx)
	must("a, right after b took over", ok, err, false)

	if err := b.release(ctx); err != nil {
		t.Fatal(err)
	}
	ok, err = a.acquire(ctx)
	must("a, once b released it", ok, err, true)

	if err := d.Upload(ctx, leaseObject, strings.NewReader("{not json")); err != nil {
		t.Fatal(err)
	}
	ok, err = b.acquire(ctx)
	must("b, a damaged object just seen", ok, err, false)
	now = now.Add(ttl + time.Second)
	ok, err = b.acquire(ctx)
	must("b, a damaged object unchanged for the TTL", ok, err, true)
}

// answerLost stores a conditional write and then reports the error of a
// caller whose context ended before the answer came.
type answerLost struct{ bucket.ConditionalUploader }

func (a answerLost) UploadIfMatch(ctx context.Context, name string, data []byte, etag string) (string, error) {
	if _, err := a.ConditionalUploader.UploadIfMatch(ctx, name, data, etag); err != nil {
		return "", err
	}
	return "", context.Canceled
}

// TestLeaseReleaseAfterLostAnswer: a holder whose last renewal was stored
// but answered too late (it was stopping) still releases the lease, and
// a holder that lost the lease to another does not release that one's.
func TestLeaseReleaseAfterLostAnswer(t *testing.T) {
	ctx := context.Background()
	d, err := bucket.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	clock := func() time.Time { return now }
	a := &lease{bkt: d, holder: "a", ttl: time.Minute, now: clock}
	if ok, err := a.acquire(ctx); !ok || err != nil {
		t.Fatalf("a takes the free lease: %v, %v", ok, err)
	}
	a.bkt = answerLost{d}
	now = now.Add(time.Second)
	if err := a.renew(ctx); err == nil {
		t.Fatal("a renewal whose answer was lost succeeded")
	}
	a.bkt = d
	if err := a.release(ctx); err != nil {
		t.Fatal(err)
	}
	holder := func() string {
		t.Helper()
		data, _, err := d.GetWithETag(ctx, leaseObject)
		if err != nil {
			t.Fatal(err)
		}
		var rec leaseRecord
		if err := json.Unmarshal(data, &rec); err != nil {
			t.Fatal(err)
		}
		return rec.Holder
	}
	if h := holder(); h != "" {
		t.Fatalf("lease held by %q after its holder released it, want released", h)
	}

	b := &lease{bkt: d, holder: "b", ttl: time.Minute, now: clock}
	if ok, err := a.acquire(ctx); !ok || err != nil {
		t.Fatalf("a takes the released lease: %v, %v", ok, err)
	}
	stale := a.etag
	now = now.Add(2 * time.Minute)
	b.acquire(ctx) // sees the object
	now = now.Add(2 * time.Minute)
	if ok, err := b.acquire(ctx); !ok || err != nil {
		t.Fatalf("b takes over the unrenewed lease: %v, %v", ok, err)
	}
	a.etag = stale
	if err := a.release(ctx); err != nil {
		t.Fatal(err)
	}
	if h := holder(); h != "b" {
		t.Fatalf("lease held by %q after a, which had lost it, released it; want b's", h)
	}
}

package storage

import (
	"context"
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

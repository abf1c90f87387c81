package bucket

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/thanos-io/objstore"
)

// recordingBucket is objstore's in-memory bucket that records the calls
// made to it, and fails them with err when err is set.
type recordingBucket struct {
	*objstore.InMemBucket

	mu     sync.Mutex
	ranges []string // GetRange calls: "name off+length"
	sizes  []int64  // the length Upload could tell of its reader, -1 if none
	err    error
}

func (b *recordingBucket) fail() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

func (b *recordingBucket) GetRange(ctx context.Context, name string, off, length int64) (io.ReadCloser, error) {
	b.mu.Lock()
	b.ranges = append(b.ranges, fmt.Sprintf("%s %d+%d", name, off, length))
	b.mu.Unlock()
	if err := b.fail(); err != nil {
		return nil, err
	}
	return b.InMemBucket.GetRange(ctx, name, off, length)
}

func (b *recordingBucket) Upload(ctx context.Context, name string, r io.Reader, opts ...objstore.ObjectUploadOption) error {
	size, err := objstore.TryToGetSize(r)
	if err != nil {
		size = -1
	}
	b.mu.Lock()
	b.sizes = append(b.sizes, size)
	b.mu.Unlock()
	if err := b.fail(); err != nil {
		return err
	}
	return b.InMemBucket.Upload(ctx, name, r, opts...)
}

func (b *recordingBucket) Iter(ctx context.Context, dir string, f func(string) error, opts ...objstore.IterOption) error {
	if err := b.fail(); err != nil {
		return err
	}
	return b.InMemBucket.Iter(ctx, dir, f, opts...)
}

func (b *recordingBucket) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := b.fail(); err != nil {
		return nil, err
	}
	return b.InMemBucket.Get(ctx, name)
}

func (b *recordingBucket) Attributes(ctx context.Context, name string) (objstore.ObjectAttributes, error) {
	if err := b.fail(); err != nil {
		return objstore.ObjectAttributes{}, err
	}
	return b.InMemBucket.Attributes(ctx, name)
}

func newRecording(t *testing.T) (*Objstore, *recordingBucket, string) {
	rb := &recordingBucket{InMemBucket: objstore.NewInMemBucket()}
	spool := t.TempDir()
	o, err := FromObjstore(rb, ObjstoreOptions{SpoolDir: spool})
	if err != nil {
		t.Fatal(err)
	}
	return o, rb, spool
}

// TestObjstoreReaderAt checks that each ReadAt is one ranged GET of the
// bytes asked, no more, cut at the object's end.
func TestObjstoreReaderAt(t *testing.T) {
	ctx := context.Background()
	o, rb, _ := newRecording(t)
	upload(t, o, "b/samples.parquet", strings.Repeat("0123456789", 100))
	ra, err := o.ReaderAt(ctx, "b/samples.parquet")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ off, n int64 }{{992, 8}, {4, 100}, {990, 20}, {1000, 5}} {
		buf := make([]byte, r.n)
		ra.ReadAt(buf, r.off)
	}
	want := []string{"b/samples.parquet 992+8", "b/samples.parquet 4+100", "b/samples.parquet 990+10"}
	if d := cmp.Diff(want, rb.ranges); d != "" {
		t.Errorf("GETs of the reads (-want +got):\n%s", d)
	}
}

// TestObjstoreSpool checks that the provider is always given a reader
// whose length it can tell, that a long stream goes through a spool file,
// and that none is left.
func TestObjstoreSpool(t *testing.T) {
	ctx := context.Background()
	o, rb, spool := newRecording(t)
	big := bytes.Repeat([]byte("x"), spoolMemoryBytes+1)
	pr, pw := io.Pipe()
	go func() {
		pw.Write(big)
		pw.Close()
	}()
	if err := o.Upload(ctx, "t/big", pr); err != nil {
		t.Fatal(err)
	}
	if err := o.Upload(ctx, "t/small", struct{ io.Reader }{strings.NewReader("small")}); err != nil {
		t.Fatal(err)
	}
	if err := o.Upload(ctx, "t/known", strings.NewReader("known")); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]int64{int64(len(big)), 5, 5}, rb.sizes); d != "" {
		t.Errorf("lengths the provider could tell (-want +got):\n%s", d)
	}
	if got := rb.Objects()["t/big"]; !bytes.Equal(got, big) {
		t.Errorf("big object: %d bytes stored, want %d", len(got), len(big))
	}
	if ents, _ := os.ReadDir(spool); len(ents) != 0 {
		t.Errorf("spool dir holds %d files after the uploads", len(ents))
	}

	// What a crash left in the spool dir goes at the next start.
	left := filepath.Join(spool, tempPrefix+"123")
	if err := os.WriteFile(left, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := FromObjstore(rb, ObjstoreOptions{SpoolDir: spool}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Errorf("leftover spool file still there: %v", err)
	}
}

// TestObjstoreErrors checks how errors of the provider come out: a
// missing object as such however the provider wraps it, anything else as
// the bucket being unavailable, never as damage of the object, with the
// URL of a network error left out of the message.
func TestObjstoreErrors(t *testing.T) {
	ctx := context.Background()
	o, rb, _ := newRecording(t)
	upload(t, o, "t/o", "0123456789")
	ra, err := o.ReaderAt(ctx, "t/o")
	if err != nil {
		t.Fatal(err)
	}

	_, err = o.Get(ctx, "t/missing")
	if !o.IsObjNotFoundErr(err) || !o.IsObjNotFoundErr(fmt.Errorf("block: %w", fmt.Errorf("open: %w", err))) || IsUnavailable(err) {
		t.Errorf("Get of a missing object: %v; want a not-found error, found through wrapping", err)
	}

	refused := &url.Error{Op: "Get", URL: "http://127.0.0.1:1/b/?list-type=2&prefix=", Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}}
	rb.err = fmt.Errorf("provider: %w", refused)
	calls := map[string]error{}
	calls["Iter"] = o.Iter(ctx, "", func(string) error { return nil })
	_, calls["Get"] = o.Get(ctx, "t/o")
	_, calls["GetRange"] = o.GetRange(ctx, "t/o", 0, 4)
	_, calls["ReaderAt"] = o.ReaderAt(ctx, "t/o")
	_, calls["ReadAt"] = ra.ReadAt(make([]byte, 4), 0)
	_, calls["Attributes"] = o.Attributes(ctx, "t/o")
	calls["Upload"] = o.Upload(ctx, "t/p", strings.NewReader("p"))
	for op, err := range calls {
		if !IsUnavailable(err) || o.IsObjNotFoundErr(err) {
			t.Errorf("%s with the store refusing connections: %v; want an UnavailableError", op, err)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, "connection refused") || strings.Contains(msg, "list-type") {
			t.Errorf("%s: message %q: want the cause, without the request's URL", op, msg)
		}
	}
	rb.err = context.Canceled
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := o.Get(cctx, "t/o"); IsUnavailable(err) || !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a cancelled context: %v; want the cancellation, not the store unavailable", err)
	}
}

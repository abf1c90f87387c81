package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
)

// DefaultMaxDecompressedBytes bounds what one request may decompress to,
// in total over its body and the profiles in it: four times the default
// body limit (16 MiB). pprof and JFR compress 3 to 10 times, so a body
// at the limit whose content compresses as profiles do stays within it
// or close, while a gzip bomb (1,000 times) is refused after 64 MiB of
// output instead of 512 MiB: the memory of one request stays a small
// multiple of what the body limit allows, and so does that of
// --limits.max-inflight-bytes worth of them.
const DefaultMaxDecompressedBytes = 64 << 20

// FlagMaxDecompressedBytes is the server flag that sets the decompression
// limit; refusals name it, so that an operator knows what to raise.
const FlagMaxDecompressedBytes = "--limits.max-decompressed-bytes"

// FlagMaxInflightBytes is the server flag that sets an Ingester's
// in-flight limit (LimitInflight); refusals name it.
const FlagMaxInflightBytes = "--limits.max-inflight-bytes"

// replayMaxDecompressedBytes bounds decompression where the limits say
// nothing (ProfileLimits.MaxDecompressedBytes 0), as replay's do: the
// limit in force before the flag existed, which every logged request was
// accepted under.
const replayMaxDecompressedBytes = 512 << 20

// DecompressedTooLarge is the refusal of input (what: "profile", "request
// body"...) that decompresses to more than max bytes.
func DecompressedTooLarge(what string, max int64) error {
	return TooLarge("%s decompresses to more than %d bytes, the limit that %s sets", what, max, FlagMaxDecompressedBytes)
}

// Gunzip decompresses data when it starts with the gzip magic bytes, and
// returns it as is otherwise. It streams: at most max bytes of output are
// ever produced, and each piece is counted in lease (nil: none) before it
// is kept, so a bomb is refused without first being held. Over max, the
// error is an *InputError of ReasonTooLarge naming the limit and its flag.
func Gunzip(data []byte, max int64, lease *Lease, what string) ([]byte, error) {
	if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		return data, nil
	}
	return GunzipReader(bytes.NewReader(data), 4*len(data), max, lease, what)
}

// GunzipReader is Gunzip of a stream that is gzip for sure (a body with
// Content-Encoding: gzip); sizeHint is the expected output size, to
// allocate once.
func GunzipReader(r io.Reader, sizeHint int, max int64, lease *Lease, what string) ([]byte, error) {
	if max <= 0 {
		max = replayMaxDecompressedBytes
	}
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, BadData("%s: decompress: %v", what, err)
	}
	out := &leasedBuffer{lease: lease}
	out.buf.Grow(int(min(int64(sizeHint), max)))
	n, err := io.Copy(out, io.LimitReader(zr, max+1))
	if err != nil {
		if _, busy := errors.AsType[*BusyError](err); busy {
			return nil, err
		}
		return nil, BadData("%s: decompress: %v", what, err)
	}
	if n > max {
		return nil, DecompressedTooLarge(what, max)
	}
	return out.buf.Bytes(), nil
}

// leasedBuffer is a buffer whose every write is first counted in a lease.
// It has no ReadFrom, so that io.Copy goes through Write.
type leasedBuffer struct {
	buf   bytes.Buffer
	lease *Lease
}

func (b *leasedBuffer) Write(p []byte) (int, error) {
	if err := b.lease.Grow(int64(len(p))); err != nil {
		return 0, err
	}
	return b.buf.Write(p)
}

// BusyError says that requests being decoded already hold the in-flight
// limit's worth of bytes: the request was not stored, and may be sent
// again later. Every way in answers it as "too many requests" (HTTP 429
// with Retry-After, gRPC and Connect resource exhausted) rather than
// queueing it: a queue of bodies is memory too.
type BusyError struct{ Max int64 }

func (e *BusyError) Error() string {
	return fmt.Sprintf("server busy: requests being decoded hold more than %d bytes, the limit that %s sets; retry later", e.Max, FlagMaxInflightBytes)
}

// Budget bounds the bytes that requests being decoded hold at once: their
// bodies and what those decompress to. A nil *Budget bounds nothing.
type Budget struct {
	max int64

	mu      sync.Mutex
	used    int64
	refused uint64
}

// NewBudget returns a budget of max bytes; max <= 0 returns nil, no bound.
func NewBudget(max int64) *Budget {
	if max <= 0 {
		return nil
	}
	return &Budget{max: max}
}

// Lease returns an empty share of b for one request; Release gives it
// back. A nil Budget gives a Lease that bounds nothing.
func (b *Budget) Lease() *Lease { return &Lease{b: b} }

// InUse returns the bytes held now and the requests refused since
// NewBudget.
func (b *Budget) InUse() (used int64, refused uint64) {
	if b == nil {
		return 0, 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used, b.refused
}

// Lease is one request's share of a Budget. It is safe for concurrent use.
type Lease struct {
	b    *Budget
	held int64 // under b.mu
}

// Grow adds n bytes to the lease, or returns a *BusyError when that would
// take the budget over its bound while other requests hold some of it. A
// request alone may go over the bound (up to its own limits): otherwise a
// bound below the decompression limit would refuse some valid requests
// forever, where it is meant to make them wait their turn.
func (l *Lease) Grow(n int64) error {
	if l == nil || l.b == nil || n <= 0 {
		return nil
	}
	b := l.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.used+n > b.max && b.used > l.held {
		b.refused++
		return &BusyError{Max: b.max}
	}
	b.used += n
	l.held += n
	return nil
}

// Release gives back everything the lease holds; the lease may grow again.
func (l *Lease) Release() {
	if l == nil || l.b == nil {
		return
	}
	l.b.mu.Lock()
	l.b.used -= l.held
	l.held = 0
	l.b.mu.Unlock()
}

type leaseKey struct{}

// WithLease returns ctx carrying l, which the ingest path counts the
// bytes it decompresses in.
func WithLease(ctx context.Context, l *Lease) context.Context {
	return context.WithValue(ctx, leaseKey{}, l)
}

// LeaseOf returns the lease of ctx, nil (which bounds nothing) when it has
// none.
func LeaseOf(ctx context.Context) *Lease {
	l, _ := ctx.Value(leaseKey{}).(*Lease)
	return l
}

// LeasedReader counts every byte read from r in lease before returning
// it: a request body, held by the request once read.
func LeasedReader(r io.Reader, lease *Lease) io.Reader { return &leasedReader{r, lease} }

type leasedReader struct {
	r     io.Reader
	lease *Lease
}

func (r *leasedReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if gerr := r.lease.Grow(int64(n)); gerr != nil {
		return 0, gerr
	}
	return n, err
}

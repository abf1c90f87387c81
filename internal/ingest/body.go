package ingest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
)

// Admitter is what a way in asks before it decodes a request: a share of
// the in-flight budget, and room in the tenant's ingest rate. *Ingester is
// one; ways in that store elsewhere than through an Ingester (events) take
// it so that every way in is held to the same bounds.
type Admitter interface {
	// Lease returns an empty share of the in-flight budget, and ctx
	// carrying it; see Ingester.Lease.
	Lease(ctx context.Context) (context.Context, *Lease)
	// AdmitBytes takes n bytes of tenant's ingest rate, or refuses with
	// a *RateLimitedError; see Ingester.AdmitBytes.
	AdmitBytes(tenant string, n int64) error
}

// OpenAdmitter admits everything: no in-flight bound, no ingest rate. For
// tests and tools that run a way in alone.
type OpenAdmitter struct{}

// Lease returns a lease that bounds nothing.
func (OpenAdmitter) Lease(ctx context.Context) (context.Context, *Lease) {
	l := (*Budget)(nil).Lease()
	return WithLease(ctx, l), l
}

// AdmitBytes admits n bytes.
func (OpenAdmitter) AdmitBytes(string, int64) error { return nil }

// BodyLimits bound a request body as ReadBody reads it.
type BodyLimits struct {
	// MaxBytes bounds the body as sent.
	MaxBytes int64
	// MaxDecompressedBytes bounds what a gzipped body decompresses to;
	// 0 is the limit replay uses.
	MaxDecompressedBytes int64
}

// ReadBody reads an HTTP request's body, gunzipped when its
// Content-Encoding says gzip, within lim, counting both what it reads and
// what that decompresses to in lease (nil: nowhere). The body as sent
// counts against tenant's ingest rate in adm before it is decompressed.
//
// Refusals are *InputErrors: ReasonTooLarge for a body over a limit,
// ReasonUnsupported for another Content-Encoding, ReasonBadData for a body
// that could not be read or gunzipped. A *BusyError or *RateLimitedError
// says that the client may retry later.
func ReadBody(r *http.Request, lim BodyLimits, lease *Lease, adm Admitter, tenant string) ([]byte, error) {
	limit := lim.MaxBytes
	if r.ContentLength > limit {
		return nil, TooLarge("request body of %d bytes is over the limit of %d", r.ContentLength, limit)
	}
	// The encoding is checked before the body is read: a client told
	// 415 should not first have its body taken from its rate.
	enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	switch enc {
	case "", "identity", "gzip":
	default:
		return nil, Unsupported("unsupported Content-Encoding %q: send gzip or none", enc)
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	n, err := buf.ReadFrom(io.LimitReader(LeasedReader(r.Body, lease), limit+1))
	if _, busy := errors.AsType[*BusyError](err); busy {
		return nil, err
	}
	if err != nil {
		return nil, BadData("read request body: %v", err)
	}
	if n > limit {
		return nil, TooLarge("request body is over the limit of %d bytes", limit)
	}
	if err := adm.AdmitBytes(tenant, n); err != nil {
		return nil, err
	}
	if enc != "gzip" {
		return buf.Bytes(), nil
	}
	return GunzipReader(&buf, int(4*n), lim.MaxDecompressedBytes, lease, "request body")
}

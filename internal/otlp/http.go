package otlp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/hearth-profiler/hearth/internal/ingest"
	"github.com/hearth-profiler/hearth/internal/tenant"
)

// Paths are the URL paths OTLP/HTTP exporters post profiles to: the
// development path that exporters use today, and the one the signal will
// take once stable.
var Paths = []string{"/v1development/profiles", "/v1/profiles"}

// VersionHeader names the OTLP profiles development version of an HTTP
// request; a request without it is version 1. gRPC carries the same in
// the metadata key pprofileotlp.DevelopmentVersionHeader.
const VersionHeader = "OTLP-Profiles-Development-Version"

// Content types of OTLP/HTTP.
const (
	contentProtobuf = "application/x-protobuf"
	contentJSON     = "application/json"
)

// RetryAfterSeconds is what a 503 asks the client to wait before sending
// again: ingest.RetryAfter, as on every way in.
const RetryAfterSeconds = int(ingest.RetryAfter / time.Second)

// Handler serves OTLP/HTTP profile exports (ExportProfilesServiceRequest
// as protobuf or JSON, optionally gzipped) and stores them through an
// ingester. It is safe for concurrent use.
type Handler struct {
	exp *exporter
}

// NewHandler returns a handler storing through ing.
func NewHandler(ing *ingest.Ingester, opts Options) *Handler {
	return &Handler{exp: &exporter{ing: ing, opts: opts.withDefaults()}}
}

// Register serves Paths on mux, for every method, so that the handler
// itself answers 405 to anything but POST.
func (h *Handler) Register(mux interface{ Handle(string, http.Handler) }) {
	for _, p := range Paths {
		mux.Handle(p, h)
	}
}

// httpError is a refusal with its status decided.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func httpErrorf(status int, format string, args ...any) error {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

// ServeHTTP answers one export request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	logger := h.exp.opts.Logger
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, fmt.Sprintf("method %s not allowed: OTLP exports are POSTed", r.Method), http.StatusMethodNotAllowed)
		return
	}
	ct := mediaType(r.Header.Get("Content-Type"))
	if ct != contentProtobuf && ct != contentJSON {
		http.Error(w, fmt.Sprintf("unsupported Content-Type %q: send %s or %s", r.Header.Get("Content-Type"), contentProtobuf, contentJSON), http.StatusUnsupportedMediaType)
		return
	}
	resp, err := h.serve(r, ct)
	if err != nil {
		var he *httpError
		var se *storageError
		var be *ingest.BusyError
		var rl *ingest.RateLimitedError
		switch {
		case errors.As(err, &be):
			w.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
			writeStatus(w, ct, http.StatusTooManyRequests, codes.ResourceExhausted, be.Error())
		case errors.As(err, &rl):
			w.Header().Set("Retry-After", strconv.Itoa(ingest.RetryAfterSeconds(rl.RetryAfter)))
			writeStatus(w, ct, http.StatusTooManyRequests, codes.ResourceExhausted, rl.Error())
		case errors.As(err, &se):
			w.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
			writeStatus(w, ct, http.StatusServiceUnavailable, codes.Unavailable, "profiles not stored, retry later: "+se.err.Error())
		case errors.As(err, &he):
			logger.Debug("OTLP export refused", "path", r.URL.Path, "status", he.status, "err", he.msg)
			writeStatus(w, ct, he.status, grpcCode(he.status), he.msg)
		default:
			logger.Error("OTLP export failed", "path", r.URL.Path, "err", err)
			writeStatus(w, ct, http.StatusInternalServerError, codes.Internal, err.Error())
		}
		return
	}
	var body []byte
	if ct == contentJSON {
		body, err = resp.MarshalJSON()
	} else {
		body, err = resp.MarshalProto()
	}
	if err != nil {
		logger.Error("encode OTLP export response", "err", err)
		writeStatus(w, ct, http.StatusInternalServerError, codes.Internal, "encode response: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// serve decodes and stores one request of content type ct.
func (h *Handler) serve(r *http.Request, ct string) (pprofileotlp.ExportResponse, error) {
	var none pprofileotlp.ExportResponse
	// The version is checked before the body is decoded: a payload of
	// another schema version can decode without error into the wrong
	// fields.
	if err := pprofileotlp.ValidateDevelopmentVersion(r.Header.Values(VersionHeader)); err != nil {
		return none, httpErrorf(http.StatusBadRequest, "%v", err)
	}
	ten, err := tenant.FromHTTP(r)
	if err != nil {
		return none, httpErrorf(http.StatusBadRequest, "%v", err)
	}
	ctx, lease := h.exp.ing.Lease(r.Context())
	defer lease.Release()
	body, err := h.readBody(r, ten, lease)
	if err != nil {
		return none, err
	}
	req := pprofileotlp.NewExportRequest()
	if ct == contentJSON {
		err = req.UnmarshalJSON(body)
	} else {
		err = req.UnmarshalProto(body)
	}
	if err != nil {
		return none, httpErrorf(http.StatusBadRequest, "decode OTLP ExportProfilesServiceRequest (%s): %v", ct, err)
	}
	return h.exp.export(ctx, ten, req.Profiles())
}

// readBody reads the request body, gunzipped when it says so, within the
// body limit before decompression and the decompression limit after, and
// counts both in lease; the body as sent counts against the ingest rate of
// tenant ten.
func (h *Handler) readBody(r *http.Request, ten string, lease *ingest.Lease) ([]byte, error) {
	limit := h.exp.opts.MaxBodyBytes
	if r.ContentLength > limit {
		return nil, httpErrorf(http.StatusRequestEntityTooLarge, "request body of %d bytes is over the limit of %d", r.ContentLength, limit)
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	n, err := buf.ReadFrom(io.LimitReader(ingest.LeasedReader(r.Body, lease), limit+1))
	if _, busy := errors.AsType[*ingest.BusyError](err); busy {
		return nil, err
	}
	if err != nil {
		return nil, httpErrorf(http.StatusBadRequest, "read request body: %v", err)
	}
	if n > limit {
		return nil, httpErrorf(http.StatusRequestEntityTooLarge, "request body is over the limit of %d bytes", limit)
	}
	if err := h.exp.ing.AdmitBytes(ten, n); err != nil {
		return nil, err
	}
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		return buf.Bytes(), nil
	case "gzip":
		out, err := ingest.GunzipReader(&buf, int(4*n), h.exp.opts.MaxDecompressedBytes, lease, "request body")
		if ie, ok := errors.AsType[*ingest.InputError](err); ok {
			status := http.StatusBadRequest
			if ie.Reason == ingest.ReasonTooLarge {
				status = http.StatusRequestEntityTooLarge
			}
			return nil, httpErrorf(status, "%v", ie)
		}
		return out, err
	default:
		return nil, httpErrorf(http.StatusUnsupportedMediaType, "unsupported Content-Encoding %q: send gzip or none", enc)
	}
}

func mediaType(ct string) string {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return ""
	}
	return mt
}

// grpcCode is the google.rpc.Status code of an HTTP refusal.
func grpcCode(status int) codes.Code {
	switch status {
	case http.StatusBadRequest:
		return codes.InvalidArgument
	case http.StatusRequestEntityTooLarge:
		return codes.ResourceExhausted
	case http.StatusUnsupportedMediaType:
		return codes.Unimplemented
	}
	return codes.Unknown
}

// writeStatus answers an error as OTLP/HTTP asks: a google.rpc.Status in
// the request's encoding, whose message exporters log.
func writeStatus(w http.ResponseWriter, ct string, status int, code codes.Code, msg string) {
	// Decoder errors quote the input, which need not be UTF-8; protobuf
	// strings must be, or the Status would not encode.
	st := &spb.Status{Code: int32(code), Message: strings.ToValidUTF8(msg, "\uFFFD")}
	var body []byte
	var err error
	if ct == contentJSON {
		body, err = protojson.Marshal(st)
	} else {
		body, err = proto.Marshal(st)
	}
	if err != nil {
		http.Error(w, msg, status)
		return
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

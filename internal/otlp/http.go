package otlp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	"github.com/hearth-profiler/hearth/internal/storage"
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
	sig httpSignal
}

// NewHandler returns a handler storing through ing.
func NewHandler(ing *ingest.Ingester, opts Options) *Handler {
	exp := &exporter{ing: ing, opts: opts.withDefaults()}
	return &Handler{sig: httpSignal{
		what:   "profiles",
		logger: exp.opts.Logger,
		body:   exp.opts.bodyLimits(),
		adm:    ing,
		// The version is checked before the body is decoded: a payload
		// of another schema version can decode without error into the
		// wrong fields.
		check: func(r *http.Request) error {
			if err := pprofileotlp.ValidateDevelopmentVersion(r.Header.Values(VersionHeader)); err != nil {
				return httpErrorf(http.StatusBadRequest, "%v", err)
			}
			return nil
		},
		export: func(ctx context.Context, ten, ct string, body []byte) (exportResponse, error) {
			req := pprofileotlp.NewExportRequest()
			var err error
			if ct == contentJSON {
				err = req.UnmarshalJSON(body)
			} else {
				err = req.UnmarshalProto(body)
			}
			if err != nil {
				return nil, httpErrorf(http.StatusBadRequest, "decode OTLP ExportProfilesServiceRequest (%s): %v", ct, err)
			}
			return exp.export(ctx, ten, req.Profiles())
		},
	}}
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

// exportResponse is the answer of an OTLP export, of any signal.
type exportResponse interface {
	MarshalProto() ([]byte, error)
	MarshalJSON() ([]byte, error)
}

// httpSignal is how one OTLP/HTTP path (a signal: profiles, traces, logs)
// takes a request. Everything else, from the method to the answer's
// encoding, is the same for every signal and done by serveExport.
type httpSignal struct {
	// what names the signal's items in messages ("profiles", "spans").
	what   string
	logger *slog.Logger
	body   ingest.BodyLimits
	adm    ingest.Admitter
	// check refuses a request before its body is read; nil checks
	// nothing.
	check func(*http.Request) error
	// export decodes body, of content type ct, and stores it for tenant
	// ten; ctx carries the request's lease.
	export func(ctx context.Context, ten, ct string, body []byte) (exportResponse, error)
}

// ServeHTTP answers one export request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { serveExport(w, r, &h.sig) }

// serveExport answers one export request of signal sig.
func serveExport(w http.ResponseWriter, r *http.Request, sig *httpSignal) {
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
	resp, err := sig.serve(r, ct)
	if err != nil {
		writeError(w, r, ct, sig, err)
		return
	}
	var body []byte
	if ct == contentJSON {
		body, err = resp.MarshalJSON()
	} else {
		body, err = resp.MarshalProto()
	}
	if err != nil {
		sig.logger.Error("encode OTLP export response", "path", r.URL.Path, "err", err)
		writeStatus(w, ct, http.StatusInternalServerError, codes.Internal, "encode response: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// writeError answers err, the refusal or failure of an export request.
func writeError(w http.ResponseWriter, r *http.Request, ct string, sig *httpSignal, err error) {
	var he *httpError
	var se *storageError
	var be *ingest.BusyError
	var rl *ingest.RateLimitedError
	var ie *ingest.InputError
	switch {
	case errors.As(err, &be):
		w.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
		writeStatus(w, ct, http.StatusTooManyRequests, codes.ResourceExhausted, be.Error())
	case errors.As(err, &rl):
		w.Header().Set("Retry-After", strconv.Itoa(ingest.RetryAfterSeconds(rl.RetryAfter)))
		writeStatus(w, ct, http.StatusTooManyRequests, codes.ResourceExhausted, rl.Error())
	case errors.As(err, &se) && errors.Is(err, storage.ErrBehind):
		// Hearth cannot keep up: as the ingest rate limit answers.
		w.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
		writeStatus(w, ct, http.StatusTooManyRequests, codes.ResourceExhausted, se.what+" not stored, retry later: "+se.err.Error())
	case errors.As(err, &se):
		w.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
		writeStatus(w, ct, http.StatusServiceUnavailable, codes.Unavailable, se.what+" not stored, retry later: "+se.err.Error())
	case errors.As(err, &he):
		sig.logger.Debug("OTLP export refused", "path", r.URL.Path, "status", he.status, "err", he.msg)
		writeStatus(w, ct, he.status, grpcCode(he.status), he.msg)
	case errors.As(err, &ie):
		status := inputStatus(ie)
		sig.logger.Debug("OTLP export refused", "path", r.URL.Path, "status", status, "err", ie.Msg)
		writeStatus(w, ct, status, grpcCode(status), ie.Msg)
	default:
		sig.logger.Error("OTLP export failed", "path", r.URL.Path, "err", err)
		writeStatus(w, ct, http.StatusInternalServerError, codes.Internal, err.Error())
	}
}

// inputStatus is the HTTP status of a refused input.
func inputStatus(ie *ingest.InputError) int {
	switch ie.Reason {
	case ingest.ReasonTooLarge:
		return http.StatusRequestEntityTooLarge
	case ingest.ReasonUnsupported:
		return http.StatusUnsupportedMediaType
	}
	return http.StatusBadRequest
}

// serve reads, decodes and stores one request of content type ct.
func (sig *httpSignal) serve(r *http.Request, ct string) (exportResponse, error) {
	if sig.check != nil {
		if err := sig.check(r); err != nil {
			return nil, err
		}
	}
	ten, err := tenant.FromHTTP(r)
	if err != nil {
		return nil, httpErrorf(http.StatusBadRequest, "%v", err)
	}
	ctx, lease := sig.adm.Lease(r.Context())
	defer lease.Release()
	body, err := ingest.ReadBody(r, sig.body, lease, sig.adm, ten)
	if err != nil {
		return nil, err
	}
	return sig.export(ctx, ten, ct, body)
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

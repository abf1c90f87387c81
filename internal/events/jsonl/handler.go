package jsonl

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hearth-profiler/hearth/internal/events"
	"github.com/hearth-profiler/hearth/internal/ingest"
	"github.com/hearth-profiler/hearth/internal/selfevents"
	"github.com/hearth-profiler/hearth/internal/storage"
	"github.com/hearth-profiler/hearth/internal/tenant"
)

// Path is where events are POSTed.
const Path = "/api/v1/events"

// DefaultMaxBodyBytes is the default request body limit, as for every
// other way in.
const DefaultMaxBodyBytes = 16 << 20

// maxListed bounds the refusals an answer lists; RefusedCount counts them
// all.
const maxListed = 100

// HandlerOptions configure a Handler.
type HandlerOptions struct {
	// Decode bounds lines and events; its Now is ignored (each request
	// takes the time it arrives).
	Decode Options
	// MaxBodyBytes bounds a request body as sent; larger gets 413. Zero
	// means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxDecompressedBytes bounds what a gzipped body decompresses to;
	// larger gets 413. Zero means ingest.DefaultMaxDecompressedBytes.
	MaxDecompressedBytes int64
	// Tally counts the events stored, refused and cut; nil counts
	// nothing.
	Tally *events.Tally
	// Logger receives refusals (debug) and storage failures (error).
	Logger *slog.Logger
}

// Handler serves POST Path: it decodes a body of events and stores them.
// It is safe for concurrent use.
type Handler struct {
	app  events.Appender
	adm  ingest.Admitter
	opts HandlerOptions
	now  func() time.Time
}

// NewHandler returns a handler storing through app and admitting requests
// through adm (the in-flight budget and the tenants' ingest rates; nil
// admits everything).
func NewHandler(app events.Appender, adm ingest.Admitter, opts HandlerOptions) *Handler {
	if adm == nil {
		adm = ingest.OpenAdmitter{}
	}
	opts.Decode = opts.Decode.withDefaults()
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.MaxDecompressedBytes <= 0 {
		opts.MaxDecompressedBytes = ingest.DefaultMaxDecompressedBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{app: app, adm: adm, opts: opts, now: time.Now}
}

// Answer is the JSON answer to a request that was read: how many events
// were stored, which lines were refused and why, and what the limits cut.
type Answer struct {
	Accepted int `json:"accepted"`
	// RefusedCount counts the refused lines; Refused lists the first 100.
	RefusedCount int       `json:"refused_count"`
	Refused      []Refusal `json:"refused"`
	// AttributesDropped and ValuesCut count what the limits cut from the
	// stored events; Warnings say it with the limits' flags.
	AttributesDropped int      `json:"attributes_dropped,omitempty"`
	ValuesCut         int      `json:"values_cut,omitempty"`
	Warnings          []string `json:"warnings,omitempty"`
	// Error is set when nothing was stored because every line was
	// refused (400).
	Error string `json:"error,omitempty"`
}

// errorAnswer is the answer to a request refused whole, as Hearth's API
// answers errors.
type errorAnswer struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
}

// ServeHTTP answers one request.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", fmt.Sprintf("method %s not allowed: events are POSTed", r.Method))
		return
	}
	ans, status, err := h.serve(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(ans)
}

// badRequest is a request refused whole as malformed.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

// storageError is a failure of storage to log the events: nothing was
// stored, and the client may send them again later.
type storageError struct{ err error }

func (e *storageError) Error() string { return "events not stored, retry later: " + e.err.Error() }

func (h *Handler) serve(r *http.Request) (Answer, int, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" && !acceptedType(ct) {
		return Answer{}, 0, ingest.Unsupported("unsupported Content-Type %q: send JSON lines (application/x-ndjson) or a JSON array (application/json)", ct)
	}
	ten, err := tenant.FromHTTP(r)
	if err != nil {
		return Answer{}, 0, &badRequest{err.Error()}
	}
	ctx, lease := h.adm.Lease(r.Context())
	defer lease.Release()
	body, err := ingest.ReadBody(r, ingest.BodyLimits{MaxBytes: h.opts.MaxBodyBytes, MaxDecompressedBytes: h.opts.MaxDecompressedBytes}, lease, h.adm, ten)
	if err != nil {
		return Answer{}, 0, err
	}
	opts := h.opts.Decode
	opts.Now = h.now()
	d, err := Decode(body, opts)
	if tm, ok := errors.AsType[*TooManyError](err); ok {
		return Answer{}, 0, ingest.TooLarge("%s", tm.Error())
	}
	if err != nil {
		return Answer{}, 0, &badRequest{err.Error()}
	}
	if len(d.Events) == 0 && len(d.Refused) == 0 {
		return Answer{}, 0, &badRequest{"the body holds no events: send one JSON object a line, or a JSON array of objects"}
	}
	ans := Answer{Accepted: len(d.Events), RefusedCount: len(d.Refused), Refused: d.Refused[:min(len(d.Refused), maxListed)],
		AttributesDropped: d.Cut.Attributes, ValuesCut: d.Cut.Values}
	if ans.Refused == nil {
		ans.Refused = []Refusal{}
	}
	lim := h.opts.Decode.Limits
	if d.Cut.Attributes > 0 {
		ans.Warnings = append(ans.Warnings, fmt.Sprintf("%d attributes dropped over the limit of %d per event (%s)", d.Cut.Attributes, lim.MaxAttributes, events.FlagMaxAttributes))
	}
	if d.Cut.Values > 0 {
		ans.Warnings = append(ans.Warnings, fmt.Sprintf("%d values cut to the limit of %d bytes (%s)", d.Cut.Values, lim.MaxValueBytes, events.FlagMaxValueBytes))
	}
	h.opts.Tally.Refused(len(d.Refused))
	if len(d.Events) == 0 {
		first := d.Refused[0]
		ans.Error = fmt.Sprintf("every event was refused; %s: %s", first.where(), first.Error)
		h.opts.Logger.Debug("events refused", "tenant", ten, "refused", len(d.Refused), "first", ans.Error)
		return ans, http.StatusBadRequest, nil
	}
	if err := h.app.AppendEvents(ctx, ten, d.Events); err != nil {
		h.opts.Tally.Failed(len(d.Events))
		if errors.Is(err, storage.ErrUnavailable) {
			return Answer{}, 0, &storageError{err}
		}
		return Answer{}, 0, fmt.Errorf("store %d events: %w", len(d.Events), err)
	}
	h.opts.Tally.Stored(len(d.Events), d.Cut)
	selfevents.Add(ctx, events.Attr{Key: "hearth.events.stored", Value: events.Int(int64(len(d.Events)))},
		events.Attr{Key: "hearth.events.refused", Value: events.Int(int64(len(d.Refused)))})
	return ans, http.StatusOK, nil
}

// acceptedType says whether a Content-Type is one of JSON's: JSON lines
// go by several names, and curl sends form encoding unless told.
func acceptedType(ct string) bool {
	mt, _, _ := strings.Cut(strings.ToLower(ct), ";")
	switch strings.TrimSpace(mt) {
	case "application/json", "application/x-ndjson", "application/jsonl", "application/x-jsonlines", "application/jsonlines",
		"text/plain", "application/x-www-form-urlencoded":
		return true
	}
	return false
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var br *badRequest
	var se *storageError
	var ie *ingest.InputError
	var be *ingest.BusyError
	var rl *ingest.RateLimitedError
	switch {
	case errors.As(err, &be):
		w.Header().Set("Retry-After", strconv.Itoa(ingest.RetryAfterSeconds(ingest.RetryAfter)))
		writeError(w, http.StatusTooManyRequests, "too_many_requests", be.Error())
	case errors.As(err, &rl):
		w.Header().Set("Retry-After", strconv.Itoa(ingest.RetryAfterSeconds(rl.RetryAfter)))
		writeError(w, http.StatusTooManyRequests, "too_many_requests", rl.Error())
	case errors.As(err, &se):
		h.opts.Logger.Debug("events not stored", "err", se.err)
		w.Header().Set("Retry-After", strconv.Itoa(ingest.RetryAfterSeconds(ingest.RetryAfter)))
		if errors.Is(se.err, storage.ErrBehind) {
			// Hearth cannot keep up: as the ingest rate limit answers.
			writeError(w, http.StatusTooManyRequests, "too_many_requests", se.Error())
			return
		}
		writeError(w, http.StatusServiceUnavailable, "unavailable", se.Error())
	case errors.As(err, &br):
		h.opts.Logger.Debug("events request refused", "path", r.URL.Path, "err", br.msg)
		writeError(w, http.StatusBadRequest, ingest.ReasonBadData.String(), br.msg)
	case errors.As(err, &ie):
		status := http.StatusBadRequest
		switch ie.Reason {
		case ingest.ReasonTooLarge:
			status = http.StatusRequestEntityTooLarge
		case ingest.ReasonUnsupported:
			status = http.StatusUnsupportedMediaType
		}
		h.opts.Logger.Debug("events request refused", "path", r.URL.Path, "status", status, "err", ie.Msg)
		writeError(w, status, ie.Reason.String(), ie.Msg)
	default:
		h.opts.Logger.Error("events request failed", "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
	}
}

func writeError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(errorAnswer{Status: "error", ErrorType: typ, Error: msg})
}

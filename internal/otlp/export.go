package otlp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"go.opentelemetry.io/collector/pdata/pprofile"
	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"

	"github.com/hearth-profiler/hearth/internal/events"
	"github.com/hearth-profiler/hearth/internal/ingest"
)

// Options configure the OTLP handlers.
type Options struct {
	// MaxBodyBytes bounds an HTTP request body, before and after gzip;
	// larger bodies get 413. Zero means DefaultMaxBodyBytes. gRPC messages
	// are bounded by the grpc.Server's own MaxRecvMsgSize.
	MaxBodyBytes int64
	// MaxDecompressedBytes bounds what a gzipped HTTP body decompresses
	// to; larger get 413. Zero means ingest.DefaultMaxDecompressedBytes.
	MaxDecompressedBytes int64
	// Limits bound what one request may expand to; zero fields take
	// DefaultLimits.
	Limits Limits
	// Events bound the events of a traces or logs request; zero fields
	// take events.DefaultLimits.
	Events events.Limits
	// Tally counts the events stored, refused and cut; nil counts
	// nothing.
	Tally *events.Tally
	// Logger receives refusals (debug) and storage failures (error).
	Logger *slog.Logger
}

// DefaultMaxBodyBytes is Hearth's default request body limit, as for the
// Pyroscope ingest API.
const DefaultMaxBodyBytes = 16 << 20

// bodyLimits are the limits of an HTTP request body.
func (o Options) bodyLimits() ingest.BodyLimits {
	return ingest.BodyLimits{MaxBytes: o.MaxBodyBytes, MaxDecompressedBytes: o.MaxDecompressedBytes}
}

func (o Options) withDefaults() Options {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.MaxDecompressedBytes <= 0 {
		o.MaxDecompressedBytes = ingest.DefaultMaxDecompressedBytes
	}
	def := DefaultLimits()
	if o.Limits.MaxSamples <= 0 {
		o.Limits.MaxSamples = def.MaxSamples
	}
	if o.Limits.MaxFrames <= 0 {
		o.Limits.MaxFrames = def.MaxFrames
	}
	o.Events = o.Events.WithDefaults()
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// exporter stores the profiles of export requests; the HTTP and gRPC
// handlers share it.
type exporter struct {
	ing  *ingest.Ingester
	opts Options
}

// storageError says that nothing of a request was stored and that the
// client should send it again later; what names what was not stored
// ("profiles", "spans").
type storageError struct {
	what string
	err  error
}

func (e *storageError) Error() string { return "store " + e.what + ": " + e.err.Error() }
func (e *storageError) Unwrap() error { return e.err }

// maxReasons bounds the refusals that partial_success spells out, so that
// a request of a thousand bad profiles gets a readable answer.
const maxReasons = 5

// export converts the profiles of pd and stores those that convert and
// decode, in one atomic write. Refused profiles are counted and explained
// in the response's partial_success; a *storageError means that nothing
// was stored.
func (e *exporter) export(ctx context.Context, tenant string, pd pprofile.Profiles) (pprofileotlp.ExportResponse, error) {
	resp := pprofileotlp.NewExportResponse()
	conv := Convert(pd, e.opts.Limits)
	var reqs []*ingest.Request
	var reqAt []int // index in conv of each request
	for i, cv := range conv {
		if cv.Request != nil {
			reqs = append(reqs, cv.Request)
			reqAt = append(reqAt, i)
		}
	}
	if len(reqs) > 0 {
		refused, err := e.ing.IngestBatch(ctx, tenant, reqs)
		if _, busy := errors.AsType[*ingest.BusyError](err); busy {
			return resp, err
		}
		if err != nil {
			// The ingest path logs storage failures, at most once in a
			// while: a full disk fails every export.
			e.opts.Logger.Debug("OTLP profiles not stored", "tenant", tenant, "profiles", len(reqs), "err", err)
			return resp, &storageError{what: "profiles", err: err}
		}
		for i, err := range refused {
			if err != nil {
				conv[reqAt[i]].Err = err
			}
		}
	}
	var reasons []string
	rejected, total, refusals := 0, 0, 0
	for _, cv := range conv {
		total += len(cv.Where)
		if cv.Err == nil {
			continue
		}
		rejected += len(cv.Where)
		refusals++
		if len(reasons) < maxReasons {
			reasons = append(reasons, strings.Join(cv.Where, ", ")+": "+cv.Err.Error())
		}
		e.opts.Logger.Debug("OTLP profiles refused", "tenant", tenant, "profiles", cv.Where, "err", cv.Err)
	}
	if rejected > 0 {
		msg := fmt.Sprintf("%d of %d profiles refused: %s", rejected, total, strings.Join(reasons, "; "))
		if refusals > len(reasons) {
			msg += fmt.Sprintf("; and %d more refusals", refusals-len(reasons))
		}
		ps := resp.PartialSuccess()
		ps.SetRejectedProfiles(int64(rejected))
		// A reason may quote the input; the message must be UTF-8 to
		// encode.
		ps.SetErrorMessage(strings.ToValidUTF8(msg, "\uFFFD"))
	}
	return resp, nil
}

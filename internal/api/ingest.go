package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"

	"github.com/hearth-profiler/hearth/internal/events"
	"github.com/hearth-profiler/hearth/internal/ingest"
	"github.com/hearth-profiler/hearth/internal/jfr"
	"github.com/hearth-profiler/hearth/internal/selfevents"
)

type ingestResult struct {
	Accepted bool `json:"accepted"`
}

// ingest serves POST /ingest as the Pyroscope API defines it: the profile
// as the raw body, or as the multipart field "profile" with optional
// "prev_profile" and "sample_type_config". A JFR recording (format=jfr, as
// the Pyroscope Java SDK sends it) is the raw body or the multipart field
// "jfr", with its labels snapshot in the optional field "labels".
func (a *API) ingest(r *http.Request) (any, error) {
	tenant, err := tenantOf(r)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	req := &ingest.Request{
		Name: q.Get("name"), Format: q.Get("format"), SpyName: q.Get("spyName"),
		Units: q.Get("units"), AggregationType: q.Get("aggregationType"),
	}
	if req.Name == "" {
		return nil, badRequest("name is required, e.g. name=myapp.cpu{env=prod}")
	}
	selfevents.Add(r.Context(), events.Attr{Key: "hearth.profile.name", Value: events.String(req.Name)},
		events.Attr{Key: "hearth.profile.format", Value: events.String(req.Format)},
		events.Attr{Key: "hearth.profile.spy", Value: events.String(req.SpyName)})
	now := a.now()
	for _, p := range []struct {
		name string
		dst  *int64
	}{{"from", &req.From}, {"until", &req.Until}} {
		if s := q.Get(p.name); s != "" {
			t, err := parseTime(s, now, now)
			if err != nil {
				return nil, badRequest("%s: %v", p.name, err)
			}
			*p.dst = t.UnixNano()
		}
	}
	if s := q.Get("sampleRate"); s != "" {
		// The pyroscope-go SDK sends sampleRate=0 with pprof, meaning
		// "not given".
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return nil, badRequest("sampleRate: %q is not a non-negative integer", s)
		}
		req.SampleRate = n
	}
	// The body and what it decompresses to count against the in-flight
	// bound until the request is done: past it, the request is refused
	// busy rather than held in memory beside the others.
	ctx, lease := a.ing.Lease(r.Context())
	defer lease.Release()
	in := &countingReader{r: ingest.LeasedReader(r.Body, lease)}
	ct := r.Header.Get("Content-Type")
	mt, params, _ := mime.ParseMediaType(ct)
	var up jfrUpload
	if mt == "multipart/form-data" {
		if err := readMultipart(in, params["boundary"], req, &up); err != nil {
			return nil, err
		}
		switch {
		case req.Format == "" && up.recording != nil && req.Profile == nil:
			req.Format = "jfr"
		case req.Format == "":
			req.Format = "pprof"
		}
	} else {
		body, err := io.ReadAll(in)
		if err != nil {
			return nil, fmt.Errorf("read body: %w", err)
		}
		req.Profile = body
		if req.Format == "" && strings.HasSuffix(mt, "+pprof") {
			req.Format = "pprof"
		}
		if strings.EqualFold(req.Format, "jfr") {
			up.recording, req.Profile = body, nil
		}
	}
	// The body as sent counts against the tenant's ingest rate, before
	// anything is decoded.
	if err := a.ing.AdmitBytes(tenant, in.n); err != nil {
		return nil, err
	}
	if strings.EqualFold(req.Format, "jfr") {
		return a.ingestJFR(ctx, tenant, req, up)
	}
	if len(req.Profile) == 0 {
		return nil, badRequest("the request has no profile: send it as the body or as the multipart field \"profile\"")
	}
	if err := a.ing.Ingest(ctx, tenant, req); err != nil {
		return nil, err
	}
	return ingestResult{Accepted: true}, nil
}

// jfrUpload is the parts of a format=jfr upload.
type jfrUpload struct {
	recording []byte
	// labels is the Java SDK's snapshot of the dynamic labels that the
	// recording's samples refer to; nil when it sent none.
	labels []byte
}

// ingestJFR stores the profiles of one recording, one per kind of event and
// label set, in one batch: one write to the log for all of them. The
// profiles that fail the ingest checks are named in the error; the others
// are stored.
func (a *API) ingestJFR(ctx context.Context, tenant string, base *ingest.Request, up jfrUpload) (any, error) {
	if len(up.recording) == 0 {
		return nil, badRequest("the request has no recording: send it as the body or as the multipart field \"jfr\"")
	}
	rs, err := jfr.RequestsWithin(ctx, base, up.recording, up.labels, a.ing.Limits().MaxDecompressedBytes)
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 {
		// An idle JVM's recording holds no samples: there is nothing to
		// store, and the upload is not wrong.
		a.logger.Debug("jfr upload without samples", "name", base.Name)
		return ingestResult{Accepted: true}, nil
	}
	refused, err := a.ing.IngestBatch(ctx, tenant, rs)
	if err != nil {
		return nil, err
	}
	first := ingest.ReasonBadData
	var msgs []string
	for i, e := range refused {
		if e == nil {
			continue
		}
		if ie, ok := errors.AsType[*ingest.InputError](e); ok && len(msgs) == 0 {
			first = ie.Reason
		}
		msgs = append(msgs, fmt.Sprintf("%s %s: %v", rs[i].NameKind, rs[i].Labels, e))
	}
	if len(msgs) == 0 {
		return ingestResult{Accepted: true}, nil
	}
	msg := fmt.Sprintf("jfr: %d of %d profiles refused", len(msgs), len(rs))
	if len(msgs) < len(rs) {
		msg += " (the others were stored)"
	}
	// The reason of the first refusal decides the status.
	return nil, &ingest.InputError{Reason: first, Msg: msg + ": " + strings.Join(msgs, "; ")}
}

func readMultipart(body io.Reader, boundary string, req *ingest.Request, up *jfrUpload) error {
	if boundary == "" {
		return badRequest("multipart body without a boundary in Content-Type")
	}
	mr := multipart.NewReader(body, boundary)
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if passThrough(err) {
				return err
			}
			return badRequest("read multipart body: %v", err)
		}
		data, err := io.ReadAll(part)
		if err != nil {
			if passThrough(err) {
				return err
			}
			return badRequest("read multipart field %q: %v", part.FormName(), err)
		}
		switch part.FormName() {
		case "profile":
			req.Profile = data
		case "prev_profile":
			req.PrevProfile = data
		case "sample_type_config":
			req.SampleTypeConfig = data
		case "jfr":
			up.recording = data
		case "labels":
			up.labels = data
		}
	}
}

// passThrough says whether an error of reading the body is the server's
// limits speaking (413, 429), to be answered as such rather than as a
// malformed body.
func passThrough(err error) bool {
	_, tooLarge := errors.AsType[*http.MaxBytesError](err)
	_, busy := errors.AsType[*ingest.BusyError](err)
	return tooLarge || busy
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

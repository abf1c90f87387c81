package api

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"

	"github.com/hearth-profiler/hearth/internal/ingest"
)

type ingestResult struct {
	Accepted bool `json:"accepted"`
}

// ingest serves POST /ingest as the Pyroscope API defines it: the profile
// as the raw body, or as the multipart field "profile" with optional
// "prev_profile" and "sample_type_config".
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
	ct := r.Header.Get("Content-Type")
	mt, params, _ := mime.ParseMediaType(ct)
	if mt == "multipart/form-data" {
		if err := readMultipart(r.Body, params["boundary"], req); err != nil {
			return nil, err
		}
		if req.Format == "" {
			req.Format = "pprof"
		}
	} else {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, fmt.Errorf("read body: %w", err)
		}
		req.Profile = body
		if req.Format == "" && strings.HasSuffix(mt, "+pprof") {
			req.Format = "pprof"
		}
	}
	if len(req.Profile) == 0 {
		return nil, badRequest("the request has no profile: send it as the body or as the multipart field \"profile\"")
	}
	if err := a.ing.Ingest(r.Context(), tenant, req); err != nil {
		return nil, err
	}
	return ingestResult{Accepted: true}, nil
}

func readMultipart(body io.Reader, boundary string, req *ingest.Request) error {
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
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return err
			}
			return badRequest("read multipart body: %v", err)
		}
		data, err := io.ReadAll(part)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
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
		}
	}
}

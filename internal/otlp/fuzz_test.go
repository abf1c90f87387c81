package otlp

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"go.opentelemetry.io/collector/pdata/pprofile"
	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"

	"github.com/hearth-profiler/hearth/internal/ingest"
	"github.com/hearth-profiler/hearth/internal/profiletest"
)

// fuzzExport posts data through the whole HTTP path (decode, convert,
// ingest into a real store, encode the answer) and checks that the answer
// is one of the two a well-formed or malformed request may get, and that
// a 200 accounts for every profile.
func fuzzExport(f *testing.F, ct string, seeds ...[]byte) {
	for _, s := range seeds {
		f.Add(s)
	}
	store := profiletest.OpenStore(f)
	h := NewHandler(store.Ing, Options{})
	json := ct == contentJSON
	f.Fuzz(func(t *testing.T, data []byte) {
		req := httptest.NewRequest(http.MethodPost, Paths[0], bytes.NewReader(data))
		req.Header.Set("Content-Type", ct)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusBadRequest:
			statusMessage(t, ct, rec.Body.Bytes())
		case http.StatusOK:
			ps := decodeResponse(t, rec.Body.Bytes(), json).PartialSuccess()
			in := pprofileotlp.NewExportRequest()
			var err error
			if json {
				err = in.UnmarshalJSON(data)
			} else {
				err = in.UnmarshalProto(data)
			}
			if err != nil {
				t.Fatalf("accepted a request that does not decode: %v", err)
			}
			if n := int64(in.Profiles().ProfileCount()); ps.RejectedProfiles() < 0 || ps.RejectedProfiles() > n {
				t.Fatalf("%d profiles refused of %d", ps.RejectedProfiles(), n)
			}
			if (ps.RejectedProfiles() == 0) != (ps.ErrorMessage() == "") {
				t.Fatalf("partial success {%d %q}: a count needs a reason", ps.RejectedProfiles(), ps.ErrorMessage())
			}
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body.Bytes())
		}
	})
}

func readSeed(f *testing.F, file string) []byte {
	b, err := os.ReadFile(file)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// FuzzExportProto: no protobuf body may crash the handler.
func FuzzExportProto(f *testing.F) {
	fuzzExport(f, contentProtobuf,
		readSeed(f, capturedPayloads[0].file),
		encodeExport(f, badStringIndex(), false),
		encodeExport(f, exampleProfiles(), false)[:600],
	)
}

// FuzzExportJSON: no JSON body may crash the handler.
func FuzzExportJSON(f *testing.F) {
	fuzzExport(f, contentJSON,
		readSeed(f, capturedPayloads[1].file),
		encodeExport(f, badStringIndex(), true),
		[]byte(`{"resourceProfiles":[{"scopeProfiles":[{"profiles":[{"samples":[{"stackIndex":5,"values":["1"]}]}]}]}],"dictionary":{"stringTable":[""]}}`),
	)
}

// FuzzConvertIndexes rewrites the example's dictionary references from the
// fuzzer's bytes, 5 bytes per rewrite (what to change, then an int32),
// so that every reference the converter follows gets out-of-range,
// negative and dangling values that random bytes rarely reach through a
// decoder. Conversion must refuse bad profiles with an error, never panic,
// and what it accepts must be a valid pprof profile that stores.
func FuzzConvertIndexes(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 99})
	f.Add([]byte{3, 0xff, 0xff, 0xff, 0xff, 7, 0, 0, 0, 2})
	f.Add([]byte{9, 0x7f, 0xff, 0xff, 0xff})
	// A negative stack index once passed the cache's bounds check.
	f.Add([]byte{0, 0xff, 0xff, 0xff, 0xff})
	store := profiletest.OpenStore(f)
	f.Fuzz(func(t *testing.T, edits []byte) {
		pd := exampleProfiles()
		d := pd.Dictionary()
		var samples []pprofile.Sample
		for _, rp := range pd.ResourceProfiles().All() {
			for _, sp := range rp.ScopeProfiles().All() {
				for _, p := range sp.Profiles().All() {
					for _, s := range p.Samples().All() {
						samples = append(samples, s)
					}
				}
			}
		}
		for ; len(edits) >= 5; edits = edits[5:] {
			v := int32(binary.BigEndian.Uint32(edits[1:5]))
			k := int(uint32(v)) // which element, for edits that pick one
			s := samples[k%len(samples)]
			switch edits[0] % 12 {
			case 0:
				s.SetStackIndex(v)
			case 1:
				s.SetLinkIndex(v)
			case 2:
				s.AttributeIndices().Append(v)
			case 3:
				s.Values().RemoveIf(func(int64) bool { return true })
			case 4:
				s.TimestampsUnixNano().Append(uint64(v))
			case 5:
				st := d.StackTable().At(k % d.StackTable().Len())
				st.LocationIndices().Append(v)
			case 6:
				l := d.LocationTable().At(k % d.LocationTable().Len())
				l.SetMappingIndex(v)
			case 7:
				l := d.LocationTable().At(k % d.LocationTable().Len())
				l.Lines().AppendEmpty().SetFunctionIndex(v)
			case 8:
				fn := d.FunctionTable().At(k % d.FunctionTable().Len())
				fn.SetNameStrindex(v)
			case 9:
				m := d.MappingTable().At(k % d.MappingTable().Len())
				m.SetFilenameStrindex(v)
			case 10:
				a := d.AttributeTable().At(k % d.AttributeTable().Len())
				a.SetKeyStrindex(v)
			case 11:
				p := pd.ResourceProfiles().At(0).ScopeProfiles().At(0).Profiles().At(0)
				p.PeriodType().SetUnitStrindex(v)
			}
		}
		var reqs []*ingest.Request
		for _, cv := range Convert(pd, DefaultLimits()) {
			if cv.Request != nil && cv.Err != nil {
				t.Fatalf("%s: both a request and an error", cv.Where)
			}
			if cv.Err != nil {
				var ie *ingest.InputError
				if !errors.As(cv.Err, &ie) {
					t.Fatalf("%s: refusal %v is not an *ingest.InputError", cv.Where, cv.Err)
				}
				continue
			}
			if cv.Request == nil {
				continue
			}
			if err := cv.Request.Parsed.CheckValid(); err != nil {
				t.Fatalf("%s: converted profile is not valid pprof: %v", cv.Where, err)
			}
			reqs = append(reqs, cv.Request)
		}
		if _, err := store.Ing.IngestBatch(context.Background(), "fuzz", reqs); err != nil {
			t.Fatalf("ingest: %v", err)
		}
	})
}

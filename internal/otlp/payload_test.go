package otlp

import (
	"bytes"
	"context"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/hearth-profiler/hearth/internal/otlp/otlptest"
)

var update = flag.Bool("update", false, "capture the payloads in testdata again from what pdata's clients send")

// The captured payloads: exampleProfiles as pdata v1.71.0 / pprofile
// v0.165.0 sends it, which is the v1development layout of
// opentelemetry-proto 1.10.0. A pdata upgrade that changes the layout adds
// files for the new version and keeps these, as long as Hearth accepts
// their version.
var capturedPayloads = []struct {
	file, contentType string
}{
	{"testdata/export-proto-v1.10.0.pb", contentProtobuf},
	{"testdata/export-proto-v1.10.0.json", contentJSON},
}

// captureHTTP returns the body an OTLP/HTTP export of exampleProfiles
// posts, as the capturing server received it.
func captureHTTP(t *testing.T, json bool) []byte {
	t.Helper()
	var got []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
	}))
	defer srv.Close()
	ct := contentProtobuf
	if json {
		ct = contentJSON
	}
	if status, _, _ := post(t, srv.URL+Paths[0], ct, nil, encodeExport(t, exampleProfiles(), json)); status != http.StatusOK {
		t.Fatalf("capturing server answered %d", status)
	}
	return got
}

// TestCapturedPayloads captures what pdata's clients send for the example
// and compares it with testdata; with -update it writes testdata instead.
// A difference after a pdata upgrade means the wire format changed: keep
// the old files (or drop their version from Hearth and the package doc)
// and capture the new version's.
func TestCapturedPayloads(t *testing.T) {
	overGRPC, err := otlptest.CaptureGRPC(grpcContext(t), exampleProfiles())
	if err != nil {
		t.Fatal(err)
	}
	overHTTP := captureHTTP(t, false)
	if !bytes.Equal(overGRPC, overHTTP) {
		t.Errorf("the gRPC client sends %d bytes, the HTTP encoding %d: the two ways should carry the same message", len(overGRPC), len(overHTTP))
	}
	fresh := map[string][]byte{
		capturedPayloads[0].file: overGRPC,
		capturedPayloads[1].file: captureHTTP(t, true),
	}
	for _, p := range capturedPayloads {
		if *update {
			if err := os.WriteFile(p.file, fresh[p.file], 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		old, err := os.ReadFile(p.file)
		if err != nil {
			t.Fatalf("%v (capture with go test -run TestCapturedPayloads -update)", err)
		}
		if !bytes.Equal(old, fresh[p.file]) {
			t.Errorf("%s: pdata now sends %d bytes where it sent %d: the format changed", p.file, len(fresh[p.file]), len(old))
		}
	}
}

// TestDecodeCapturedPayloads posts each captured payload as it was sent
// and checks everything stored from it.
func TestDecodeCapturedPayloads(t *testing.T) {
	files, err := filepath.Glob("testdata/export-*")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(capturedPayloads) {
		t.Errorf("testdata holds %v, want the %d captured payloads", files, len(capturedPayloads))
	}
	for _, p := range capturedPayloads {
		t.Run(filepath.Base(p.file), func(t *testing.T) {
			body, err := os.ReadFile(p.file)
			if err != nil {
				t.Fatal(err)
			}
			// pdata reads it back into the example's shape.
			req := pprofileotlp.NewExportRequest()
			if p.contentType == contentJSON {
				err = req.UnmarshalJSON(body)
			} else {
				err = req.UnmarshalProto(body)
			}
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			pd := req.Profiles()
			if n, samples := pd.ProfileCount(), pd.SampleCount(); n != 2 || samples != 5 {
				t.Errorf("%d profiles with %d samples, want 2 with 5", n, samples)
			}
			if name, _ := pd.ResourceProfiles().At(1).Resource().Attributes().Get("service.name"); name.Str() != "inventory" {
				t.Errorf("second resource's service.name %q, want inventory", name.Str())
			}

			s := newTestServer(t, Options{})
			status, _, out := post(t, s.url+Paths[0], p.contentType, nil, body)
			if status != http.StatusOK {
				t.Fatalf("status %d: %q", status, out)
			}
			if ps := decodeResponse(t, out, p.contentType == contentJSON).PartialSuccess(); ps.RejectedProfiles() != 0 {
				t.Errorf("%d refused: %s", ps.RejectedProfiles(), ps.ErrorMessage())
			}
			checkExampleStored(t, s.eng, "anonymous")
		})
	}
}

// Payloads of older layouts of the profiles proto, written field by field
// from the proto of each version, since pdata v1.71.0 can only write its
// own. They show what a sender on an older proto gets.

func field(b []byte, num protowire.Number, msg []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, msg)
}

func varintField(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func packedField(b []byte, num protowire.Number, vs ...uint64) []byte {
	var p []byte
	for _, v := range vs {
		p = protowire.AppendVarint(p, v)
	}
	return field(b, num, p)
}

// oldDictionary is a ProfilesDictionary with the fields that 1.7 to 1.10
// number alike: one function main.main at one location.
func oldDictionary() []byte {
	var d []byte
	for _, s := range []string{"", "cpu", "nanoseconds", "main.main"} {
		d = field(d, 5, []byte(s)) // string_table
	}
	d = field(d, 3, nil)                                   // function_table[0]
	d = field(d, 3, varintField(nil, 1, 3))                // function_table[1]: name_strindex
	d = field(d, 2, nil)                                   // location_table[0]
	d = field(d, 2, field(nil, 3, varintField(nil, 1, 1))) // location_table[1]: line{function_index}
	return d
}

func oldRequest(profile []byte, dict []byte) []byte {
	sp := field(nil, 2, profile)             // ScopeProfiles.profiles
	rp := field(nil, 2, sp)                  // ResourceProfiles.scope_profiles
	return field(field(nil, 1, rp), 2, dict) // resource_profiles, dictionary
}

// TestOlderLayouts: a 1.7.0 payload does not decode (its fields change
// wire type under 1.10's numbers) and gets 400; a 1.9.0 sample, whose
// values 1.10 reads as attribute indices, is refused with a hint rather
// than stored without values.
func TestOlderLayouts(t *testing.T) {
	vt := varintField(varintField(nil, 1, 1), 2, 2) // ValueType cpu/nanoseconds

	// 1.7.0: Profile{sample_type=1, sample=2, location_indices=3,
	// time_nanos=4}, Sample{locations_start_index=1, locations_length=2,
	// values=3}.
	s17 := packedField(varintField(varintField(nil, 1, 0), 2, 1), 3, 100)
	p17 := varintField(packedField(field(field(nil, 1, vt), 2, s17), 3, 1), 4, uint64(t0.UnixNano()))

	// 1.9.0: Profile as in 1.10 (sample_type=1, samples=2,
	// time_unix_nano=3 as fixed64); Sample{stack_index=1, values=2,
	// attribute_indices=3, link_index=4}; a stack table (field 7).
	s19 := packedField(varintField(nil, 1, 1), 2, 100)
	p19 := protowire.AppendTag(field(field(nil, 1, vt), 2, s19), 3, protowire.Fixed64Type)
	p19 = protowire.AppendFixed64(p19, uint64(t0.UnixNano())) // time_unix_nano
	d19 := field(field(oldDictionary(), 7, nil), 7, packedField(nil, 1, 1))
	// With link_index 1 (field 4) and a link table to match.
	s19link := varintField(s19, 4, 1)
	p19link := protowire.AppendTag(field(field(nil, 1, vt), 2, s19link), 3, protowire.Fixed64Type)
	p19link = protowire.AppendFixed64(p19link, uint64(t0.UnixNano()))
	d19link := field(field(d19, 4, nil), 4, field(nil, 1, make([]byte, 16)))

	for _, tc := range []struct {
		name    string
		body    []byte
		status  int
		message string
	}{
		{"1.7.0", oldRequest(p17, oldDictionary()), http.StatusBadRequest, "wrong wireType"},
		{"1.9.0", oldRequest(p19, d19), http.StatusOK, "neither values nor timestamps"},
		{"1.9.0 with a link", oldRequest(p19link, d19link), http.StatusOK, "attribute index 100 is out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestServer(t, Options{})
			status, _, out := post(t, s.url+Paths[0], contentProtobuf, nil, tc.body)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %q", status, tc.status, out)
			}
			var msg string
			if status == http.StatusOK {
				ps := decodeResponse(t, out, false).PartialSuccess()
				if ps.RejectedProfiles() != 1 {
					t.Errorf("%d profiles refused, want 1", ps.RejectedProfiles())
				}
				msg = ps.ErrorMessage()
			} else {
				msg = statusMessage(t, contentProtobuf, out).Message
			}
			if !strings.Contains(msg, tc.message) {
				t.Errorf("message %q lacks %q", msg, tc.message)
			}
			if types, err := s.eng.ProfileTypes(context.Background(), request("{}")); err != nil || len(types) != 0 {
				t.Errorf("stored %v (err %v), want nothing", types, err)
			}
		})
	}
}

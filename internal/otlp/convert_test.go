package otlp

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	gpprof "github.com/google/pprof/profile"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pprofile"

	"github.com/hearth-profiler/hearth/internal/ingest"
	"github.com/hearth-profiler/hearth/internal/otlp/otlptest"
	"github.com/hearth-profiler/hearth/internal/profiletest"
)

func TestSanitizeLabelName(t *testing.T) {
	for key, want := range map[string]string{
		"service.name":                "service_name",
		"service_name":                "service_name",
		"deployment.environment.name": "deployment_environment_name",
		"k8s.pod.name":                "k8s_pod_name",
		"http.route":                  "http_route",
		"3rd.party":                   "_3rd_party",
		"über-host":                   "_ber_host", // both bytes of ü become "_", then one "_" leads
		"__name__":                    "_name__",
		"__":                          "_",
		"a b/c":                       "a_b_c",
		"":                            "",
	} {
		if got := sanitizeLabelName(key); got != want {
			t.Errorf("sanitizeLabelName(%q) = %q, want %q", key, got, want)
		}
	}
}

// TestSeriesLabels: how resource and scope attributes become series labels.
func TestSeriesLabels(t *testing.T) {
	c := newConverter(pprofile.NewProfilesDictionary(), DefaultLimits())
	res := pcommon.NewMap()
	res.PutStr("service_name", "impostor") // loses to service.name
	res.PutStr("service.name", "checkout")
	res.PutInt("process.pid", 4242)
	res.PutBool("host.virtual", true)
	res.PutDouble("sample.ratio", 0.25)
	res.PutEmptySlice("process.command_args").FromRaw([]any{"checkout", "-v"})
	res.PutStr("empty", "")
	scope := pcommon.NewInstrumentationScope()
	scope.SetName("ebpf-profiler")
	scope.Attributes().PutStr("process.pid", "from scope") // the resource's wins
	scope.Attributes().PutStr("profiler.mode", "sampling")
	got := c.seriesLabels(res, scope).Map()
	want := map[string]string{
		"service_name":         "checkout",
		"process_pid":          "4242",
		"host_virtual":         "true",
		"sample_ratio":         "0.25",
		"process_command_args": `["checkout","-v"]`,
		"profiler_mode":        "sampling",
		"otel_scope_name":      "ebpf-profiler",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("series labels differ (-want +got):\n%s", diff)
	}

	got = c.seriesLabels(pcommon.NewMap(), pcommon.NewInstrumentationScope()).Map()
	if diff := cmp.Diff(map[string]string{"service_name": UnknownService}, got); diff != "" {
		t.Errorf("without attributes (-want +got):\n%s", diff)
	}
}

// TestConvertMerge: profiles of one scope that share time and period merge
// into one pprof profile with a sample type each; the others stay apart,
// and a bad one is refused alone.
func TestConvertMerge(t *testing.T) {
	b := otlptest.NewBuilder()
	d := b.Dictionary()
	f := d.FunctionTable().AppendEmpty()
	f.SetNameStrindex(b.Str("main.work"))
	l := d.LocationTable().AppendEmpty()
	l.Lines().AppendEmpty().SetFunctionIndex(1)
	f = d.FunctionTable().AppendEmpty()
	f.SetNameStrindex(b.Str("main.rest"))
	l = d.LocationTable().AppendEmpty()
	l.Lines().AppendEmpty().SetFunctionIndex(2)
	work, rest := b.Stack([]int32{1}), b.Stack([]int32{2})
	sp := b.Scope(map[string]any{"service.name": "svc"}, "")
	add := func(typ, unit string, at time.Time, samples map[int32]int64) pprofile.Profile {
		p := sp.Profiles().AppendEmpty()
		p.SampleType().SetTypeStrindex(b.Str(typ))
		p.SampleType().SetUnitStrindex(b.Str(unit))
		p.PeriodType().SetTypeStrindex(b.Str("cpu"))
		p.PeriodType().SetUnitStrindex(b.Str("nanoseconds"))
		p.SetPeriod(10_000_000)
		p.SetTime(pcommon.NewTimestampFromTime(at))
		for _, st := range []int32{work, rest} {
			if v, ok := samples[st]; ok {
				s := p.Samples().AppendEmpty()
				s.SetStackIndex(st)
				s.Values().Append(v)
			}
		}
		return p
	}
	add("samples", "count", t0, map[int32]int64{work: 3, rest: 1})              // [0]
	add("cpu", "nanoseconds", t0, map[int32]int64{work: 30_000_000})            // [1]
	add("cpu", "nanoseconds", t0.Add(10*time.Second), map[int32]int64{rest: 5}) // [2]: another time
	add("cpu", "nanoseconds", t0, map[int32]int64{rest: 7})                     // [3]: cpu again at t0
	bad := add("wall", "nanoseconds", t0, map[int32]int64{work: 1})             // [4]: bad stack
	bad.Samples().At(0).SetStackIndex(99)
	sp.Profiles().AppendEmpty() // [5]: empty

	conv := Convert(b.Profiles(), DefaultLimits())
	type result struct {
		Where  []string
		Types  []string
		Stacks []profiletest.Stacks
		Err    string
	}
	var got []result
	for _, cv := range conv {
		r := result{Where: cv.Where}
		if cv.Err != nil {
			r.Err = cv.Err.Error()
		}
		if cv.Request != nil {
			p := cv.Request.Parsed
			if err := p.CheckValid(); err != nil {
				t.Errorf("%v: invalid pprof: %v", cv.Where, err)
			}
			for i, st := range p.SampleType {
				r.Types = append(r.Types, st.Type)
				r.Stacks = append(r.Stacks, profiletest.ProfileStacks(p, i))
			}
		}
		got = append(got, r)
	}
	const at = "resource_profiles[0].scope_profiles[0].profiles"
	want := []result{
		{Where: []string{at + "[5]"}}, // nothing to store: answered at once
		{Where: []string{at + "[4]"}, Err: "sample 0: stack index 99 is out of range (the stack table has 3 entries)"},
		{Where: []string{at + "[0]", at + "[1]"}, Types: []string{"samples", "cpu"}, Stacks: []profiletest.Stacks{
			{"main.work": 3, "main.rest": 1},
			{"main.work": 30_000_000},
		}},
		{Where: []string{at + "[2]"}, Types: []string{"cpu"}, Stacks: []profiletest.Stacks{{"main.rest": 5}}},
		{Where: []string{at + "[3]"}, Types: []string{"cpu"}, Stacks: []profiletest.Stacks{{"main.rest": 7}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("conversion differs (-want +got):\n%s", diff)
	}
}

// TestConvertRefusals: each broken reference refuses its profile with an
// input error that names it, and leaves a good profile of the same
// request to convert.
func TestConvertRefusals(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(pd pprofile.Profiles)
		msg    string
		reason ingest.Reason
	}{
		{"stack index", func(pd pprofile.Profiles) { cpuProfile(pd).Samples().At(0).SetStackIndex(-1) }, "stack index -1 is out of range", ingest.ReasonBadData},
		{"location index", func(pd pprofile.Profiles) {
			pd.Dictionary().StackTable().At(1).LocationIndices().Append(1000)
		}, "stack 1, frame 3: location index 1000 is out of range", ingest.ReasonBadData},
		{"function index", func(pd pprofile.Profiles) {
			pd.Dictionary().LocationTable().At(1).Lines().At(0).SetFunctionIndex(77)
		}, "line 0: function index 77 is out of range", ingest.ReasonBadData},
		{"function name", func(pd pprofile.Profiles) {
			pd.Dictionary().FunctionTable().At(1).SetNameStrindex(5000)
		}, "function 1 name: string index 5000 is out of range", ingest.ReasonBadData},
		{"mapping index", func(pd pprofile.Profiles) { pd.Dictionary().LocationTable().At(1).SetMappingIndex(9) }, "mapping index 9 is out of range", ingest.ReasonBadData},
		{"mapping file", func(pd pprofile.Profiles) { pd.Dictionary().MappingTable().At(1).SetFilenameStrindex(-3) }, "mapping 1 filename: string index -3", ingest.ReasonBadData},
		{"attribute index", func(pd pprofile.Profiles) { cpuProfile(pd).Samples().At(1).AttributeIndices().Append(400) }, "sample 1: attribute 1: attribute index 400 is out of range", ingest.ReasonBadData},
		{"attribute key", func(pd pprofile.Profiles) { pd.Dictionary().AttributeTable().At(2).SetKeyStrindex(300) }, "attribute 2 key: string index 300", ingest.ReasonBadData},
		{"link index", func(pd pprofile.Profiles) { cpuProfile(pd).Samples().At(0).SetLinkIndex(12) }, "link index 12 is out of range", ingest.ReasonBadData},
		{"period type", func(pd pprofile.Profiles) { cpuProfile(pd).PeriodType().SetUnitStrindex(1 << 20) }, "period type unit: string index 1048576", ingest.ReasonBadData},
		{"sample type", func(pd pprofile.Profiles) { cpuProfile(pd).SampleType().SetTypeStrindex(0) }, "sample type has no name", ingest.ReasonBadData},
		{"values and timestamps", func(pd pprofile.Profiles) {
			cpuProfile(pd).Samples().At(2).TimestampsUnixNano().Append(1)
		}, "sample 2: sample has 2 values but 3 timestamps", ingest.ReasonBadData},
		{"no values", func(pd pprofile.Profiles) {
			cpuProfile(pd).Samples().At(1).Values().FromRaw(nil)
		}, "neither values nor timestamps", ingest.ReasonBadData},
		{"overflow", func(pd pprofile.Profiles) {
			cpuProfile(pd).Samples().At(2).Values().FromRaw([]int64{1 << 62, 1 << 62})
		}, "sample values overflow int64", ingest.ReasonBadData},
		{"time", func(pd pprofile.Profiles) { cpuProfile(pd).SetTime(pcommon.Timestamp(1 << 63)) }, "past the year 2262", ingest.ReasonBadData},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pd := exampleProfiles()
			tc.break_(pd)
			conv := Convert(pd, DefaultLimits())
			var refused, stored int
			for _, cv := range conv {
				if cv.Err != nil {
					refused++
					var ie *ingest.InputError
					if !errors.As(cv.Err, &ie) || ie.Reason != tc.reason {
						t.Errorf("refusal %v is not an input error of reason %v", cv.Err, tc.reason)
					}
					if !strings.Contains(cv.Err.Error(), tc.msg) {
						t.Errorf("refusal %q lacks %q", cv.Err, tc.msg)
					}
				}
				if cv.Request != nil {
					stored++
				}
			}
			// Each case breaks the checkout profile; the inventory profile
			// converts, unless the break is in what it shares with checkout
			// (main.main's location, function and mapping).
			if refused == 0 || refused+stored != 2 {
				t.Errorf("%d refused and %d converted of 2 profiles", refused, stored)
			}
		})
	}
}

// cpuProfile is the checkout CPU profile of exampleProfiles.
func cpuProfile(pd pprofile.Profiles) pprofile.Profile {
	return pd.ResourceProfiles().At(0).ScopeProfiles().At(0).Profiles().At(0)
}

// TestConvertLimits: samples and frames past a request's limits refuse the
// profiles that go over, as too large, and not the ones before.
func TestConvertLimits(t *testing.T) {
	for _, tc := range []struct {
		lim  Limits
		msg  string
		kept int
	}{
		{Limits{MaxSamples: 3, MaxFrames: 1000}, "2 samples would take the request over its limit of 3 samples", 1},
		{Limits{MaxSamples: 100, MaxFrames: 9}, "the request's stacks hold more than 9 frames", 1},
		{Limits{MaxSamples: 100, MaxFrames: 6}, "more than 6 frames", 0},
	} {
		conv := Convert(exampleProfiles(), tc.lim)
		kept := 0
		var errs []string
		for _, cv := range conv {
			if cv.Request != nil {
				kept++
			}
			if cv.Err != nil {
				var ie *ingest.InputError
				if !errors.As(cv.Err, &ie) || ie.Reason != ingest.ReasonTooLarge {
					t.Errorf("%+v: refusal %v is not %v", tc.lim, cv.Err, ingest.ReasonTooLarge)
				}
				errs = append(errs, cv.Err.Error())
			}
		}
		if kept != tc.kept || !strings.Contains(strings.Join(errs, "\n"), tc.msg) {
			t.Errorf("%+v: kept %d profiles (want %d), refusals %q (want one with %q)", tc.lim, kept, tc.kept, errs, tc.msg)
		}
	}
}

// TestConvertSampleLabels: what a sample's labels become in pprof, per
// attribute type, and a link's IDs.
func TestConvertSampleLabels(t *testing.T) {
	b := otlptest.NewBuilder()
	b.Dictionary().LocationTable().AppendEmpty()
	st := b.Stack([]int32{1})
	sp := b.Scope(map[string]any{"service.name": "svc"}, "")
	p := sp.Profiles().AppendEmpty()
	p.SampleType().SetTypeStrindex(b.Str("alloc_space"))
	p.SampleType().SetUnitStrindex(b.Str("bytes"))
	p.AttributeIndices().Append(b.Attr("http.route", "/cart", ""))
	s := p.Samples().AppendEmpty()
	s.SetStackIndex(st)
	s.Values().Append(512)
	s.AttributeIndices().FromRaw([]int32{
		b.Attr("thread.name", "worker-1", ""),
		b.Attr("thread.id", int64(7), ""),     // an identifier: a string label
		b.Attr("bytes", int64(4096), "bytes"), // a measurement: numeric
		b.Attr("cache.hit", true, ""),
		b.Attr("http.route", "/checkout", ""), // the sample's wins over the profile's
	})
	s.SetLinkIndex(b.Link(traceA, spanA))

	conv := Convert(b.Profiles(), DefaultLimits())
	if len(conv) != 1 || conv[0].Err != nil {
		t.Fatalf("conversion: %+v", conv)
	}
	got := conv[0].Request.Parsed.Sample[0]
	want := &gpprof.Sample{
		Value: []int64{512},
		Label: map[string][]string{
			"thread_name": {"worker-1"},
			"thread_id":   {"7"},
			"cache_hit":   {"true"},
			"http_route":  {"/checkout"},
			"trace_id":    {"4bf92f3577b34da6a3ce929d0e0e4736"},
			"span_id":     {"00f067aa0ba902b7"},
		},
		NumLabel: map[string][]int64{"bytes": {4096}},
		NumUnit:  map[string][]string{"bytes": {"bytes"}},
	}
	if diff := cmp.Diff(want, got, cmp.FilterPath(func(p cmp.Path) bool {
		return p.Last().String() == ".Location"
	}, cmp.Ignore()), cmp.AllowUnexported(gpprof.Sample{})); diff != "" {
		t.Errorf("sample differs (-want +got):\n%s", diff)
	}
}

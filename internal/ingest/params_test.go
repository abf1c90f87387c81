package ingest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	sec := time.Unix(1577836800, 0).UTC() // 2020-01-01T00:00:00Z
	for _, tc := range []struct {
		in      string
		want    time.Time
		wantErr string
	}{
		// What the pyroscope-go SDK sends: Unix nanoseconds.
		{in: "1795683923670190125", want: time.Unix(0, 1795683923670190125)},
		{in: "1795683923000000000", want: time.Unix(1795683923, 0)},
		// Pyroscope's own cases.
		{in: "1577836800", want: sec},
		{in: "1577836800001", want: sec.Add(time.Millisecond)},
		{in: "1577836800000001", want: sec.Add(time.Microsecond)},
		{in: "1577836800000000001", want: sec.Add(time.Nanosecond)},
		{in: "20200101", want: sec},
		{in: " 1577836800 ", want: sec},
		{in: "0", want: time.Unix(0, 0)},
		{in: "99999999999", want: time.Unix(99999999999, 0)},
		{in: "100000000000", want: time.UnixMilli(100000000000)},
		{in: "9223372036854775807", want: time.Unix(0, 9223372036854775807)},
		{in: "now", want: now},
		{in: "now-1s", want: now.Add(-time.Second)},
		{in: "now+1s", want: now.Add(time.Second)},
		{in: "now-1min", want: now.Add(-time.Minute)},
		{in: "now-30m", want: now.Add(-30 * time.Minute)},
		{in: "now-1h", want: now.Add(-time.Hour)},
		{in: "now-2hours", want: now.Add(-2 * time.Hour)},
		{in: "now-7d", want: now.Add(-7 * 24 * time.Hour)},
		{in: "now-1w", want: now.Add(-7 * 24 * time.Hour)},
		{in: "now-1mon", want: now.Add(-30 * 24 * time.Hour)},
		{in: "now-1M", want: now.Add(-30 * 24 * time.Hour)},
		{in: "now-1y", want: now.Add(-365 * 24 * time.Hour)},
		{in: "now-1h30m", want: now.Add(-90 * time.Minute)},
		{in: "now-1h+5m", want: now.Add(-55 * time.Minute)},
		{in: "2024-05-01T12:00:00Z", want: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)},
		{in: "2024-05-01T14:00:00.5+02:00", want: time.Date(2024, 5, 1, 12, 0, 0, 5e8, time.UTC)},
		{in: "", wantErr: "empty time"},
		{in: "9223372036854775808", wantErr: "out of range"},
		{in: "now-1", wantErr: "offset 1 has no unit"},
		{in: "now-1x", wantErr: `unknown unit "x"`},
		{in: "now 1h", wantErr: "%2B"},
		{in: "now1h", wantErr: `want "+" or "-" after "now"`},
		{in: "now-", wantErr: `want a number at ""`},
		{in: "now-h", wantErr: `want a number at "h"`},
		{in: "now-9223372036854775807y", wantErr: "out of range"},
		{in: "now-99999999999999999999s", wantErr: "out of range"},
		{in: "now-292y-292y", wantErr: "offset out of range"},
		{in: "-1577836800", wantErr: "want a Unix time"},
		{in: "1577836800.5", wantErr: "want a Unix time"},
		{in: "yesterday", wantErr: "want a Unix time"},
		{in: "2024-05-01", wantErr: "want a Unix time"},
	} {
		got, err := ParseTime(tc.in, now)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseTime(%q): got %v, %v, want an error containing %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("ParseTime(%q): got %v, %v, want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseUnits(t *testing.T) {
	for in, want := range map[string]Units{
		"":                 UnitsSamples,
		"samples":          UnitsSamples,
		"objects":          UnitsObjects,
		"bytes":            UnitsBytes,
		"goroutines":       UnitsGoroutines,
		"lock_nanoseconds": UnitsLockNanoseconds,
		"lock_samples":     UnitsLockSamples,
	} {
		if got, err := ParseUnits(in); err != nil || got != want {
			t.Errorf("ParseUnits(%q): got %q, %v, want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"Samples", "nanoseconds", "exceptions", " samples"} {
		if got, err := ParseUnits(in); err == nil {
			t.Errorf("ParseUnits(%q): got %q, want an error", in, got)
		}
	}
}

func TestParseAggregationType(t *testing.T) {
	for in, want := range map[string]AggregationType{
		"":        AggregationSum,
		"sum":     AggregationSum,
		"average": AggregationAverage,
		"avg":     AggregationAverage,
	} {
		if got, err := ParseAggregationType(in); err != nil || got != want {
			t.Errorf("ParseAggregationType(%q): got %q, %v, want %q", in, got, err, want)
		}
	}
	if got, err := ParseAggregationType("max"); err == nil || !strings.Contains(err.Error(), `unknown aggregation type "max"`) {
		t.Errorf("ParseAggregationType(%q): got %q, %v, want an error", "max", got, err)
	}
}

type sampleTypeConfigCase struct {
	name    string
	in      string
	want    SampleTypeConfig
	wantErr string // substring of the error; "" means success
}

// sampleTypeConfigCases also seed FuzzParseSampleTypeConfig. The first ones
// are what the pyroscope-go SDK v1.5.0 really sent, byte for byte.
var sampleTypeConfigCases = []sampleTypeConfigCase{
	{
		name: "SDK heap",
		in:   `{"alloc_objects":{"units":"objects"},"alloc_space":{"units":"bytes"},"inuse_objects":{"units":"objects","aggregation":"average"},"inuse_space":{"units":"bytes","aggregation":"average"}}`,
		want: SampleTypeConfig{
			"alloc_objects": {Units: "objects"},
			"alloc_space":   {Units: "bytes"},
			"inuse_objects": {Units: "objects", Aggregation: "average"},
			"inuse_space":   {Units: "bytes", Aggregation: "average"},
		},
	},
	{
		name: "SDK mutex",
		in:   `{"contentions":{"units":"lock_samples","display-name":"mutex_count"},"delay":{"units":"lock_nanoseconds","display-name":"mutex_duration"}}`,
		want: SampleTypeConfig{
			"contentions": {Units: "lock_samples", DisplayName: "mutex_count"},
			"delay":       {Units: "lock_nanoseconds", DisplayName: "mutex_duration"},
		},
	},
	{
		name: "SDK block",
		in:   `{"contentions":{"units":"lock_samples","display-name":"block_count"},"delay":{"units":"lock_nanoseconds","display-name":"block_duration"}}`,
		want: SampleTypeConfig{
			"contentions": {Units: "lock_samples", DisplayName: "block_count"},
			"delay":       {Units: "lock_nanoseconds", DisplayName: "block_duration"},
		},
	},
	{
		name: "SDK goroutine",
		in:   `{"goroutine":{"units":"goroutines","aggregation":"average","display-name":"goroutine"}}`,
		want: SampleTypeConfig{"goroutine": {Units: "goroutines", Aggregation: "average", DisplayName: "goroutine"}},
	},
	{
		name: "Pyroscope .NET profiler",
		in:   `{"alloc-samples":{"units":"objects","display-name":"alloc_objects"},"cpu":{"units":"samples","sampled":true},"exception":{"units":"exceptions","display-name":"exceptions"}}`,
		want: SampleTypeConfig{
			"alloc-samples": {Units: "objects", DisplayName: "alloc_objects"},
			"cpu":           {Units: "samples", Sampled: true},
			"exception":     {Units: "exceptions", DisplayName: "exceptions"},
		},
	},
	{
		name: "cumulative, avg and unknown fields",
		in:   "\n{\"alloc_space\":{\"units\":\"bytes\",\"cumulative\":true,\"future\":[1,2]},\"inuse_space\":{\"units\":\"bytes\",\"aggregation\":\"avg\"}}\n",
		want: SampleTypeConfig{
			"alloc_space": {Units: "bytes", Cumulative: true},
			"inuse_space": {Units: "bytes", Aggregation: "average"},
		},
	},
	{name: "empty object", in: `{}`, want: SampleTypeConfig{}},
	{name: "empty entry", in: `{"samples":{}}`, want: SampleTypeConfig{"samples": {}}},
	{name: "empty", in: "", wantErr: "sample_type_config is empty"},
	{name: "blank", in: " \n", wantErr: "sample_type_config is empty"},
	{name: "null", in: "null", wantErr: "offset 0: want a JSON object"},
	{name: "array", in: " []", wantErr: "offset 1: want a JSON object"},
	{name: "syntax", in: `{"a":{"units":"bytes",}}`, wantErr: "sample_type_config: offset 22: invalid character '}'"},
	{name: "truncated", in: `{"a":{"units":"by`, wantErr: "sample_type_config: offset 17: unexpected end of JSON input"},
	{name: "trailing data", in: `{} {}`, wantErr: "offset 3: invalid character '{' after top-level value"},
	{name: "entries not objects", in: `[{"units":"bytes"}]`, wantErr: `offset 0: want a JSON object`},
	{name: "entry not an object", in: `{"a":5}`, wantErr: `sample_type_config: sample type "a": found a JSON number, want an object`},
	{name: "units not a string", in: `{"a":{"units":5}}`, wantErr: `sample type "a": field "units" is a JSON number, want a string`},
	{name: "sampled not a bool", in: `{"a":{"sampled":"yes"}}`, wantErr: `sample type "a": field "sampled" is a JSON string, want true or false`},
	{name: "null entry", in: `{"a":null}`, wantErr: `sample type "a": entry is null`},
	{name: "empty name", in: `{"":{"units":"bytes"}}`, wantErr: "empty sample type name"},
	{name: "bad aggregation", in: `{"a":{"aggregation":"max"}}`, wantErr: `sample type "a": unknown aggregation type "max"`},
	{name: "too large", in: `{"a":{"units":"` + strings.Repeat("x", MaxSampleTypeConfigBytes) + `"}}`, wantErr: "is larger than 65536 bytes"},
}

func TestParseSampleTypeConfig(t *testing.T) {
	for _, tc := range sampleTypeConfigCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSampleTypeConfig([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseSampleTypeConfig(%.80q): got error %v, want one containing %q", tc.in, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSampleTypeConfig(%q): got error %v, want none", tc.in, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseSampleTypeConfig(%q) mismatch (-want +got):\n%s", tc.in, diff)
			}
		})
	}
}

func TestParseSampleTypeConfigLimit(t *testing.T) {
	in := make([]byte, MaxSampleTypeConfigBytes+1)
	if _, err := ParseSampleTypeConfig(in); !errors.Is(err, ErrLimitExceeded) {
		t.Errorf("ParseSampleTypeConfig of %d bytes: got %v, want an error matching ErrLimitExceeded", len(in), err)
	}
}

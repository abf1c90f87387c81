package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ParseTime parses the "from" or "until" query parameter of a Pyroscope
// ingest request. It accepts
//
//   - a Unix time as a decimal integer, whose unit is guessed from its
//     magnitude: below 1e11 seconds, below 1e14 milliseconds, below 1e17
//     microseconds, else nanoseconds (the pyroscope-go SDK sends
//     nanoseconds). Pyroscope counts digits instead (13 for milliseconds,
//     16 for microseconds, 19 for nanoseconds); the two agree on every time
//     from 2001 to 2286;
//   - eight digits, YYYYMMDD, as a UTC date (Pyroscope reads them so too);
//   - "now", optionally followed by signed offsets with units s, m, h, d, w, M
//     (30 days) or y (365 days), or their longer names (min, hour, day, week,
//     mon, month, year, ...): "now-1h", "now-30m", "now-7d", "now-1h30m",
//     "now+5m"; an offset without a sign takes the sign before it;
//   - an RFC 3339 time, "2024-05-01T12:00:00Z".
//
// Unix times and dates come back in UTC, relative times in the location of
// now. An empty s is an error: the caller decides what a missing parameter
// means (Pyroscope takes the time of the request).
func ParseTime(s string, now time.Time) (time.Time, error) {
	t := strings.TrimSpace(s)
	switch {
	case t == "":
		return time.Time{}, errors.New("empty time")
	case isDigits(t):
		return parseUnixTime(t)
	case strings.HasPrefix(t, "now"):
		d, err := parseTimeOffset(t[len("now"):])
		if err != nil {
			return time.Time{}, fmt.Errorf("time %s: %w", quoteTrunc([]byte(s)), err)
		}
		return now.Add(d), nil
	}
	if tm, err := time.Parse(time.RFC3339Nano, t); err == nil {
		return tm, nil
	}
	return time.Time{}, fmt.Errorf("time %s: want a Unix time in s, ms, µs or ns, now-1h or another offset from now, or RFC 3339", quoteTrunc([]byte(s)))
}

// parseUnixTime parses a string of digits.
func parseUnixTime(t string) (time.Time, error) {
	if len(t) == 8 {
		if d, err := time.Parse("20060102", t); err == nil && d.Year() > 1900 {
			return d, nil
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %s: Unix time out of range", quoteTrunc([]byte(t)))
	}
	switch {
	case v < 1e11:
		return time.Unix(v, 0).UTC(), nil
	case v < 1e14:
		return time.UnixMilli(v).UTC(), nil
	case v < 1e17:
		return time.UnixMicro(v).UTC(), nil
	}
	return time.Unix(0, v).UTC(), nil
}

// timeUnits are the units of offsets from now; a month is 30 days and a year
// 365 days, as in Pyroscope and Graphite.
var timeUnits = map[string]time.Duration{
	"s": time.Second, "sec": time.Second, "secs": time.Second, "second": time.Second, "seconds": time.Second,
	"m": time.Minute, "min": time.Minute, "mins": time.Minute, "minute": time.Minute, "minutes": time.Minute,
	"h": time.Hour, "hour": time.Hour, "hours": time.Hour,
	"d": 24 * time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour,
	"w": 7 * 24 * time.Hour, "week": 7 * 24 * time.Hour, "weeks": 7 * 24 * time.Hour,
	"M": 30 * 24 * time.Hour, "mon": 30 * 24 * time.Hour, "month": 30 * 24 * time.Hour, "months": 30 * 24 * time.Hour,
	"y": 365 * 24 * time.Hour, "year": 365 * 24 * time.Hour, "years": 365 * 24 * time.Hour,
}

// parseTimeOffset parses what follows "now": "", or terms like "-1h30m".
func parseTimeOffset(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	if s[0] == ' ' {
		// A "+" in a URL query decodes to a space.
		return 0, errors.New(`want "+" or "-" after "now" (write "+" as %2B in a URL query)`)
	}
	var total time.Duration
	sign := time.Duration(0)
	for s != "" {
		switch s[0] {
		case '+':
			sign, s = 1, s[1:]
		case '-':
			sign, s = -1, s[1:]
		}
		if sign == 0 {
			return 0, errors.New(`want "+" or "-" after "now"`)
		}
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("want a number at %s", quoteTrunc([]byte(s)))
		}
		n, err := strconv.ParseInt(s[:i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("offset %s out of range", s[:i])
		}
		s = s[i:]
		j := 0
		for j < len(s) && (s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z') {
			j++
		}
		name := s[:j]
		unit, ok := timeUnits[name]
		if !ok {
			if j == 0 {
				return 0, fmt.Errorf("offset %d has no unit (want s, m, h, d, w, M or y)", n)
			}
			return 0, fmt.Errorf("unknown unit %s (want s, m, h, d, w, M or y)", quoteTrunc([]byte(name)))
		}
		s = s[j:]
		if n > math.MaxInt64/int64(unit) {
			return 0, fmt.Errorf("offset %d%s out of range", n, name)
		}
		d := sign * time.Duration(n) * unit
		if (d > 0 && total > math.MaxInt64-d) || (d < 0 && total < math.MinInt64-d) {
			return 0, errors.New("offset out of range")
		}
		total += d
	}
	return total, nil
}

// isDigits reports whether s is a non-empty string of ASCII digits.
func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// Units is the unit of the values of a non-pprof Pyroscope upload (the
// "units" query parameter).
type Units string

// The units Pyroscope knows.
const (
	UnitsSamples         Units = "samples"
	UnitsObjects         Units = "objects"
	UnitsBytes           Units = "bytes"
	UnitsGoroutines      Units = "goroutines"
	UnitsLockNanoseconds Units = "lock_nanoseconds"
	UnitsLockSamples     Units = "lock_samples"
)

// ParseUnits parses the "units" query parameter. An empty s means
// UnitsSamples, Pyroscope's default: the pyroscope-go SDK sends "units=" for
// its heap, mutex and block uploads, which are pprof and carry their own
// units.
func ParseUnits(s string) (Units, error) {
	switch u := Units(s); u {
	case "":
		return UnitsSamples, nil
	case UnitsSamples, UnitsObjects, UnitsBytes, UnitsGoroutines, UnitsLockNanoseconds, UnitsLockSamples:
		return u, nil
	}
	return "", fmt.Errorf("unknown units %s: want samples, objects, bytes, goroutines, lock_nanoseconds or lock_samples", quoteTrunc([]byte(s)))
}

// AggregationType says how the values of one series combine over time: summed
// (CPU samples, allocations) or averaged (in-use memory, goroutines).
type AggregationType string

// The aggregation types Pyroscope knows.
const (
	AggregationSum     AggregationType = "sum"
	AggregationAverage AggregationType = "average"
)

// ParseAggregationType parses the "aggregationType" query parameter or the
// "aggregation" field of a sample type configuration. An empty s means
// AggregationSum, Pyroscope's default; "avg", which Pyroscope's own default
// sample type configuration uses, means AggregationAverage.
func ParseAggregationType(s string) (AggregationType, error) {
	switch s {
	case "", "sum":
		return AggregationSum, nil
	case "average", "avg":
		return AggregationAverage, nil
	}
	return "", fmt.Errorf("unknown aggregation type %s: want sum or average", quoteTrunc([]byte(s)))
}

// MaxSampleTypeConfigBytes is the largest sample type configuration
// ParseSampleTypeConfig accepts. The pyroscope-go SDK's largest is about
// 200 bytes.
const MaxSampleTypeConfigBytes = 64 << 10

// SampleTypeConfig is the "sample_type_config" part of a pprof upload: for
// each pprof sample type (such as "alloc_space" or "contentions"), how to
// read it. The pyroscope-go SDK sends, for its heap profile,
//
//	{"alloc_objects":{"units":"objects"},"alloc_space":{"units":"bytes"},
//	 "inuse_objects":{"units":"objects","aggregation":"average"},
//	 "inuse_space":{"units":"bytes","aggregation":"average"}}
type SampleTypeConfig map[string]*SampleTypeConfigEntry

// SampleTypeConfigEntry describes one pprof sample type. The JSON names are
// those of the pyroscope-go SDK's upstream.SampleType.
type SampleTypeConfigEntry struct {
	// Units is one of the Units values for the SDKs Hearth knows, but is not
	// checked: Pyroscope's .NET profiler sends "exceptions".
	Units string `json:"units,omitempty"`
	// Aggregation is "" (sum), "sum" or "average"; ParseSampleTypeConfig
	// turns "avg" into "average".
	Aggregation string `json:"aggregation,omitempty"`
	// DisplayName, when set, replaces the sample type's name: the SDK sends
	// "contentions" as "mutex_count" or "block_count".
	DisplayName string `json:"display-name,omitempty"`
	// Sampled says that the values are samples to scale by the sample rate.
	Sampled bool `json:"sampled,omitempty"`
	// Cumulative says that the values grow since the process started.
	Cumulative bool `json:"cumulative,omitempty"`
}

// ParseSampleTypeConfig decodes a sample type configuration, a JSON object
// with one SampleTypeConfigEntry per sample type. Unknown fields are ignored.
// It rejects input larger than MaxSampleTypeConfigBytes (the error matches
// ErrLimitExceeded), JSON that is not an object of objects, an empty sample
// type name, a null entry and an unknown aggregation; JSON errors give the
// byte offset.
func ParseSampleTypeConfig(data []byte) (SampleTypeConfig, error) {
	if len(data) > MaxSampleTypeConfigBytes {
		return nil, fmt.Errorf("sample_type_config of %d bytes is larger than %d bytes: %w", len(data), MaxSampleTypeConfigBytes, ErrLimitExceeded)
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, errors.New("sample_type_config is empty: want a JSON object")
	}
	if trimmed[0] != '{' {
		return nil, fmt.Errorf("sample_type_config: offset %d: want a JSON object", len(data)-len(trimmed))
	}
	// Unmarshal checks the whole input before it decodes, so its syntax
	// errors have offsets into data. Entries are decoded one by one to name
	// the sample type in their errors.
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("sample_type_config: %w", jsonError(err))
	}
	c := make(SampleTypeConfig, len(raw))
	for _, name := range slices.Sorted(maps.Keys(raw)) {
		if name == "" {
			return nil, errors.New("sample_type_config: empty sample type name")
		}
		var e *SampleTypeConfigEntry
		if err := json.Unmarshal(raw[name], &e); err != nil {
			return nil, fmt.Errorf("sample_type_config: sample type %s: %w", quoteTrunc([]byte(name)), jsonError(err))
		}
		if e == nil {
			return nil, fmt.Errorf("sample_type_config: sample type %s: entry is null, want an object", quoteTrunc([]byte(name)))
		}
		a, err := ParseAggregationType(e.Aggregation)
		if err != nil {
			return nil, fmt.Errorf("sample_type_config: sample type %s: %w", quoteTrunc([]byte(name)), err)
		}
		if e.Aggregation != "" {
			e.Aggregation = string(a)
		}
		c[name] = e
	}
	return c, nil
}

// jsonError rewords an error of json.Unmarshal: syntax errors get the
// offset of the offending byte, type errors the field and the JSON found.
func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		off := syn.Offset
		if strings.HasPrefix(syn.Error(), "invalid character") && off > 0 {
			off-- // the offset of the character, not after it
		}
		return fmt.Errorf("offset %d: %v", off, syn)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return fmt.Errorf("found a JSON %s, want %s", typ.Value, jsonKind(typ.Type.String()))
		}
		return fmt.Errorf("field %q is a JSON %s, want %s", typ.Field, typ.Value, jsonKind(typ.Type.String()))
	}
	return err
}

// jsonKind names a Go type as the JSON it decodes from.
func jsonKind(goType string) string {
	switch {
	case goType == "string":
		return "a string"
	case goType == "bool":
		return "true or false"
	case strings.HasPrefix(goType, "*") || strings.Contains(goType, "SampleTypeConfig"):
		return "an object"
	}
	return goType
}

package ingest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"

	gpprof "github.com/google/pprof/profile"
	"github.com/klauspost/compress/gzip"

	"github.com/hearth-profiler/hearth/internal/labels"
	"github.com/hearth-profiler/hearth/internal/profile"
	"github.com/hearth-profiler/hearth/internal/storage"
)

// InputError is input that Hearth will not store; its message names the
// cause, for the client.
type InputError struct {
	// Kind is "bad_data" for malformed input, "unsupported" for a format
	// Hearth does not read, and "too_large" for input over a limit.
	Kind string
	Msg  string
}

func (e *InputError) Error() string { return e.Msg }

func badData(format string, args ...any) error {
	return &InputError{Kind: "bad_data", Msg: fmt.Sprintf(format, args...)}
}

// ProfileLimits bound one ingested profile.
type ProfileLimits struct {
	// MaxSamples is the most samples one profile may hold.
	MaxSamples int
	// MaxStackDepth is the most frames one stack may hold.
	MaxStackDepth int
	// MaxLabels is the most series labels one profile may carry.
	MaxLabels int
}

// DefaultProfileLimits are generous for real profilers: Go keeps at most
// 128 frames per stack (Java deeper), and a 10 s CPU profile of a busy
// service holds a few thousand distinct samples.
func DefaultProfileLimits() ProfileLimits {
	return ProfileLimits{MaxSamples: 1_000_000, MaxStackDepth: 4096, MaxLabels: 64}
}

// Request is one push in the shape of the Pyroscope ingest API, free of
// HTTP. Times are resolved before a request is logged, so that replaying it
// gives the same result.
type Request struct {
	Name             string // app.kind{k=v,...}
	Format           string // pprof, folded, lines
	From, Until      int64  // unix nanoseconds; 0 when not given
	SampleRate       int64
	SpyName          string
	Units            string
	AggregationType  string
	Profile          []byte
	PrevProfile      []byte
	SampleTypeConfig []byte
}

// Ingester decodes pushes and stores them.
type Ingester struct {
	db     *storage.DB
	limits ProfileLimits
	logger *slog.Logger
	now    func() time.Time
}

// New returns an ingester writing to db.
func New(db *storage.DB, limits ProfileLimits, logger *slog.Logger) *Ingester {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Ingester{db: db, limits: limits, logger: logger, now: time.Now}
}

// Ingest validates and decodes r and stores it for tenant. An *InputError
// says the input was refused; nothing of it was stored.
func (ig *Ingester) Ingest(ctx context.Context, tenant string, r *Request) error {
	inputs, err := Decode(r, ig.limits, ig.now())
	if err != nil {
		return err
	}
	return ig.db.Append(ctx, tenant, EncodeRequest(r), inputs)
}

// Decode turns a request into the inputs storage takes. It fills a missing
// From with now, in r itself, so that the logged request is deterministic.
func Decode(r *Request, lim ProfileLimits, now time.Time) ([]*storage.Input, error) {
	name, err := ParseName(r.Name)
	if err != nil {
		return nil, badData("%v", err)
	}
	if lim.MaxLabels > 0 && name.Labels.Len() > lim.MaxLabels {
		return nil, &InputError{Kind: "too_large", Msg: fmt.Sprintf("name: %d labels is over the limit of %d", name.Labels.Len(), lim.MaxLabels)}
	}
	if err := name.Labels.Validate(); err != nil {
		return nil, badData("name: %v", err)
	}
	if r.From == 0 {
		r.From = now.UnixNano()
	}
	var stc SampleTypeConfig
	if len(r.SampleTypeConfig) > 0 {
		if stc, err = ParseSampleTypeConfig(r.SampleTypeConfig); err != nil {
			return nil, badData("sample_type_config: %v", err)
		}
	}
	var in *storage.Input
	switch strings.ToLower(r.Format) {
	case "pprof":
		in, err = decodePprof(r, name, stc, lim)
	case "", "folded", "lines":
		in, err = decodeFolded(r, name, lim)
	case "trie", "tree", "jfr", "speedscope":
		return nil, &InputError{Kind: "unsupported", Msg: fmt.Sprintf("format %q is not supported yet; send pprof, folded or lines", r.Format)}
	default:
		return nil, &InputError{Kind: "unsupported", Msg: fmt.Sprintf("unknown format %q; want pprof, folded or lines", r.Format)}
	}
	if err != nil {
		return nil, err
	}
	in.Labels = moveCorrelationLabels(name.Labels, in.Profile)
	return []*storage.Input{in}, nil
}

func decodePprof(r *Request, name Name, stc SampleTypeConfig, lim ProfileLimits) (*storage.Input, error) {
	if len(r.Profile) == 0 {
		return nil, badData("profile is empty")
	}
	p, err := parsePprof(r.Profile, lim)
	if err != nil {
		return nil, err
	}
	if len(r.PrevProfile) > 0 {
		prev, err := parsePprof(r.PrevProfile, lim)
		if err != nil {
			return nil, fmt.Errorf("prev_profile: %w", err)
		}
		if p, err = subtract(p, prev); err != nil {
			return nil, badData("prev_profile: %v", err)
		}
	}
	if r.From != 0 {
		p.TimeNanos = r.From
	}
	in := &storage.Input{Profile: p, NumericSampleLabel: keepSampleLabel}
	for _, st := range p.SampleType {
		typ := typeOf(p, st, name.Kind, stc)
		in.Types = append(in.Types, typ)
		cum := defaultCumulative(st.Type)
		if e := stc.lookup(st.Type); e != nil {
			cum = e.Cumulative
		}
		in.Cumulative = append(in.Cumulative, cum)
	}
	return in, nil
}

// maxDecompressedBytes bounds a gunzipped profile, so that a small
// compressed body cannot expand without limit.
const maxDecompressedBytes = 512 << 20

// gunzip decompresses data when it is gzipped. klauspost's decoder is
// about twice as fast as compress/gzip, which google/pprof would use.
func gunzip(data []byte) ([]byte, error) {
	if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		return data, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, badData("decompress profile: %v", err)
	}
	var buf bytes.Buffer
	buf.Grow(4 * len(data))
	n, err := io.Copy(&buf, io.LimitReader(zr, maxDecompressedBytes+1))
	if err != nil {
		return nil, badData("decompress profile: %v", err)
	}
	if n > maxDecompressedBytes {
		return nil, &InputError{Kind: "too_large", Msg: fmt.Sprintf("profile decompresses to more than %d bytes", maxDecompressedBytes)}
	}
	return buf.Bytes(), nil
}

// parsePprof parses any encoding google/pprof reads and checks limits.
func parsePprof(data []byte, lim ProfileLimits) (*gpprof.Profile, error) {
	data, err := gunzip(data)
	if err != nil {
		return nil, err
	}
	// Protobuf, what every current profiler writes, goes through Hearth's
	// own decoder; the legacy text and binary formats through google/pprof.
	p, err := decodePprofProto(data)
	if err != nil {
		var lerr error
		if p, lerr = gpprof.ParseData(data); lerr != nil {
			return nil, badData("parse pprof: %v (as protobuf: %v)", lerr, err)
		}
	}
	if len(p.SampleType) == 0 {
		return nil, badData("pprof has no sample types")
	}
	if lim.MaxSamples > 0 && len(p.Sample) > lim.MaxSamples {
		return nil, &InputError{Kind: "too_large", Msg: fmt.Sprintf("pprof has %d samples, over the limit of %d", len(p.Sample), lim.MaxSamples)}
	}
	for _, s := range p.Sample {
		if len(s.Value) != len(p.SampleType) {
			return nil, badData("pprof sample has %d values for %d sample types", len(s.Value), len(p.SampleType))
		}
		if lim.MaxStackDepth > 0 && len(s.Location) > lim.MaxStackDepth {
			return nil, &InputError{Kind: "too_large", Msg: fmt.Sprintf("pprof has a stack of %d frames, over the limit of %d", len(s.Location), lim.MaxStackDepth)}
		}
		for _, l := range s.Location {
			if l == nil {
				return nil, badData("pprof sample refers to a missing location")
			}
		}
	}
	return p, nil
}

// subtract returns cur - prev per stack, dropping what did not grow: the
// Pyroscope API's prev_profile turns a cumulative profile into a delta.
func subtract(cur, prev *gpprof.Profile) (*gpprof.Profile, error) {
	prev = prev.Copy()
	prev.Scale(-1)
	m, err := gpprof.Merge([]*gpprof.Profile{cur, prev})
	if err != nil {
		return nil, err
	}
	m.Sample = slices.DeleteFunc(m.Sample, func(s *gpprof.Sample) bool {
		for _, v := range s.Value {
			if v > 0 {
				return false
			}
		}
		return true
	})
	for _, s := range m.Sample {
		for i, v := range s.Value {
			s.Value[i] = max(v, 0)
		}
	}
	return m, nil
}

// correlationLabels are the per-sample labels that tie a sample to a span
// or trace; numeric ones are kept too.
var correlationLabels = []string{
	"span_id", "span_name", "trace_id", "profile_id", "otel.traceid",
	"span id", "local root span id", "trace endpoint", "thread_name", "thread id", "thread name",
}

// keepSampleLabel keeps every string label and the numeric correlation
// labels. Other numeric labels (Go heap's "bytes") describe the sample
// itself and would split stacks without telling a user anything new.
// storage.Input.SampleLabels applies it to numeric labels only.
func keepSampleLabel(key string) bool { return slices.Contains(correlationLabels, key) }

// moveCorrelationLabels takes span and trace labels out of the series
// labels and puts them on every sample instead: one value per request would
// make one series per request.
func moveCorrelationLabels(ls labels.Labels, p *gpprof.Profile) labels.Labels {
	var moved []labels.Label
	ls.Range(func(l labels.Label) {
		if slices.Contains(correlationLabels, l.Name) {
			moved = append(moved, l)
		}
	})
	if len(moved) == 0 {
		return ls
	}
	for _, s := range p.Sample {
		if s.Label == nil {
			s.Label = map[string][]string{}
		}
		for _, l := range moved {
			if _, ok := s.Label[l.Name]; !ok {
				s.Label[l.Name] = []string{l.Value}
			}
		}
	}
	b := labels.NewBuilder(ls)
	for _, l := range moved {
		b.Set(l.Name, "")
	}
	return b.Labels()
}

// typeOf names the profile type of one pprof sample type.
func typeOf(p *gpprof.Profile, st *gpprof.ValueType, kind string, stc SampleTypeConfig) profile.Type {
	t := profile.Type{SampleType: st.Type, SampleUnit: st.Unit}
	if p.PeriodType != nil {
		t.PeriodType, t.PeriodUnit = p.PeriodType.Type, p.PeriodType.Unit
	}
	display := ""
	if e := stc.lookup(st.Type); e != nil {
		display = e.DisplayName
	}
	switch {
	case strings.HasPrefix(display, "mutex_") || kind == "mutex_count" || kind == "mutex_duration":
		t.Name = "mutex"
	case strings.HasPrefix(display, "block_") || kind == "block_count" || kind == "block_duration":
		t.Name = "block"
	case t.PeriodType == "cpu" || st.Type == "cpu":
		t.Name = "process_cpu"
	case strings.HasPrefix(st.Type, "alloc_") || strings.HasPrefix(st.Type, "inuse_") || t.PeriodType == "space":
		t.Name = "memory"
	case st.Type == "goroutine" || st.Type == "goroutines" || display == "goroutine":
		t.Name = "goroutine"
	case st.Type == "contentions" || st.Type == "delay":
		t.Name = "mutex"
	case t.PeriodType != "":
		t.Name = t.PeriodType
	default:
		t.Name = st.Type
	}
	if t.SampleUnit == "" {
		t.SampleUnit = "count"
	}
	return t
}

// defaultCumulative says which sample types Go's runtime reports as
// counts since process start, when the client gives no sample_type_config.
func defaultCumulative(sampleType string) bool {
	switch sampleType {
	case "alloc_objects", "alloc_space", "contentions", "delay":
		return true
	}
	return false
}

func (c SampleTypeConfig) lookup(sampleType string) *SampleTypeConfigEntry {
	if c == nil {
		return nil
	}
	return c[sampleType]
}

// foldedType maps a Pyroscope kind or unit to a profile type, and says how
// to scale values: CPU samples become nanoseconds.
func foldedType(kind string, units Units, sampleRate int64) (profile.Type, int64) {
	cpu := profile.Type{Name: "process_cpu", SampleType: "cpu", SampleUnit: "nanoseconds", PeriodType: "cpu", PeriodUnit: "nanoseconds"}
	if sampleRate <= 0 {
		sampleRate = 100
	}
	perSample := int64(time.Second) / sampleRate
	full := func(s string) profile.Type {
		t, _ := profile.ParseType(s)
		return t
	}
	switch kind {
	case "cpu", "itimer":
		return cpu, perSample
	case "wall":
		return profile.Type{Name: "wall", SampleType: "wall", SampleUnit: "nanoseconds", PeriodType: "wall", PeriodUnit: "nanoseconds"}, perSample
	case "alloc_objects", "alloc_space", "inuse_objects", "inuse_space":
		return full(kind), 1
	case "goroutine", "goroutines":
		return full("goroutine"), 1
	case "mutex_count", "lock_count":
		return full("mutex_contentions"), 1
	case "mutex_duration", "lock_duration":
		return full("mutex_delay"), 1
	case "block_count":
		return full("block_contentions"), 1
	case "block_duration":
		return full("block_delay"), 1
	}
	switch units {
	case UnitsObjects:
		return full("alloc_objects"), 1
	case UnitsBytes:
		return full("alloc_space"), 1
	case UnitsGoroutines:
		return full("goroutine"), 1
	case UnitsLockNanoseconds:
		return full("mutex_delay"), 1
	case UnitsLockSamples:
		return full("mutex_contentions"), 1
	}
	return cpu, perSample
}

func decodeFolded(r *Request, name Name, lim ProfileLimits) (*storage.Input, error) {
	fl := Limits{MaxSamples: lim.MaxSamples, MaxStackDepth: lim.MaxStackDepth}
	var samples []FoldedSample
	var err error
	if strings.EqualFold(r.Format, "lines") {
		samples, err = ParseLines(r.Profile, fl)
	} else {
		samples, err = ParseFolded(r.Profile, fl)
	}
	if err != nil {
		if errors.Is(err, ErrLimitExceeded) {
			return nil, &InputError{Kind: "too_large", Msg: fmt.Sprintf("%s: %v", cmp.Or(r.Format, "folded"), err)}
		}
		return nil, badData("%s: %v", cmp.Or(r.Format, "folded"), err)
	}
	units, err := ParseUnits(r.Units)
	if err != nil {
		return nil, badData("units: %v", err)
	}
	typ, scale := foldedType(name.Kind, units, r.SampleRate)
	p := &gpprof.Profile{
		SampleType: []*gpprof.ValueType{{Type: typ.SampleType, Unit: typ.SampleUnit}},
		TimeNanos:  r.From,
	}
	if typ.PeriodType != "" {
		p.PeriodType = &gpprof.ValueType{Type: typ.PeriodType, Unit: typ.PeriodUnit}
	}
	if r.Until > r.From {
		p.DurationNanos = r.Until - r.From
	}
	funcs := map[string]*gpprof.Location{}
	for _, s := range samples {
		locs := make([]*gpprof.Location, len(s.Stack))
		for i, frame := range s.Stack {
			l := funcs[frame]
			if l == nil {
				fn := &gpprof.Function{ID: uint64(len(p.Function) + 1), Name: frame}
				p.Function = append(p.Function, fn)
				l = &gpprof.Location{ID: uint64(len(p.Location) + 1), Line: []gpprof.Line{{Function: fn}}}
				p.Location = append(p.Location, l)
				funcs[frame] = l
			}
			locs[len(s.Stack)-1-i] = l // pprof stacks are leaf first
		}
		if s.Value > math.MaxInt64/scale {
			return nil, badData("%s: value %d overflows when scaled to nanoseconds at sampleRate %d", cmp.Or(r.Format, "folded"), s.Value, r.SampleRate)
		}
		p.Sample = append(p.Sample, &gpprof.Sample{Location: locs, Value: []int64{s.Value * scale}})
	}
	return &storage.Input{Profile: p, Types: []profile.Type{typ}, Cumulative: []bool{false}}, nil
}

// payloadVersion is the first byte of a logged request.
const payloadVersion = 1

// EncodeRequest serializes r for the write-ahead log.
func EncodeRequest(r *Request) []byte {
	n := 64 + len(r.Name) + len(r.Format) + len(r.SpyName) + len(r.Units) + len(r.AggregationType) +
		len(r.Profile) + len(r.PrevProfile) + len(r.SampleTypeConfig)
	b := make([]byte, 0, n)
	b = append(b, payloadVersion)
	for _, s := range []string{r.Name, r.Format, r.SpyName, r.Units, r.AggregationType} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	for _, v := range []int64{r.From, r.Until, r.SampleRate} {
		b = binary.AppendVarint(b, v)
	}
	for _, s := range [][]byte{r.Profile, r.PrevProfile, r.SampleTypeConfig} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// DecodeRequest parses what EncodeRequest wrote.
func DecodeRequest(b []byte) (*Request, error) {
	if len(b) == 0 || b[0] != payloadVersion {
		return nil, errors.New("unknown logged request version")
	}
	rd := bytes.NewReader(b[1:])
	str := func() ([]byte, error) {
		n, err := binary.ReadUvarint(rd)
		if err != nil || n > uint64(rd.Len()) {
			return nil, errors.New("truncated logged request")
		}
		out := make([]byte, n)
		_, _ = rd.Read(out)
		return out, nil
	}
	r := &Request{}
	var err error
	var fields [5][]byte
	for i := range fields {
		if fields[i], err = str(); err != nil {
			return nil, err
		}
	}
	r.Name, r.Format, r.SpyName, r.Units, r.AggregationType = string(fields[0]), string(fields[1]), string(fields[2]), string(fields[3]), string(fields[4])
	for _, dst := range []*int64{&r.From, &r.Until, &r.SampleRate} {
		if *dst, err = binary.ReadVarint(rd); err != nil {
			return nil, errors.New("truncated logged request")
		}
	}
	for _, dst := range []*[]byte{&r.Profile, &r.PrevProfile, &r.SampleTypeConfig} {
		if *dst, err = str(); err != nil {
			return nil, err
		}
		if len(*dst) == 0 {
			*dst = nil
		}
	}
	return r, nil
}

// Replay is storage.Options.Decode for payloads that Ingest logged. Limits
// are not checked again: the request was accepted under the limits in force
// then.
func Replay(payload []byte) ([]*storage.Input, error) {
	r, err := DecodeRequest(payload)
	if err != nil {
		return nil, err
	}
	return Decode(r, ProfileLimits{}, time.Unix(0, r.From))
}

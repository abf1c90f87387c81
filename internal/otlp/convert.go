package otlp

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"strings"

	gpprof "github.com/google/pprof/profile"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pprofile"

	"github.com/hearth-profiler/hearth/internal/ingest"
	"github.com/hearth-profiler/hearth/internal/labels"
)

// Label names that OTLP data becomes in Hearth.
const (
	// ServiceNameLabel holds the resource's service.name.
	ServiceNameLabel = "service_name"
	// UnknownService is OpenTelemetry's service.name for a resource that
	// names none.
	UnknownService = "unknown_service"
	// ScopeNameLabel holds the instrumentation scope's name: the profiler
	// that produced the profile.
	ScopeNameLabel = "otel_scope_name"
	// TraceIDLabel and SpanIDLabel hold a sample's Link, as lower-case hex:
	// the names the Pyroscope SDKs give the same IDs, so that one query
	// finds the samples of a span whichever way they came in.
	TraceIDLabel = "trace_id"
	SpanIDLabel  = "span_id"
)

// Build ID attributes of a mapping, in the order Hearth prefers them: the
// GNU build ID is what symbol servers index, the Go one what `go tool
// buildid` prints.
var buildIDAttributes = []string{
	"process.executable.build_id.gnu",
	"process.executable.build_id.go",
	"process.executable.build_id.htlhash",
}

// Limits bound what one export request may expand to. OTLP profiles share
// stacks through the dictionary, so a few bytes per sample can name a deep
// stack: the limits keep a small body from costing a large profile.
type Limits struct {
	// MaxSamples is the most samples one request may hold, over all its
	// profiles. Profiles past it are refused.
	MaxSamples int
	// MaxFrames is the most stack frames one request may hold, summed
	// over every sample of every profile. Profiles past it are refused.
	MaxFrames int
}

// DefaultLimits allow one request as many samples as Hearth takes in one
// pprof profile, with 16 frames each on average; real profilers send far
// less per request.
func DefaultLimits() Limits {
	return Limits{MaxSamples: ingest.DefaultProfileLimits().MaxSamples, MaxFrames: 16 * ingest.DefaultProfileLimits().MaxSamples}
}

// Converted is what some OTLP profiles of a request became: one ingest
// request, or the reason they could not be stored.
type Converted struct {
	// Where names the OTLP profiles, each as its place in the export
	// request, e.g. "resource_profiles[0].scope_profiles[1].profiles[2]".
	// A request holds several when they merged (see Convert); a refusal
	// names one.
	Where []string
	// Request is nil when Err is set, and when the profiles have no
	// samples: then there is nothing to store.
	Request *ingest.Request
	Err     error
}

// Convert turns the profiles of pd into ingest requests: pprof-shaped
// profiles with the series labels of their resource and scope. A profile
// that cannot be converted gets its own Converted with an
// *ingest.InputError and leaves the others unaffected.
//
// OTLP gives each profile one sample type, so a pprof profile of several
// (Go's CPU profile: samples and cpu) travels as several OTLP profiles of
// one scope with the same time and stacks. Such profiles merge back into
// one pprof profile with a sample type each: its stacks are then
// converted, logged and stored once instead of once per sample type.
func Convert(pd pprofile.Profiles, lim Limits) []Converted {
	c := newConverter(pd.Dictionary(), lim)
	var out []Converted
	rps := pd.ResourceProfiles()
	for ri := range rps.Len() {
		rp := rps.At(ri)
		sps := rp.ScopeProfiles()
		for si := range sps.Len() {
			sp := sps.At(si)
			series := c.seriesLabels(rp.Resource().Attributes(), sp.Scope())
			where := fmt.Sprintf("resource_profiles[%d].scope_profiles[%d].profiles", ri, si)
			out = c.convertScope(out, sp.Profiles(), series, where)
		}
	}
	return out
}

// converter holds what the profiles of one request share: the dictionary
// and the labels made of its attributes and links, which many samples
// repeat.
type converter struct {
	dict    pprofile.ProfilesDictionary
	strs    pcommon.StringSlice
	lim     Limits
	samples int // samples converted so far, against lim
	frames  int // frames converted so far, against lim

	names map[string]string // attribute key -> label name
	attrs map[int32]sampleLabel
	links map[int32][2]string // link index -> trace, span hex

	// The pprof objects made for the profile being converted, by
	// dictionary index; gen numbers that profile.
	gen       uint32
	mappings  tableCache[*gpprof.Mapping]
	functions tableCache[*gpprof.Function]
	locations tableCache[*gpprof.Location]
	stacks    tableCache[[]*gpprof.Location]
}

// tableCache maps the indexes of one dictionary table to what was made of
// them for the profile being converted. Entries are stamped with the
// profile's number, so that the profiles of a request share one cache
// without sharing objects (each pprof profile needs its own, with its own
// IDs) and without clearing it between profiles. Slices indexed by table
// position cost a fraction of what maps do per lookup.
type tableCache[T any] struct {
	gen  []uint32
	objs []T
}

func (tc *tableCache[T]) get(i int32, gen uint32) (T, bool) {
	// Callers check i against the table after a miss; a negative i
	// must miss rather than index.
	if i >= 0 && int(i) < len(tc.gen) && tc.gen[i] == gen {
		return tc.objs[i], true
	}
	var zero T
	return zero, false
}

// put stores v for index i of a table of n entries.
func (tc *tableCache[T]) put(i int32, gen uint32, n int, v T) {
	if tc.gen == nil {
		tc.gen = make([]uint32, n)
		tc.objs = make([]T, n)
	}
	tc.gen[i] = gen
	tc.objs[i] = v
}

// sampleLabel is one dictionary attribute as a pprof label: numeric when
// the attribute is an integer with a unit, a string otherwise.
type sampleLabel struct {
	name  string
	str   string
	num   int64
	unit  string
	isNum bool
	skip  bool // no name or no value: nothing to label
}

func newConverter(dict pprofile.ProfilesDictionary, lim Limits) *converter {
	return &converter{
		dict: dict, strs: dict.StringTable(), lim: lim,
		names: map[string]string{},
		attrs: map[int32]sampleLabel{},
		links: map[int32][2]string{},
	}
}

func (c *converter) str(i int32, what string) (string, error) {
	if i < 0 || int(i) >= c.strs.Len() {
		return "", ingest.BadData("%s: string index %d is out of range (the string table has %d entries)", what, i, c.strs.Len())
	}
	return c.strs.At(int(i)), nil
}

// labelName turns an attribute key into a label name: service.name becomes
// service_name, other characters outside [a-zA-Z0-9_] become "_", a leading
// digit gets a "_" before it, and a leading "__" (Hearth's own names)
// shrinks to one "_". It returns "" for an empty key.
func (c *converter) labelName(key string) string {
	if n, ok := c.names[key]; ok {
		return n
	}
	n := sanitizeLabelName(key)
	c.names[key] = n
	return n
}

func sanitizeLabelName(key string) string {
	if key == "service.name" {
		return ServiceNameLabel
	}
	if key == "" || labels.ValidName(key) && !strings.HasPrefix(key, "__") {
		return key
	}
	b := make([]byte, 0, len(key)+1)
	if key[0] >= '0' && key[0] <= '9' {
		b = append(b, '_')
	}
	for i := 0; i < len(key); i++ {
		ch := key[i]
		if ch == '_' || ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' {
			b = append(b, ch)
		} else {
			b = append(b, '_')
		}
	}
	for len(b) > 1 && b[0] == '_' && b[1] == '_' {
		b = b[1:]
	}
	return string(b)
}

// seriesLabels makes the series labels of a resource and scope. Resource
// attributes win over scope attributes of the same label name: the
// resource says which service the profile is of.
func (c *converter) seriesLabels(res pcommon.Map, scope pcommon.InstrumentationScope) labels.Labels {
	var b labels.Builder
	set := func(key string, v pcommon.Value) {
		name := c.labelName(key)
		if name == "" || b.Get(name) != "" {
			return
		}
		if s := v.AsString(); s != "" {
			b.Set(name, s)
		}
	}
	// service.name first, so that an attribute that merely sanitizes to
	// service_name cannot take its place.
	if v, ok := res.Get("service.name"); ok {
		set("service.name", v)
	}
	for k, v := range res.All() {
		set(k, v)
	}
	for k, v := range scope.Attributes().All() {
		set(k, v)
	}
	if b.Get(ServiceNameLabel) == "" {
		b.Set(ServiceNameLabel, UnknownService)
	}
	// The scope name tells two profilers of one service apart (an eBPF
	// agent and an SDK, say). Without it their profiles would share a
	// series, and Hearth turns a cumulative series into deltas between
	// consecutive profiles: two producers interleaved in one series would
	// give meaningless deltas. It is one value per profiler, so it costs
	// few series.
	if name := scope.Name(); name != "" && b.Get(ScopeNameLabel) == "" {
		b.Set(ScopeNameLabel, name)
	}
	return b.Labels()
}

// member is one OTLP profile of a group being converted.
type member struct {
	where  string
	op     pprofile.Profile
	st     *gpprof.ValueType
	staged []stagedSample
}

// stagedSample is one OTLP sample, checked and valued, waiting for its
// profile to convert whole before it joins the group's pprof profile.
type stagedSample struct {
	key   sampleKey
	value int64
	os    pprofile.Sample
}

// sampleKey identifies the pprof sample an OTLP sample adds to: the same
// stack with the same labels. attrs holds the attribute indices as bytes.
type sampleKey struct {
	stack, link int32
	attrs       string
}

// groupKey is what profiles must share to merge: everything a pprof
// profile holds once for all its sample types.
type groupKey struct {
	time, duration       uint64
	period               int64
	periodType, periodUn int32
	attrs                string
}

func attrKey(s pcommon.Int32Slice) string {
	if s.Len() == 0 {
		return ""
	}
	b := make([]byte, 0, 4*s.Len())
	for _, v := range s.All() {
		b = binary.LittleEndian.AppendUint32(b, uint32(v))
	}
	return string(b)
}

// convertScope converts the profiles of one scope, merging those that
// share a groupKey and differ in sample type, and appends the results to
// out.
func (c *converter) convertScope(out []Converted, ps pprofile.ProfilesSlice, series labels.Labels, where string) []Converted {
	type group struct{ members []*member }
	var groups []*group
	byKey := map[groupKey][]*group{}
	for i, op := range ps.All() {
		m := &member{where: fmt.Sprintf("%s[%d]", where, i), op: op}
		if op.Samples().Len() == 0 {
			// Nothing to store, and nothing wrong.
			out = append(out, Converted{Where: []string{m.where}})
			continue
		}
		st, err := c.valueType(op.SampleType(), "sample type")
		if err == nil && st.Type == "" {
			err = ingest.BadData("sample type has no name")
		}
		if err != nil {
			out = append(out, Converted{Where: []string{m.where}, Err: err})
			continue
		}
		m.st = st
		pt := op.PeriodType()
		k := groupKey{
			time: uint64(op.Time()), duration: op.DurationNano(), period: op.Period(),
			periodType: pt.TypeStrindex(), periodUn: pt.UnitStrindex(),
			attrs: attrKey(op.AttributeIndices()),
		}
		var g *group
		for _, cand := range byKey[k] {
			if !slices.ContainsFunc(cand.members, func(o *member) bool { return *o.st == *st }) {
				g = cand
				break
			}
		}
		if g == nil {
			g = &group{}
			groups = append(groups, g)
			byKey[k] = append(byKey[k], g)
		}
		g.members = append(g.members, m)
	}
	for _, g := range groups {
		out = c.convertGroup(out, g.members, series)
	}
	return out
}

// profileConverter builds one pprof profile; the IDs of its mappings,
// locations and functions are its own, so that no two profiles share
// mutable pprof objects.
type profileConverter struct {
	c   *converter
	p   *gpprof.Profile
	gen uint32
}

// convertGroup converts profiles that share a groupKey into one pprof
// profile with a sample type per profile. A profile that fails is refused
// alone; the others still merge.
func (c *converter) convertGroup(out []Converted, members []*member, series labels.Labels) []Converted {
	c.gen++
	pc := &profileConverter{c: c, p: &gpprof.Profile{}, gen: c.gen}
	var common []sampleLabel
	var ok []*member
	for _, m := range members {
		var err error
		if len(ok) == 0 {
			// The first profile to convert sets what all share; one
			// that fails here fails for all, being of the same values.
			common, err = pc.header(m.op)
		}
		if err == nil {
			err = pc.stage(m)
		}
		if err != nil {
			out = append(out, Converted{Where: []string{m.where}, Err: err})
			continue
		}
		ok = append(ok, m)
	}
	if len(ok) == 0 {
		return out
	}
	p := pc.p
	where := make([]string, len(ok))
	for k, m := range ok {
		where[k] = m.where
		p.SampleType = append(p.SampleType, m.st)
	}
	// Merge: one pprof sample per stack and labels, with a value per
	// sample type.
	index := make(map[sampleKey]int, len(ok[0].staged))
	for k, m := range ok {
		for _, ss := range m.staged {
			i, found := index[ss.key]
			if !found {
				i = len(p.Sample)
				index[ss.key] = i
				s := &gpprof.Sample{Value: make([]int64, len(ok))}
				// Staging resolved the stack and labels already: these
				// lookups hit the caches and cannot fail.
				s.Location, _ = pc.stack(ss.os.StackIndex())
				_ = c.sampleLabels(ss.os, s, common)
				p.Sample = append(p.Sample, s)
			}
			v := &p.Sample[i].Value[k]
			if ss.value > 0 && *v > math.MaxInt64-ss.value || ss.value < 0 && *v < math.MinInt64-ss.value {
				return append(out, Converted{Where: where, Err: ingest.BadData("values of one stack overflow int64")})
			}
			*v += ss.value
		}
	}
	req := &ingest.Request{Labels: series, Parsed: p, From: p.TimeNanos, Until: p.TimeNanos + p.DurationNanos}
	return append(out, Converted{Where: where, Request: req})
}

// header fills what the pprof profile holds once from op, and returns the
// labels of op's profile attributes.
func (pc *profileConverter) header(op pprofile.Profile) ([]sampleLabel, error) {
	c, p := pc.c, pc.p
	var err error
	if pt := op.PeriodType(); pt.TypeStrindex() != 0 || pt.UnitStrindex() != 0 {
		if p.PeriodType, err = c.valueType(pt, "period type"); err != nil {
			return nil, err
		}
	}
	p.Period = op.Period()
	t, d := uint64(op.Time()), op.DurationNano()
	if t > math.MaxInt64 || d > math.MaxInt64-t {
		return nil, ingest.BadData("time %d with duration %d is past the year 2262", t, d)
	}
	p.TimeNanos, p.DurationNanos = int64(t), int64(d)
	// Profile attributes describe every sample of the profile (a request
	// URL, a user agent): they go on each sample rather than into the
	// series labels, where a value per profile would make a series per
	// profile.
	var common []sampleLabel
	for i, ai := range op.AttributeIndices().All() {
		l, err := c.attribute(ai)
		if err != nil {
			return nil, fmt.Errorf("profile attribute %d: %w", i, err)
		}
		if !l.skip {
			common = append(common, l)
		}
	}
	return common, nil
}

// stage checks and values every sample of m, resolving their stacks and
// labels into the caches.
func (pc *profileConverter) stage(m *member) error {
	c := pc.c
	n := m.op.Samples().Len()
	if c.lim.MaxSamples > 0 && c.samples+n > c.lim.MaxSamples {
		return ingest.TooLarge("%d samples would take the request over its limit of %d samples", n, c.lim.MaxSamples)
	}
	c.samples += n
	m.staged = make([]stagedSample, n)
	for i, os := range m.op.Samples().All() {
		v, err := sampleValue(os)
		if err == nil {
			err = pc.checkSample(os)
		}
		if err != nil {
			m.staged = nil
			return fmt.Errorf("sample %d: %w", i, err)
		}
		m.staged[i] = stagedSample{
			key:   sampleKey{stack: os.StackIndex(), link: os.LinkIndex(), attrs: attrKey(os.AttributeIndices())},
			value: v,
			os:    os,
		}
	}
	return nil
}

// checkSample resolves a sample's stack, attributes and link, so that
// building the pprof sample afterwards cannot fail.
func (pc *profileConverter) checkSample(os pprofile.Sample) error {
	c := pc.c
	locs, err := pc.stack(os.StackIndex())
	if err != nil {
		return err
	}
	c.frames += len(locs)
	if c.lim.MaxFrames > 0 && c.frames > c.lim.MaxFrames {
		return ingest.TooLarge("the request's stacks hold more than %d frames", c.lim.MaxFrames)
	}
	for i, ai := range os.AttributeIndices().All() {
		if _, err := c.attribute(ai); err != nil {
			return fmt.Errorf("attribute %d: %w", i, err)
		}
	}
	if li := os.LinkIndex(); li != 0 {
		if _, err := c.link(li); err != nil {
			return err
		}
	}
	return nil
}

// sampleLabels labels s with the profile's common labels, then the
// sample's attributes, then its link, later ones replacing earlier ones
// of the same name.
func (c *converter) sampleLabels(os pprofile.Sample, s *gpprof.Sample, common []sampleLabel) error {
	for _, l := range common {
		addLabel(s, l)
	}
	for i, ai := range os.AttributeIndices().All() {
		l, err := c.attribute(ai)
		if err != nil {
			return fmt.Errorf("attribute %d: %w", i, err)
		}
		if !l.skip {
			addLabel(s, l)
		}
	}
	if li := os.LinkIndex(); li != 0 {
		ids, err := c.link(li)
		if err != nil {
			return err
		}
		if ids[0] != "" {
			setLabel(s, TraceIDLabel, ids[0])
		}
		if ids[1] != "" {
			setLabel(s, SpanIDLabel, ids[1])
		}
	}
	return nil
}

func (c *converter) valueType(vt pprofile.ValueType, what string) (*gpprof.ValueType, error) {
	typ, err := c.str(vt.TypeStrindex(), what+" name")
	if err != nil {
		return nil, err
	}
	unit, err := c.str(vt.UnitStrindex(), what+" unit")
	if err != nil {
		return nil, err
	}
	return &gpprof.ValueType{Type: typ, Unit: unit}, nil
}

// sampleValue is the one value a sample has for its profile's sample type:
// the sum of its values, or with only timestamps, one per timestamp, as
// the proto says.
func sampleValue(os pprofile.Sample) (int64, error) {
	vals, ts := os.Values(), os.TimestampsUnixNano()
	switch {
	case vals.Len() == 0 && ts.Len() == 0:
		// Proto 1.9 numbered Sample.values 2, which 1.10 reads as
		// attribute_indices: such a sample arrives without values.
		return 0, ingest.BadData("sample has neither values nor timestamps (a sender on OTLP profiles of opentelemetry-proto 1.9 or older sends its values in a field that 1.10 reads as attribute indices)")
	case vals.Len() == 0:
		return int64(ts.Len()), nil
	case ts.Len() > 0 && ts.Len() != vals.Len():
		return 0, ingest.BadData("sample has %d values but %d timestamps", vals.Len(), ts.Len())
	}
	var sum int64
	for _, v := range vals.All() {
		if v > 0 && sum > math.MaxInt64-v || v < 0 && sum < math.MinInt64-v {
			return 0, ingest.BadData("sample values overflow int64")
		}
		sum += v
	}
	return sum, nil
}

func addLabel(s *gpprof.Sample, l sampleLabel) {
	if l.isNum {
		if s.NumLabel == nil {
			s.NumLabel = map[string][]int64{}
			s.NumUnit = map[string][]string{}
		}
		s.NumLabel[l.name] = []int64{l.num}
		s.NumUnit[l.name] = []string{l.unit}
		return
	}
	setLabel(s, l.name, l.str)
}

func setLabel(s *gpprof.Sample, name, value string) {
	if s.Label == nil {
		s.Label = map[string][]string{}
	}
	s.Label[name] = []string{value}
}

// attribute resolves an attribute table entry into a label, once per
// request.
func (c *converter) attribute(i int32) (sampleLabel, error) {
	if l, ok := c.attrs[i]; ok {
		return l, nil
	}
	tab := c.dict.AttributeTable()
	if i < 0 || int(i) >= tab.Len() {
		return sampleLabel{}, ingest.BadData("attribute index %d is out of range (the attribute table has %d entries)", i, tab.Len())
	}
	kv := tab.At(int(i))
	key, err := c.str(kv.KeyStrindex(), fmt.Sprintf("attribute %d key", i))
	if err != nil {
		return sampleLabel{}, err
	}
	unit, err := c.str(kv.UnitStrindex(), fmt.Sprintf("attribute %d unit", i))
	if err != nil {
		return sampleLabel{}, err
	}
	l := sampleLabel{name: c.labelName(key)}
	v := kv.Value()
	switch {
	case v.Type() == pcommon.ValueTypeInt && unit != "":
		// An integer with a unit is a measurement, pprof's numeric label
		// (Go heap profiles' "bytes"): it stays numeric, so that Hearth
		// treats it as it treats pprof's numeric labels.
		l.isNum, l.num, l.unit = true, v.Int(), unit
	default:
		// Everything else, identifiers such as thread.id included, is a
		// string label, which queries can match. A value given as a
		// string-table reference reads as empty through pdata (its API
		// resolves such references only in resource and scope
		// attributes), and is skipped with other empty values.
		l.str = v.AsString()
		l.skip = l.str == ""
	}
	if l.name == "" {
		l.skip = true
	}
	c.attrs[i] = l
	return l, nil
}

func (c *converter) link(i int32) ([2]string, error) {
	if ids, ok := c.links[i]; ok {
		return ids, nil
	}
	tab := c.dict.LinkTable()
	if i < 0 || int(i) >= tab.Len() {
		return [2]string{}, ingest.BadData("link index %d is out of range (the link table has %d entries)", i, tab.Len())
	}
	l := tab.At(int(i))
	var ids [2]string
	if t := l.TraceID(); !t.IsEmpty() {
		ids[0] = hex.EncodeToString(t[:])
	}
	if s := l.SpanID(); !s.IsEmpty() {
		ids[1] = hex.EncodeToString(s[:])
	}
	c.links[i] = ids
	return ids, nil
}

// stack returns the locations of a stack table entry, leaf first as in
// both OTLP and pprof. Samples on one stack share the slice: nothing
// downstream changes a sample's locations in place.
func (pc *profileConverter) stack(i int32) ([]*gpprof.Location, error) {
	if locs, ok := pc.c.stacks.get(i, pc.gen); ok {
		return locs, nil
	}
	tab := pc.c.dict.StackTable()
	if i < 0 || int(i) >= tab.Len() {
		return nil, ingest.BadData("stack index %d is out of range (the stack table has %d entries)", i, tab.Len())
	}
	idx := tab.At(int(i)).LocationIndices()
	locs := make([]*gpprof.Location, idx.Len())
	for j := range locs {
		l, err := pc.location(idx.At(j))
		if err != nil {
			return nil, fmt.Errorf("stack %d, frame %d: %w", i, j, err)
		}
		locs[j] = l
	}
	pc.c.stacks.put(i, pc.gen, tab.Len(), locs)
	return locs, nil
}

func (pc *profileConverter) location(i int32) (*gpprof.Location, error) {
	if l, ok := pc.c.locations.get(i, pc.gen); ok {
		return l, nil
	}
	tab := pc.c.dict.LocationTable()
	if i < 0 || int(i) >= tab.Len() {
		return nil, ingest.BadData("location index %d is out of range (the location table has %d entries)", i, tab.Len())
	}
	ol := tab.At(int(i))
	l := &gpprof.Location{ID: uint64(len(pc.p.Location) + 1), Address: ol.Address()}
	// Index 0 of the mapping table is the proto's "no mapping".
	if mi := ol.MappingIndex(); mi != 0 {
		m, err := pc.mapping(mi)
		if err != nil {
			return nil, fmt.Errorf("location %d: %w", i, err)
		}
		l.Mapping = m
	}
	// Lines are in pprof's order too: an inlined callee before the
	// function it was inlined into.
	l.Line = make([]gpprof.Line, ol.Lines().Len())
	for j, ln := range ol.Lines().All() {
		f, err := pc.function(ln.FunctionIndex())
		if err != nil {
			return nil, fmt.Errorf("location %d, line %d: %w", i, j, err)
		}
		l.Line[j] = gpprof.Line{Function: f, Line: ln.Line(), Column: ln.Column()}
	}
	pc.c.locations.put(i, pc.gen, tab.Len(), l)
	pc.p.Location = append(pc.p.Location, l)
	return l, nil
}

func (pc *profileConverter) function(i int32) (*gpprof.Function, error) {
	if f, ok := pc.c.functions.get(i, pc.gen); ok {
		return f, nil
	}
	tab := pc.c.dict.FunctionTable()
	if i < 0 || int(i) >= tab.Len() {
		return nil, ingest.BadData("function index %d is out of range (the function table has %d entries)", i, tab.Len())
	}
	of := tab.At(int(i))
	what := fmt.Sprintf("function %d", i)
	name, err := pc.c.str(of.NameStrindex(), what+" name")
	if err != nil {
		return nil, err
	}
	sys, err := pc.c.str(of.SystemNameStrindex(), what+" system name")
	if err != nil {
		return nil, err
	}
	file, err := pc.c.str(of.FilenameStrindex(), what+" filename")
	if err != nil {
		return nil, err
	}
	f := &gpprof.Function{ID: uint64(len(pc.p.Function) + 1), Name: name, SystemName: sys, Filename: file, StartLine: of.StartLine()}
	pc.c.functions.put(i, pc.gen, tab.Len(), f)
	pc.p.Function = append(pc.p.Function, f)
	return f, nil
}

func (pc *profileConverter) mapping(i int32) (*gpprof.Mapping, error) {
	if m, ok := pc.c.mappings.get(i, pc.gen); ok {
		return m, nil
	}
	c := pc.c
	tab := c.dict.MappingTable()
	if i < 0 || int(i) >= tab.Len() {
		return nil, ingest.BadData("mapping index %d is out of range (the mapping table has %d entries)", i, tab.Len())
	}
	om := tab.At(int(i))
	file, err := c.str(om.FilenameStrindex(), fmt.Sprintf("mapping %d filename", i))
	if err != nil {
		return nil, err
	}
	m := &gpprof.Mapping{
		ID:     uint64(len(pc.p.Mapping) + 1),
		Start:  om.MemoryStart(),
		Limit:  om.MemoryLimit(),
		Offset: om.FileOffset(),
		File:   file,
	}
	m.BuildID, err = c.buildID(om)
	if err != nil {
		return nil, fmt.Errorf("mapping %d: %w", i, err)
	}
	pc.c.mappings.put(i, pc.gen, tab.Len(), m)
	pc.p.Mapping = append(pc.p.Mapping, m)
	return m, nil
}

// buildID reads a mapping's build ID from its attributes, where OTLP keeps
// what pprof has a field for.
func (c *converter) buildID(om pprofile.Mapping) (string, error) {
	best, id := len(buildIDAttributes), ""
	tab := c.dict.AttributeTable()
	for _, ai := range om.AttributeIndices().All() {
		if ai < 0 || int(ai) >= tab.Len() {
			return "", ingest.BadData("attribute index %d is out of range (the attribute table has %d entries)", ai, tab.Len())
		}
		kv := tab.At(int(ai))
		key, err := c.str(kv.KeyStrindex(), fmt.Sprintf("attribute %d key", ai))
		if err != nil {
			return "", err
		}
		for rank, name := range buildIDAttributes {
			if key == name && rank < best {
				best, id = rank, kv.Value().AsString()
			}
		}
	}
	return id, nil
}

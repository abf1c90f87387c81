// Package otlptest turns pprof profiles into OTLP profiles (pdata
// pprofile), as a pprof-to-OTLP exporter would. It is an implementation
// independent of package otlp's conversion the other way, so that tests
// can check a round trip, and benchmarks can send OTLP requests made from
// the same profiles they send as pprof.
package otlptest

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	gpprof "github.com/google/pprof/profile"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pprofile"
)

// FromPprof converts p to one OTLP export request: one resource with
// resourceAttrs (service.name names the service), one scope without a
// name, and one Profile per pprof sample type, at p's TimeNanos.
func FromPprof(p *gpprof.Profile, resourceAttrs map[string]string) pprofile.Profiles {
	b := NewBuilder()
	attrs := make(map[string]any, len(resourceAttrs))
	for k, v := range resourceAttrs {
		attrs[k] = v
	}
	b.AddPprof(b.Scope(attrs, ""), p, time.Unix(0, p.TimeNanos))
	return b.Profiles()
}

// Builder writes OTLP profiles the way a pprof-to-OTLP exporter would:
// one dictionary for the whole request, with the zero entry that the proto
// asks for at index 0 of each table, and one Profile per pprof sample type
// (an OTLP profile has one sample type). Its small methods let tests also
// write by hand what no converter would. A Builder is not safe for
// concurrent use.
type Builder struct {
	pd   pprofile.Profiles
	dict pprofile.ProfilesDictionary

	// Indexes of what the dictionary holds, so that each entry is added
	// once, as an exporter sharing one dictionary per request does.
	strs   map[string]int32
	stacks map[string]int32
	attrs  map[string]int32
	links  map[string]int32
}

// NewBuilder returns a builder of an empty request whose dictionary holds
// only the zero entries.
func NewBuilder() *Builder {
	pd := pprofile.NewProfiles()
	b := &Builder{
		pd: pd, dict: pd.Dictionary(),
		strs: map[string]int32{}, stacks: map[string]int32{}, attrs: map[string]int32{}, links: map[string]int32{},
	}
	b.Str("")
	b.dict.MappingTable().AppendEmpty()
	b.dict.LocationTable().AppendEmpty()
	b.dict.FunctionTable().AppendEmpty()
	b.dict.LinkTable().AppendEmpty()
	b.dict.AttributeTable().AppendEmpty()
	b.dict.StackTable().AppendEmpty()
	return b
}

// Profiles is the request built so far.
func (b *Builder) Profiles() pprofile.Profiles { return b.pd }

// Dictionary is the request's dictionary, for adding entries by hand.
func (b *Builder) Dictionary() pprofile.ProfilesDictionary { return b.dict }

// Str returns the string table index of s, adding it if new.
func (b *Builder) Str(s string) int32 {
	if i, ok := b.strs[s]; ok {
		return i
	}
	i := int32(b.dict.StringTable().Len())
	b.dict.StringTable().Append(s)
	b.strs[s] = i
	return i
}

// Attr returns the attribute table index of key=v with unit, adding it if
// new; v is a string, an int, an int64, a float64 or a bool.
func (b *Builder) Attr(key string, v any, unit string) int32 {
	id := fmt.Sprintf("%s\x00%T\x00%v\x00%s", key, v, v, unit)
	if i, ok := b.attrs[id]; ok {
		return i
	}
	kv := b.dict.AttributeTable().AppendEmpty()
	kv.SetKeyStrindex(b.Str(key))
	if unit != "" {
		kv.SetUnitStrindex(b.Str(unit))
	}
	setValue(kv.Value(), v)
	i := int32(b.dict.AttributeTable().Len() - 1)
	b.attrs[id] = i
	return i
}

func setValue(dst pcommon.Value, v any) {
	switch v := v.(type) {
	case string:
		dst.SetStr(v)
	case int64:
		dst.SetInt(v)
	case int:
		dst.SetInt(int64(v))
	case bool:
		dst.SetBool(v)
	case float64:
		dst.SetDouble(v)
	default:
		panic(fmt.Sprintf("unsupported attribute value %T", v))
	}
}

// Link returns the link table index of a span, adding it if new.
func (b *Builder) Link(trace pcommon.TraceID, span pcommon.SpanID) int32 {
	id := trace.String() + span.String()
	if i, ok := b.links[id]; ok {
		return i
	}
	l := b.dict.LinkTable().AppendEmpty()
	l.SetTraceID(trace)
	l.SetSpanID(span)
	i := int32(b.dict.LinkTable().Len() - 1)
	b.links[id] = i
	return i
}

// Stack returns the stack table index of the location indices locs, leaf
// first, adding it if new.
func (b *Builder) Stack(locs []int32) int32 {
	var sb strings.Builder
	for _, l := range locs {
		sb.WriteString(strconv.Itoa(int(l)))
		sb.WriteByte(',')
	}
	if i, ok := b.stacks[sb.String()]; ok {
		return i
	}
	st := b.dict.StackTable().AppendEmpty()
	st.LocationIndices().FromRaw(locs)
	i := int32(b.dict.StackTable().Len() - 1)
	b.stacks[sb.String()] = i
	return i
}

// Scope adds a resource with resAttrs (values as Attr takes them) and one
// scope named scopeName in it.
func (b *Builder) Scope(resAttrs map[string]any, scopeName string) pprofile.ScopeProfiles {
	rp := b.pd.ResourceProfiles().AppendEmpty()
	keys := make([]string, 0, len(resAttrs))
	for k := range resAttrs {
		keys = append(keys, k)
	}
	slices.Sort(keys) // a deterministic payload
	for _, k := range keys {
		setValue(rp.Resource().Attributes().PutEmpty(k), resAttrs[k])
	}
	sp := rp.ScopeProfiles().AppendEmpty()
	sp.Scope().SetName(scopeName)
	return sp
}

// AddPprof adds p to sp as one OTLP Profile per sample type, at time t,
// with p's mappings, locations, functions and sample labels in the
// dictionary.
func (b *Builder) AddPprof(sp pprofile.ScopeProfiles, p *gpprof.Profile, t time.Time) {
	mappings := map[*gpprof.Mapping]int32{}
	for _, m := range p.Mapping {
		om := b.dict.MappingTable().AppendEmpty()
		om.SetMemoryStart(m.Start)
		om.SetMemoryLimit(m.Limit)
		om.SetFileOffset(m.Offset)
		om.SetFilenameStrindex(b.Str(m.File))
		if m.BuildID != "" {
			om.AttributeIndices().Append(b.Attr("process.executable.build_id.gnu", m.BuildID, ""))
		}
		mappings[m] = int32(b.dict.MappingTable().Len() - 1)
	}
	functions := map[*gpprof.Function]int32{}
	for _, f := range p.Function {
		of := b.dict.FunctionTable().AppendEmpty()
		of.SetNameStrindex(b.Str(f.Name))
		of.SetSystemNameStrindex(b.Str(f.SystemName))
		of.SetFilenameStrindex(b.Str(f.Filename))
		of.SetStartLine(f.StartLine)
		functions[f] = int32(b.dict.FunctionTable().Len() - 1)
	}
	locations := map[*gpprof.Location]int32{}
	for _, l := range p.Location {
		ol := b.dict.LocationTable().AppendEmpty()
		ol.SetAddress(l.Address)
		if l.Mapping != nil {
			ol.SetMappingIndex(mappings[l.Mapping])
		}
		for _, ln := range l.Line {
			oln := ol.Lines().AppendEmpty()
			oln.SetFunctionIndex(functions[ln.Function])
			oln.SetLine(ln.Line)
			oln.SetColumn(ln.Column)
		}
		locations[l] = int32(b.dict.LocationTable().Len() - 1)
	}
	stacks := make([]int32, len(p.Sample))
	for i, s := range p.Sample {
		locs := make([]int32, len(s.Location))
		for j, l := range s.Location {
			locs[j] = locations[l]
		}
		stacks[i] = b.Stack(locs)
	}
	for ti, st := range p.SampleType {
		op := sp.Profiles().AppendEmpty()
		op.SampleType().SetTypeStrindex(b.Str(st.Type))
		op.SampleType().SetUnitStrindex(b.Str(st.Unit))
		if p.PeriodType != nil {
			op.PeriodType().SetTypeStrindex(b.Str(p.PeriodType.Type))
			op.PeriodType().SetUnitStrindex(b.Str(p.PeriodType.Unit))
		}
		op.SetPeriod(p.Period)
		op.SetTime(pcommon.NewTimestampFromTime(t))
		op.SetDurationNano(uint64(p.DurationNanos))
		for i, s := range p.Sample {
			os := op.Samples().AppendEmpty()
			os.SetStackIndex(stacks[i])
			os.Values().Append(s.Value[ti])
			for _, k := range slices.Sorted(maps.Keys(s.Label)) {
				os.AttributeIndices().Append(b.Attr(k, s.Label[k][0], ""))
			}
			for _, k := range slices.Sorted(maps.Keys(s.NumLabel)) {
				unit := ""
				if us := s.NumUnit[k]; len(us) > 0 {
					unit = us[0]
				}
				os.AttributeIndices().Append(b.Attr(k, s.NumLabel[k][0], unit))
			}
		}
	}
}

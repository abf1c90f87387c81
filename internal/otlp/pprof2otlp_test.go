package otlp

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	gpprof "github.com/google/pprof/profile"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pprofile"
)

// otlpBuilder writes OTLP profiles the way a pprof-to-OTLP exporter would:
// one dictionary for the whole request, with the zero entry that the proto
// asks for at index 0 of each table, and one Profile per pprof sample type
// (an OTLP profile has one sample type). It is the test's independent way
// from pprof to OTLP; the package converts back.
type otlpBuilder struct {
	pd   pprofile.Profiles
	dict pprofile.ProfilesDictionary

	strs   map[string]int32
	stacks map[string]int32
	attrs  map[string]int32
	links  map[string]int32
}

func newOTLPBuilder() *otlpBuilder {
	pd := pprofile.NewProfiles()
	b := &otlpBuilder{
		pd: pd, dict: pd.Dictionary(),
		strs: map[string]int32{}, stacks: map[string]int32{}, attrs: map[string]int32{}, links: map[string]int32{},
	}
	b.str("")
	b.dict.MappingTable().AppendEmpty()
	b.dict.LocationTable().AppendEmpty()
	b.dict.FunctionTable().AppendEmpty()
	b.dict.LinkTable().AppendEmpty()
	b.dict.AttributeTable().AppendEmpty()
	b.dict.StackTable().AppendEmpty()
	return b
}

func (b *otlpBuilder) str(s string) int32 {
	if i, ok := b.strs[s]; ok {
		return i
	}
	i := int32(b.dict.StringTable().Len())
	b.dict.StringTable().Append(s)
	b.strs[s] = i
	return i
}

// attr adds a dictionary attribute; v is a string, an int64 or a bool.
func (b *otlpBuilder) attr(key string, v any, unit string) int32 {
	id := fmt.Sprintf("%s\x00%T\x00%v\x00%s", key, v, v, unit)
	if i, ok := b.attrs[id]; ok {
		return i
	}
	kv := b.dict.AttributeTable().AppendEmpty()
	kv.SetKeyStrindex(b.str(key))
	if unit != "" {
		kv.SetUnitStrindex(b.str(unit))
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

func (b *otlpBuilder) link(trace pcommon.TraceID, span pcommon.SpanID) int32 {
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

func (b *otlpBuilder) stack(locs []int32) int32 {
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

// scope adds a resource with attrs and one scope in it.
func (b *otlpBuilder) scope(resAttrs map[string]any, scopeName string) pprofile.ScopeProfiles {
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

// addPprof adds p to sp as one OTLP Profile per sample type, at time t.
func (b *otlpBuilder) addPprof(sp pprofile.ScopeProfiles, p *gpprof.Profile, t time.Time) {
	mappings := map[*gpprof.Mapping]int32{}
	for _, m := range p.Mapping {
		om := b.dict.MappingTable().AppendEmpty()
		om.SetMemoryStart(m.Start)
		om.SetMemoryLimit(m.Limit)
		om.SetFileOffset(m.Offset)
		om.SetFilenameStrindex(b.str(m.File))
		if m.BuildID != "" {
			om.AttributeIndices().Append(b.attr("process.executable.build_id.gnu", m.BuildID, ""))
		}
		mappings[m] = int32(b.dict.MappingTable().Len() - 1)
	}
	functions := map[*gpprof.Function]int32{}
	for _, f := range p.Function {
		of := b.dict.FunctionTable().AppendEmpty()
		of.SetNameStrindex(b.str(f.Name))
		of.SetSystemNameStrindex(b.str(f.SystemName))
		of.SetFilenameStrindex(b.str(f.Filename))
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
		stacks[i] = b.stack(locs)
	}
	for ti, st := range p.SampleType {
		op := sp.Profiles().AppendEmpty()
		op.SampleType().SetTypeStrindex(b.str(st.Type))
		op.SampleType().SetUnitStrindex(b.str(st.Unit))
		if p.PeriodType != nil {
			op.PeriodType().SetTypeStrindex(b.str(p.PeriodType.Type))
			op.PeriodType().SetUnitStrindex(b.str(p.PeriodType.Unit))
		}
		op.SetPeriod(p.Period)
		op.SetTime(pcommon.NewTimestampFromTime(t))
		op.SetDurationNano(uint64(p.DurationNanos))
		for i, s := range p.Sample {
			os := op.Samples().AppendEmpty()
			os.SetStackIndex(stacks[i])
			os.Values().Append(s.Value[ti])
			for _, k := range sortedKeys(s.Label) {
				os.AttributeIndices().Append(b.attr(k, s.Label[k][0], ""))
			}
			for _, k := range sortedKeys(s.NumLabel) {
				unit := ""
				if us := s.NumUnit[k]; len(us) > 0 {
					unit = us[0]
				}
				os.AttributeIndices().Append(b.attr(k, s.NumLabel[k][0], unit))
			}
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

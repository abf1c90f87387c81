// Package profile is Hearth's vocabulary for profiles: profile type names,
// and the conversion between pprof and what Hearth stores.
package profile

import (
	"fmt"
	"sort"
	"strings"
)

// Type names one kind of value a profile holds, as Pyroscope and Parca name
// it: name:sample_type:sample_unit:period_type:period_unit, for example
// process_cpu:cpu:nanoseconds:cpu:nanoseconds.
type Type struct {
	Name       string // process_cpu, memory, goroutine, mutex, block, ...
	SampleType string // cpu, alloc_space, contentions, ...
	SampleUnit string // nanoseconds, bytes, count, ...
	PeriodType string // may be empty
	PeriodUnit string // may be empty
}

// String formats the full type name.
func (t Type) String() string {
	return t.Name + ":" + t.SampleType + ":" + t.SampleUnit + ":" + t.PeriodType + ":" + t.PeriodUnit
}

// ParseType parses a full type name (five fields separated by colons) or one
// of the short aliases (see Aliases).
func ParseType(s string) (Type, error) {
	if full, ok := aliases[s]; ok {
		s = full
	}
	f := strings.Split(s, ":")
	if len(f) != 5 {
		return Type{}, fmt.Errorf("profile type %q: want name:sample_type:sample_unit:period_type:period_unit or one of %s", s, strings.Join(AliasNames(), ", "))
	}
	for i, x := range f[:3] {
		if x == "" {
			return Type{}, fmt.Errorf("profile type %q: field %d is empty", s, i+1)
		}
	}
	return Type{f[0], f[1], f[2], f[3], f[4]}, nil
}

var aliases = map[string]string{
	"cpu":               "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
	"samples":           "process_cpu:samples:count:cpu:nanoseconds",
	"alloc_space":       "memory:alloc_space:bytes:space:bytes",
	"alloc_objects":     "memory:alloc_objects:count:space:bytes",
	"inuse_space":       "memory:inuse_space:bytes:space:bytes",
	"inuse_objects":     "memory:inuse_objects:count:space:bytes",
	"goroutine":         "goroutine:goroutine:count:goroutine:count",
	"goroutines":        "goroutine:goroutine:count:goroutine:count",
	"mutex":             "mutex:delay:nanoseconds:contentions:count",
	"mutex_delay":       "mutex:delay:nanoseconds:contentions:count",
	"mutex_contentions": "mutex:contentions:count:contentions:count",
	"block":             "block:delay:nanoseconds:contentions:count",
	"block_delay":       "block:delay:nanoseconds:contentions:count",
	"block_contentions": "block:contentions:count:contentions:count",
}

// Alias returns the full type name of a short alias, and whether s is one.
func Alias(s string) (string, bool) {
	full, ok := aliases[s]
	return full, ok
}

// AliasNames lists the short aliases in order.
func AliasNames() []string {
	names := make([]string, 0, len(aliases))
	for k := range aliases {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// Gauge reports whether values of this type are levels at an instant
// (memory in use, goroutines) rather than amounts over an interval (CPU
// time, allocations, lock delay). Levels are averaged over time, amounts
// summed.
func (t Type) Gauge() bool {
	switch t.SampleType {
	case "inuse_space", "inuse_objects", "goroutine", "goroutines", "threadcreate", "thread":
		return true
	}
	return false
}

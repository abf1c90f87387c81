// Package labels holds the label sets that name series and the matchers that
// select them, in the Prometheus model: a label set is a sorted list of
// unique names, each with one value; names match [a-zA-Z_][a-zA-Z0-9_]* and
// names that start with "__" are reserved for Hearth itself.
//
// Labels values are immutable once built and safe for concurrent use.
package labels

import (
	"fmt"
	"hash/maphash"
	"slices"
	"strconv"
	"strings"
)

// Reserved label names.
const (
	// ProfileType holds the full profile type name of a series,
	// name:sample_type:sample_unit:period_type:period_unit.
	ProfileType = "__profile_type__"
	// ServiceName names the service a series belongs to; every series has it.
	ServiceName = "service_name"
)

// Label is one name and its value.
type Label struct {
	Name, Value string
}

// Labels is a label set sorted by name. The zero value is the empty set.
type Labels struct {
	ls []Label
}

// New returns the label set of ls, sorted by name. When a name repeats, the
// last value wins; a label with an empty value is dropped, as in Prometheus.
func New(ls ...Label) Labels {
	var b Builder
	for _, l := range ls {
		b.Set(l.Name, l.Value)
	}
	return b.Labels()
}

// FromStrings builds a label set from name, value pairs. It panics on an odd
// count, which is a programming error.
func FromStrings(nv ...string) Labels {
	if len(nv)%2 != 0 {
		panic("BUG: labels.FromStrings with an odd number of strings")
	}
	var b Builder
	for i := 0; i < len(nv); i += 2 {
		b.Set(nv[i], nv[i+1])
	}
	return b.Labels()
}

// Len is the number of labels.
func (ls Labels) Len() int { return len(ls.ls) }

// Get returns the value of name, or "" when absent.
func (ls Labels) Get(name string) string {
	for _, l := range ls.ls {
		if l.Name == name {
			return l.Value
		}
	}
	return ""
}

// Has says whether name is set.
func (ls Labels) Has(name string) bool {
	for _, l := range ls.ls {
		if l.Name == name {
			return true
		}
	}
	return false
}

// Range calls f for each label in name order.
func (ls Labels) Range(f func(Label)) {
	for _, l := range ls.ls {
		f(l)
	}
}

// List returns a copy of the labels in name order.
func (ls Labels) List() []Label { return slices.Clone(ls.ls) }

// Equal reports whether both sets hold the same labels.
func (ls Labels) Equal(o Labels) bool { return slices.Equal(ls.ls, o.ls) }

// Compare orders label sets by their labels in name order.
func Compare(a, b Labels) int {
	n := min(len(a.ls), len(b.ls))
	for i := range n {
		if c := strings.Compare(a.ls[i].Name, b.ls[i].Name); c != 0 {
			return c
		}
		if c := strings.Compare(a.ls[i].Value, b.ls[i].Value); c != 0 {
			return c
		}
	}
	return len(a.ls) - len(b.ls)
}

var seed = maphash.MakeSeed()

// Hash returns a hash of the set, stable within one process only.
func (ls Labels) Hash() uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	for _, l := range ls.ls {
		h.WriteString(l.Name)
		h.WriteByte(0xff)
		h.WriteString(l.Value)
		h.WriteByte(0xfe)
	}
	return h.Sum64()
}

// String formats the set as {a="1", b="2"}.
func (ls Labels) String() string {
	var b strings.Builder
	b.WriteByte('{')
	for i, l := range ls.ls {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(l.Name)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(l.Value))
	}
	b.WriteByte('}')
	return b.String()
}

// Map returns the labels as a map.
func (ls Labels) Map() map[string]string {
	m := make(map[string]string, len(ls.ls))
	for _, l := range ls.ls {
		m[l.Name] = l.Value
	}
	return m
}

// Without returns the set less the named labels.
func (ls Labels) Without(names ...string) Labels {
	out := make([]Label, 0, len(ls.ls))
	for _, l := range ls.ls {
		if !slices.Contains(names, l.Name) {
			out = append(out, l)
		}
	}
	return Labels{out}
}

// Builder assembles a label set. The zero value is ready to use.
type Builder struct {
	ls []Label
}

// NewBuilder returns a builder that starts from base.
func NewBuilder(base Labels) *Builder {
	return &Builder{ls: slices.Clone(base.ls)}
}

// Set sets name to value; an empty value deletes name.
func (b *Builder) Set(name, value string) *Builder {
	for i, l := range b.ls {
		if l.Name == name {
			if value == "" {
				b.ls = slices.Delete(b.ls, i, i+1)
			} else {
				b.ls[i].Value = value
			}
			return b
		}
	}
	if value != "" {
		b.ls = append(b.ls, Label{name, value})
	}
	return b
}

// Get returns the value of name so far.
func (b *Builder) Get(name string) string {
	for _, l := range b.ls {
		if l.Name == name {
			return l.Value
		}
	}
	return ""
}

// Reset empties the builder.
func (b *Builder) Reset() { b.ls = b.ls[:0] }

// Labels returns the set built so far. The builder may be reused.
func (b *Builder) Labels() Labels {
	out := slices.Clone(b.ls)
	slices.SortFunc(out, func(x, y Label) int { return strings.Compare(x.Name, y.Name) })
	return Labels{out}
}

// ValidName reports whether s is a valid label name: [a-zA-Z_][a-zA-Z0-9_]*.
func ValidName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (i > 0 && c >= '0' && c <= '9') {
			continue
		}
		return false
	}
	return true
}

// Validate checks that every name is valid and that no client-set name is
// reserved (starts with "__"), except the ones in allowed.
func (ls Labels) Validate(allowed ...string) error {
	for _, l := range ls.ls {
		if !ValidName(l.Name) {
			return fmt.Errorf("invalid label name %q: must match [a-zA-Z_][a-zA-Z0-9_]*", l.Name)
		}
		if strings.HasPrefix(l.Name, "__") && !slices.Contains(allowed, l.Name) {
			return fmt.Errorf("label name %q is reserved: names starting with __ are Hearth's own", l.Name)
		}
	}
	return nil
}

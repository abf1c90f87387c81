package parser

import (
	"strconv"
	"strings"

	"github.com/hearth-profiler/hearth/internal/labels"
)

// Selector is a parsed query selector.
type Selector struct {
	ProfileType string            // full five-field name after resolving aliases; "" when the selector has none
	Matchers    []*labels.Matcher // in the order written
}

// String returns the canonical form of s: the full profile type name, if
// any, then the matchers in braces with their values in double quotes, as in
// process_cpu:cpu:nanoseconds:cpu:nanoseconds{a="x", b=~"y"}. An empty
// matcher list prints no braces unless there is no type either, and then
// prints "{}". Parse of the canonical form gives back an equal Selector.
func (s *Selector) String() string {
	var b strings.Builder
	b.WriteString(s.ProfileType)
	if len(s.Matchers) == 0 {
		if s.ProfileType == "" {
			b.WriteString("{}")
		}
		return b.String()
	}
	b.WriteByte('{')
	for i, m := range s.Matchers {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(m.Name)
		b.WriteString(m.Type.String())
		b.WriteString(strconv.Quote(m.Value))
	}
	b.WriteByte('}')
	return b.String()
}

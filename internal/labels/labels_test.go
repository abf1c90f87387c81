package labels

import (
	"testing"
)

func TestBuilderAndAccessors(t *testing.T) {
	ls := New(Label{"b", "2"}, Label{"a", "1"}, Label{"b", "3"}, Label{"c", ""})
	if got, want := ls.String(), `{a="1", b="3"}`; got != want {
		t.Errorf("New: got %s, want %s (sorted, last value wins, empty dropped)", got, want)
	}
	if ls.Get("b") != "3" || ls.Get("zz") != "" || !ls.Has("a") || ls.Has("c") {
		t.Errorf("Get/Has wrong on %s", ls)
	}
	b := NewBuilder(ls)
	b.Set("a", "").Set("d", "4")
	if got, want := b.Labels().String(), `{b="3", d="4"}`; got != want {
		t.Errorf("builder: got %s, want %s", got, want)
	}
	if got := ls.String(); got != `{a="1", b="3"}` {
		t.Errorf("builder changed its base: %s", got)
	}
	if !FromStrings("a", "1", "b", "3").Equal(ls) || ls.Hash() != FromStrings("b", "3", "a", "1").Hash() {
		t.Error("equal sets must be Equal and hash equally")
	}
	if FromStrings("a", "1").Hash() == FromStrings("a", "2").Hash() {
		t.Error("different sets hash equally")
	}
	if Compare(FromStrings("a", "1"), FromStrings("a", "2")) >= 0 || Compare(ls, ls) != 0 {
		t.Error("Compare order wrong")
	}
	if got := ls.Without("a").String(); got != `{b="3"}` {
		t.Errorf("Without: %s", got)
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		ls      Labels
		allowed []string
		ok      bool
	}{
		{FromStrings("service_name", "x", "_a1", "y"), nil, true},
		{FromStrings("1a", "x"), nil, false},
		{FromStrings("a-b", "x"), nil, false},
		{FromStrings("__name__", "x"), nil, false},
		{FromStrings("__name__", "x"), []string{"__name__"}, true},
	} {
		if err := c.ls.Validate(c.allowed...); (err == nil) != c.ok {
			t.Errorf("Validate(%s, %v) = %v, want ok=%v", c.ls, c.allowed, err, c.ok)
		}
	}
}

func TestMatchers(t *testing.T) {
	for _, c := range []struct {
		t     MatchType
		value string
		in    string
		want  bool
	}{
		{MatchEqual, "api", "api", true},
		{MatchEqual, "api", "apis", false},
		{MatchNotEqual, "api", "", true},
		{MatchRegexp, "a.*", "api", true},
		{MatchRegexp, "p", "api", false}, // anchored
		{MatchRegexp, "a.*", "\nx", false},
		{MatchRegexp, ".*", "line\nbreak", true},
		{MatchNotRegexp, "eu-.*", "us-1", true},
		{MatchNotRegexp, "eu-.*", "eu-1", false},
		{MatchRegexp, "", "", true},
	} {
		m, err := NewMatcher(c.t, "n", c.value)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Matches(c.in); got != c.want {
			t.Errorf("%s matches %q = %v, want %v", m, c.in, got, c.want)
		}
	}
	if _, err := NewMatcher(MatchRegexp, "n", "a)|(b"); err == nil {
		t.Error("a)|(b compiled: an unbalanced expression must be refused, not rescued by the anchoring")
	}
	ls := FromStrings("env", "prod", "service_name", "api")
	if !MatchLabels(ls, MustNewMatcher(MatchEqual, "env", "prod"), MustNewMatcher(MatchEqual, "region", "")) {
		t.Error("an absent label must match the empty value")
	}
	if MatchLabels(ls, MustNewMatcher(MatchEqual, "env", "prod"), MustNewMatcher(MatchNotEqual, "service_name", "api")) {
		t.Error("every matcher must hold")
	}
}

package profile

import "testing"

func TestParseType(t *testing.T) {
	for _, name := range AliasNames() {
		typ, err := ParseType(name)
		if err != nil {
			t.Fatalf("alias %s: %v", name, err)
		}
		full, _ := Alias(name)
		if typ.String() != full {
			t.Errorf("alias %s parses to %s, want %s", name, typ, full)
		}
	}
	typ, err := ParseType("wall:wall:nanoseconds::")
	if err != nil || typ.Name != "wall" || typ.PeriodType != "" {
		t.Errorf("empty period fields: %+v, %v", typ, err)
	}
	for _, bad := range []string{"", "heap", "a:b:c", "a::c:d:e", "a:b:c:d:e:f"} {
		if _, err := ParseType(bad); err == nil {
			t.Errorf("ParseType(%q) succeeded, want an error", bad)
		}
	}
}

func TestGauge(t *testing.T) {
	for s, want := range map[string]bool{"inuse_space": true, "goroutine": true, "alloc_space": false, "cpu": false} {
		if got := (Type{SampleType: s}).Gauge(); got != want {
			t.Errorf("%s: Gauge() = %v, want %v", s, got, want)
		}
	}
}

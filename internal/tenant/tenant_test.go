package tenant

import "testing"

func TestCheck(t *testing.T) {
	for id, want := range map[string]string{"": Default, "team-a": "team-a", "a/b": "", "..": "", "x\x00": ""} {
		got, err := Check(id)
		if got != want || (err == nil) != (want != "") {
			t.Errorf("Check(%q) = %q, %v; want %q", id, got, err, want)
		}
	}
}

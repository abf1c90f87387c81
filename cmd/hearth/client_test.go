package main

import "testing"

func TestExposed(t *testing.T) {
	for _, c := range []struct {
		server string
		skip   bool
		want   bool
	}{
		{"http://localhost:4040", false, false},
		{"http://127.0.0.1:4040", false, false},
		{"http://[::1]:4040", false, false},
		{"http://hearth.internal:4040", false, true},
		{"http://10.0.0.5:4040", false, true},
		{"https://hearth.internal", false, false},
		{"https://hearth.internal", true, true},
	} {
		if got := exposed(c.server, c.skip); got != c.want {
			t.Errorf("exposed(%q, %v) = %v; want %v", c.server, c.skip, got, c.want)
		}
	}
}

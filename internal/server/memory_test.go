package server

import "testing"

// TestMemoryRelease checks when the server returns memory: once per pause
// in writes, after a whole tick without one, never while they go on.
func TestMemoryRelease(t *testing.T) {
	m := newMemoryRelease(0)
	var appends int64
	released := 0
	for _, c := range []struct {
		what     string
		writes   int64 // before each tick
		ticks    int
		released int // in total after the ticks
	}{
		{"idle after start", 0, 1, 1},
		{"still idle", 0, 3, 1},
		{"writing", 1, 4, 1},
		{"writes pause", 0, 2, 2},
		{"paused for long", 0, 5, 2},
		{"writing again", 7, 3, 2},
		{"pause again", 0, 1, 3},
	} {
		for range c.ticks {
			appends += c.writes
			if m.due(appends) {
				released++
			}
		}
		if released != c.released {
			t.Fatalf("%s: memory released %d times, want %d", c.what, released, c.released)
		}
	}
}

package api

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hearth-profiler/hearth/internal/ingest"
)

// parseTime reads a query time in the forms ingest.ParseTime reads (Unix
// s/ms/µs/ns by size, now, now-1h, RFC 3339) and one more that people type
// on a command line: a bare offset such as -1h, meaning now-1h. Empty
// gives def.
func parseTime(s string, now, def time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return def, nil
	case strings.HasPrefix(s, "-"):
		s = "now" + s
	}
	return ingest.ParseTime(s, now)
}

// parseDuration is time.ParseDuration plus days (d) and weeks (w).
func parseDuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	var mult time.Duration
	switch s[len(s)-1] {
	case 'd':
		mult = 24 * time.Hour
	case 'w':
		mult = 7 * 24 * time.Hour
	}
	if mult != 0 {
		n, err := strconv.ParseFloat(s[:len(s)-1], 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q is not a duration", s)
		}
		return time.Duration(n * float64(mult)), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration like 30s, 5m, 1h or 7d", s)
	}
	return d, nil
}

package api

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// parseTime reads a query time: RFC 3339, Unix seconds (or milliseconds,
// microseconds, nanoseconds, told apart by size), "now", or a duration
// relative to now ("-1h", "now-7d"). Empty gives def.
func parseTime(s string, now, def time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return def, nil
	case s == "now":
		return now, nil
	case strings.HasPrefix(s, "now-") || strings.HasPrefix(s, "now+"):
		d, err := parseDuration(s[4:])
		if err != nil {
			return time.Time{}, err
		}
		if s[3] == '-' {
			d = -d
		}
		return now.Add(d), nil
	case strings.HasPrefix(s, "-"):
		d, err := parseDuration(s[1:])
		if err != nil {
			return time.Time{}, err
		}
		return now.Add(-d), nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return unixGuess(n), nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Unix(0, int64(f*1e9)), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a time: want RFC 3339, Unix seconds, now, or relative like -1h", s)
	}
	return t, nil
}

// unixGuess reads n as Unix seconds, milliseconds, microseconds or
// nanoseconds, whichever gives a date after 1973.
func unixGuess(n int64) time.Time {
	switch {
	case n < 1e11:
		return time.Unix(n, 0)
	case n < 1e14:
		return time.UnixMilli(n)
	case n < 1e17:
		return time.UnixMicro(n)
	}
	return time.Unix(0, n)
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

package api

import (
	"testing"
	"time"
)

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	def := time.Unix(1, 0)
	for _, c := range []struct {
		in   string
		want time.Time
	}{
		{"", def},
		{"now", now},
		{"-1h", now.Add(-time.Hour)},
		{"now-7d", now.Add(-7 * 24 * time.Hour)},
		{"now+30m", now.Add(30 * time.Minute)},
		{"1764158400", time.Unix(1764158400, 0)},
		{"1764158400123", time.UnixMilli(1764158400123)},
		{"1764158400123456789", time.Unix(0, 1764158400123456789)},
		{"2026-11-26T11:00:00Z", now.Add(-time.Hour)},
		{"-2w", now.Add(-14 * 24 * time.Hour)},
	} {
		got, err := parseTime(c.in, now, def)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"yesterday", "-1x", "now-", "2026-13-01"} {
		if _, err := parseTime(bad, now, def); err == nil {
			t.Errorf("parseTime(%q) succeeded, want an error", bad)
		}
	}
}

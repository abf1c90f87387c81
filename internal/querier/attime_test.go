package querier

import (
	"testing"
	"time"
)

func TestParseAttime(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	def := now.Add(-time.Hour)
	for _, c := range []struct {
		in   string
		want time.Time
	}{
		{"", def},
		{"now", now},
		{"now-1h", now.Add(-time.Hour)},
		{"now-1h30m", now.Add(-90 * time.Minute)},
		{"now+2d", now.Add(48 * time.Hour)},
		{"now-1mon", now.Add(-30 * 24 * time.Hour)},
		{"now-15min", now.Add(-15 * time.Minute)},
		{"20261201", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)},
		{"1796630400", time.Unix(1796630400, 0)},
		{"1796630400123", time.UnixMilli(1796630400123)},
		{"1796630400123456", time.UnixMicro(1796630400123456)},
		{"1796630400123456789", time.Unix(0, 1796630400123456789)},
		{" now - 1 h ", now.Add(-time.Hour)},
	} {
		got, err := parseAttime(c.in, now, def)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("parseAttime(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"yesterday", "now-", "now-1", "now-1x", "now*2h", "99999999999999999999"} {
		if got, err := parseAttime(bad, now, def); err == nil {
			t.Errorf("parseAttime(%q) = %v, want an error", bad, got)
		}
	}
}

func TestPointInterval(t *testing.T) {
	for _, c := range []struct {
		span, want time.Duration
	}{
		{time.Hour, 15 * time.Second},
		{6 * time.Hour, 15 * time.Second},
		{12 * time.Hour, 30 * time.Second},
		{24 * time.Hour, time.Minute},
		{7 * 24 * time.Hour, 5 * time.Minute},
		{30 * 24 * time.Hour, 30 * time.Minute},
	} {
		if got := pointInterval(0, c.span.Milliseconds()); got != c.want {
			t.Errorf("pointInterval over %s = %s, want %s", c.span, got, c.want)
		}
	}
}

package scrape

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written as Prometheus writes durations in its
// configuration: whole numbers with units from the largest down, each unit
// at most once, as in "10s", "1m30s", "1d" or "500ms". The units are y
// (365 days), w, d, h, m, s and ms; "0" is zero.
type Duration time.Duration

// durationUnits are the units of a Duration, largest first: the order in
// which they must appear.
var durationUnits = []struct {
	name string
	d    time.Duration
}{
	{"y", 365 * 24 * time.Hour},
	{"w", 7 * 24 * time.Hour},
	{"d", 24 * time.Hour},
	{"h", time.Hour},
	{"m", time.Minute},
	{"s", time.Second},
	{"ms", time.Millisecond},
}

// ParseDuration parses a duration in the Prometheus form (see Duration).
func ParseDuration(s string) (Duration, error) {
	if s == "0" {
		return 0, nil
	}
	if s == "" {
		return 0, errors.New("empty duration")
	}
	rest := s
	var total time.Duration
	next := 0 // index in durationUnits of the smallest unit still allowed
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("invalid duration %q: want a number before each unit, as in 10s or 1m30s", s)
		}
		n, err := strconv.ParseInt(rest[:i], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q: %s is too large", s, rest[:i])
		}
		rest = rest[i:]
		j := 0
		for j < len(rest) && (rest[j] < '0' || rest[j] > '9') {
			j++
		}
		unit := rest[:j]
		rest = rest[j:]
		k := -1
		for u := next; u < len(durationUnits); u++ {
			if durationUnits[u].name == unit {
				k = u
				break
			}
		}
		if k < 0 {
			if unit == "" {
				return 0, fmt.Errorf("invalid duration %q: missing unit (y, w, d, h, m, s or ms)", s)
			}
			return 0, fmt.Errorf("invalid duration %q: unit %q is unknown or out of order (want y, w, d, h, m, s, ms, each once, largest first)", s, unit)
		}
		next = k + 1
		u := durationUnits[k].d
		if n > int64(math.MaxInt64/u) || total > time.Duration(math.MaxInt64)-time.Duration(n)*u {
			return 0, fmt.Errorf("invalid duration %q: too long", s)
		}
		total += time.Duration(n) * u
	}
	return Duration(total), nil
}

// String formats d in the form ParseDuration reads, largest units first.
// Parts below a millisecond are dropped.
func (d Duration) String() string {
	t := time.Duration(d)
	if t < time.Millisecond {
		return "0s"
	}
	var b strings.Builder
	for _, u := range durationUnits {
		if n := t / u.d; n > 0 {
			b.WriteString(strconv.FormatInt(int64(n), 10))
			b.WriteString(u.name)
			t -= n * u.d
		}
	}
	return b.String()
}

// UnmarshalYAML reads a duration string.
func (d *Duration) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if err := unmarshal(&s); err != nil {
		return err
	}
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML writes d as ParseDuration reads it.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalText writes d as ParseDuration reads it, for JSON.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// ByteSize is a size in bytes, written as Prometheus writes body_size_limit:
// a whole number with an optional unit B, KB, MB, GB or TB, which like
// Prometheus' are powers of 1024 (KiB, MiB, GiB and TiB are also read).
type ByteSize int64

var byteUnits = []struct {
	names []string
	n     int64
}{
	{[]string{"TB", "TiB"}, 1 << 40},
	{[]string{"GB", "GiB"}, 1 << 30},
	{[]string{"MB", "MiB"}, 1 << 20},
	{[]string{"KB", "KiB"}, 1 << 10},
	{[]string{"B", ""}, 1},
}

// ParseByteSize parses a size such as "64MiB", "512KB" or "1048576".
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("invalid size %q: want a whole number of bytes with an optional unit, as in 64MiB", s)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	unit := strings.TrimSpace(t[i:])
	for _, u := range byteUnits {
		for _, name := range u.names {
			if strings.EqualFold(unit, name) {
				if n > math.MaxInt64/u.n {
					return 0, fmt.Errorf("invalid size %q: too large", s)
				}
				return ByteSize(n * u.n), nil
			}
		}
	}
	return 0, fmt.Errorf("invalid size %q: unknown unit %q (want B, KB, MB, GB or TB)", s, unit)
}

// String formats b with the largest unit that divides it.
func (b ByteSize) String() string {
	for _, u := range byteUnits {
		if b != 0 && int64(b)%u.n == 0 {
			name := u.names[1]
			if name == "" {
				name = u.names[0]
			}
			return strconv.FormatInt(int64(b)/u.n, 10) + name
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// UnmarshalYAML reads a size string or a plain number of bytes.
func (b *ByteSize) UnmarshalYAML(unmarshal func(any) error) error {
	var s string
	if err := unmarshal(&s); err != nil {
		return err
	}
	v, err := ParseByteSize(s)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// MarshalYAML writes b as ParseByteSize reads it.
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }

// MarshalText writes b as ParseByteSize reads it, for JSON.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(b.String()), nil }

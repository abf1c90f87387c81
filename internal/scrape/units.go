package scrape

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/prometheus/common/model"
)

// Duration is a duration written as Prometheus writes them: whole numbers
// with units from the largest down, each at most once, as in "10s", "1m30s",
// "1d" or "500ms" (units y, w, d, h, m, s and ms; "0" is zero). It is
// Prometheus' own type, so that Hearth reads every duration Prometheus
// reads.
type Duration = model.Duration

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

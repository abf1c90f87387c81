package storage

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/cespare/xxhash/v2"

	"github.com/hearth-profiler/hearth/internal/labels"
)

// ProfileKey names one stored profile: the series it was stored in, by
// ProfileSeriesID, and its time. Hearth keeps no profile IDs of its own;
// a ProfileKey is what Pyroscope's API calls a profile ID, and what its
// exemplars point at.
type ProfileKey struct {
	Series uint64
	T      int64 // unix nanoseconds
}

// ProfileSeriesID is a hash of a series' labels without its profile type:
// the profile types of one upload share it. It is stable across restarts,
// heads and blocks, so that an ID handed out once still names its profile.
func ProfileSeriesID(ls labels.Labels) uint64 {
	d := xxhash.New()
	ls.Range(func(l labels.Label) {
		if l.Name == labels.ProfileType {
			return
		}
		_, _ = d.WriteString(l.Name)
		_, _ = d.Write([]byte{0xff})
		_, _ = d.WriteString(l.Value)
		_, _ = d.Write([]byte{0xfe})
	})
	return d.Sum64()
}

// ID formats k as a UUID: the series hash, then the time, big-endian. It
// is how clients that expect profile UUIDs receive and send it back.
func (k ProfileKey) ID() string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], k.Series)
	binary.BigEndian.PutUint64(b[8:], uint64(k.T))
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], b[10:16])
	return string(s[:])
}

// ParseProfileID reads an ID written by ProfileKey.ID.
func ParseProfileID(s string) (ProfileKey, error) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return ProfileKey{}, fmt.Errorf("profile ID %q: want a UUID, 8-4-4-4-12 hex digits", s)
	}
	var b [16]byte
	raw := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:36]
	if _, err := hex.Decode(b[:], []byte(raw)); err != nil {
		return ProfileKey{}, fmt.Errorf("profile ID %q: %w", s, err)
	}
	return ProfileKey{Series: binary.BigEndian.Uint64(b[:8]), T: int64(binary.BigEndian.Uint64(b[8:]))}, nil
}

// ProfileSet is the profiles a select is limited to.
type ProfileSet struct {
	keys   map[ProfileKey]struct{}
	series map[uint64]struct{}
	minT   int64
	maxT   int64
}

// NewProfileSet returns the set of keys.
func NewProfileSet(keys ...ProfileKey) *ProfileSet {
	s := &ProfileSet{keys: map[ProfileKey]struct{}{}, series: map[uint64]struct{}{}}
	for i, k := range keys {
		s.keys[k] = struct{}{}
		s.series[k.Series] = struct{}{}
		if i == 0 || k.T < s.minT {
			s.minT = k.T
		}
		if i == 0 || k.T > s.maxT {
			s.maxT = k.T
		}
	}
	return s
}

// Len is how many profiles the set names.
func (s *ProfileSet) Len() int { return len(s.keys) }

// Bounds are the earliest and latest time of the set's profiles; ok is
// false for an empty set.
func (s *ProfileSet) Bounds() (minT, maxT int64, ok bool) {
	return s.minT, s.maxT, len(s.keys) > 0
}

func (s *ProfileSet) hasSeries(id uint64) bool {
	_, ok := s.series[id]
	return ok
}

func (s *ProfileSet) has(series uint64, t int64) bool {
	_, ok := s.keys[ProfileKey{series, t}]
	return ok
}

// seriesOK says whether a select reads the series of lbls at all under
// p.Profiles, and returns the series' ID for wantProfile.
func (p *SelectParams) seriesOK(lbls labels.Labels) (uint64, bool) {
	if p.Profiles == nil {
		return 0, true
	}
	id := ProfileSeriesID(lbls)
	return id, p.Profiles.hasSeries(id)
}

// wantProfile says whether the profile of series id at t is selected.
func (p *SelectParams) wantProfile(id uint64, t int64) bool {
	return p.Profiles == nil || p.Profiles.has(id, t)
}

package storage

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"sync"
	"time"
)

// A block ID is 16 bytes written as 26 characters of Crockford base32, the
// layout of a ULID: 48 bits of unix milliseconds, then 80 bits of entropy.
// IDs sort as strings in the order they were made, so a directory listing
// lists blocks oldest first.

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// idGenerator makes block IDs that increase strictly within one process,
// even within one millisecond: the entropy is then incremented.
type idGenerator struct {
	mu     sync.Mutex
	lastMs uint64
	last   [10]byte
}

func (g *idGenerator) next(now time.Time) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	ms := uint64(now.UnixMilli())
	if ms <= g.lastMs {
		ms = g.lastMs
		// Increment the 80-bit entropy as a big-endian number.
		for i := len(g.last) - 1; i >= 0; i-- {
			g.last[i]++
			if g.last[i] != 0 {
				break
			}
		}
	} else {
		g.lastMs = ms
		_, _ = rand.Read(g.last[:])
		g.last[0] &= 0x7f // leave room to increment
	}
	var b [16]byte
	binary.BigEndian.PutUint16(b[0:], uint16(ms>>32))
	binary.BigEndian.PutUint32(b[2:], uint32(ms))
	copy(b[6:], g.last[:])
	return encodeID(b)
}

// encodeID writes 128 bits as 26 base32 characters, the first holding
// only 3 bits.
func encodeID(b [16]byte) string {
	hi := binary.BigEndian.Uint64(b[0:])
	lo := binary.BigEndian.Uint64(b[8:])
	var out [26]byte
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

var errBadID = errors.New("malformed block ID")

// parseID checks that s is a block ID and returns its time.
func parseID(s string) (time.Time, error) {
	if len(s) != 26 || s[0] > '7' {
		return time.Time{}, errBadID
	}
	var hi, lo uint64
	for i := 0; i < len(s); i++ {
		v := -1
		for j := 0; j < len(crockford); j++ {
			if crockford[j] == s[i] {
				v = j
				break
			}
		}
		if v < 0 {
			return time.Time{}, errBadID
		}
		hi = hi<<5 | lo>>59
		lo = lo<<5 | uint64(v)
	}
	ms := hi >> 16
	return time.UnixMilli(int64(ms)), nil
}

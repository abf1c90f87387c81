package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// recordType says what a write-ahead log record holds, and so what replays
// it: records of several kinds share the one log, in the order they were
// written.
type recordType uint8

// The record types. 0 is none, so that a zeroed byte is never taken for a
// record. Types to come, each a number of its own: checkpoints (a tenant's
// cumulative-delta state, written in the log so that replay can start from
// it) and deletions (series or time ranges deleted, which replay must not
// bring back).
const (
	// recordProfiles holds profiles: a payload that Options.Decode turns
	// back into inputs. Every record written before record types existed
	// is one.
	recordProfiles recordType = 1
	// recordEvents holds events, in the layout of events.AppendEncoded.
	recordEvents recordType = 2
)

func (t recordType) String() string {
	switch t {
	case recordProfiles:
		return "profiles"
	case recordEvents:
		return "events"
	}
	return fmt.Sprintf("%d", uint8(t))
}

// recordMarker starts every record that has a type. A record written
// before record types starts with the tenant ID's length as
// binary.AppendUvarint writes it, always in its shortest form, whose bytes
// after a first byte of 0x80 or more end with a non-zero one: no old record
// starts with 0xff, 0x00. (Tenant IDs are also at most 150 bytes, see
// tenant.Check, so an old record's first byte is at most 0x96, but storage
// does not check that.) A marker in each record, rather than a version in
// a header per segment, leaves the wal package's framing as it was and
// makes each record say what it is wherever it is read from.
var recordMarker = [2]byte{0xff, 0x00}

// encodeRecord frames one write-ahead log record of type typ:
//
//	0xff 0x00 | type byte | uvarint(len(tenantID)) | tenantID | payload
func encodeRecord(typ recordType, tenantID string, payload []byte) []byte {
	b := make([]byte, 0, len(recordMarker)+1+binary.MaxVarintLen64+len(tenantID)+len(payload))
	b = append(b, recordMarker[:]...)
	b = append(b, byte(typ))
	b = binary.AppendUvarint(b, uint64(len(tenantID)))
	b = append(b, tenantID...)
	return append(b, payload...)
}

// decodeRecord splits a record that encodeRecord framed, or one of the
// framing before record types (uvarint(len(tenantID)) | tenantID |
// payload), which holds profiles. It does not check the type: what is
// unknown to this version is for the caller to refuse.
func decodeRecord(rec []byte) (recordType, string, []byte, error) {
	typ := recordProfiles
	if len(rec) >= len(recordMarker) && rec[0] == recordMarker[0] && rec[1] == recordMarker[1] {
		if len(rec) == len(recordMarker) {
			return 0, "", nil, errors.New("wal record ends before its type")
		}
		typ = recordType(rec[len(recordMarker)])
		rec = rec[len(recordMarker)+1:]
	}
	n, k := binary.Uvarint(rec)
	if k <= 0 || uint64(len(rec)-k) < n {
		return 0, "", nil, errors.New("malformed wal record header")
	}
	return typ, string(rec[k : k+int(n)]), rec[k+int(n):], nil
}

package storage

import (
	"encoding/binary"
	"errors"
)

// encodeRecord frames one write-ahead log record: the tenant ID,
// length-prefixed, then the payload that Options.Decode reads.
func encodeRecord(tenantID string, payload []byte) []byte {
	b := make([]byte, 0, len(tenantID)+len(payload)+binary.MaxVarintLen64)
	b = binary.AppendUvarint(b, uint64(len(tenantID)))
	b = append(b, tenantID...)
	return append(b, payload...)
}

// decodeRecord splits a record that encodeRecord framed.
func decodeRecord(rec []byte) (string, []byte, error) {
	n, k := binary.Uvarint(rec)
	if k <= 0 || uint64(len(rec)-k) < n {
		return "", nil, errors.New("malformed wal record header")
	}
	return string(rec[k : k+int(n)]), rec[k+int(n):], nil
}

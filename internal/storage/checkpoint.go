package storage

import (
	"encoding/binary"
	"fmt"
	"maps"
	"path/filepath"
	"slices"

	"github.com/hearth-profiler/hearth/internal/storage/fsys"
)

// A tenant's checkpoint file records, at its last head cut, the first
// write-ahead log segment whose records of the tenant are not in a block,
// and the cumulative-delta state as it was then: the last value per stack
// of every cumulative series. Replay loads it and applies only the records
// from that segment on, so the deltas after a restart are the ones the
// process would have stored had it kept running. Keys are the stable
// content hashes of hash.go. See docs/storage-format.md for the layout.

const (
	checkpointMagic   = "HCKP"
	checkpointVersion = 1
	checkpointFile    = "checkpoint"
)

// checkpoint is a decoded checkpoint file.
type checkpoint struct {
	walSegment int
	delta      map[uint64]*deltaState
}

// appendCheckpoint appends the encoding of cp to dst, keys sorted so that
// equal states encode equally.
func appendCheckpoint(dst []byte, cp *checkpoint) ([]byte, error) {
	var b []byte
	b = binary.AppendUvarint(b, uint64(cp.walSegment))
	b = binary.AppendUvarint(b, uint64(len(cp.delta)))
	for _, k := range slices.Sorted(maps.Keys(cp.delta)) {
		st := cp.delta[k]
		b = binary.LittleEndian.AppendUint64(b, k)
		b = binary.AppendVarint(b, st.total)
		b = binary.AppendUvarint(b, uint64(len(st.last)))
		for _, sk := range slices.Sorted(maps.Keys(st.last)) {
			b = binary.LittleEndian.AppendUint64(b, sk)
			b = binary.AppendVarint(b, st.last[sk])
		}
	}
	return appendEnvelope(dst, checkpointMagic, checkpointVersion, b)
}

// decodeCheckpoint decodes what appendCheckpoint wrote.
func decodeCheckpoint(src []byte) (*checkpoint, error) {
	body, version, err := openEnvelope(src, checkpointMagic)
	if err != nil {
		return nil, fmt.Errorf("decode checkpoint: %w", err)
	}
	if version != checkpointVersion {
		return nil, fmt.Errorf("decode checkpoint: unknown version %d", version)
	}
	d := &decoder{b: body}
	seg := d.uvarint()
	if d.err == nil && seg > 1<<31 {
		d.fail("wal segment %d out of range", seg)
	}
	cp := &checkpoint{walSegment: int(seg), delta: map[uint64]*deltaState{}}
	n := d.count(10)
	for range n {
		if d.err != nil {
			break
		}
		k := d.fixed64()
		st := &deltaState{total: d.varint()}
		m := d.count(9)
		st.last = make(map[uint64]int64, m)
		for range m {
			sk := d.fixed64()
			st.last[sk] = d.varint()
		}
		if _, dup := cp.delta[k]; dup && d.err == nil {
			d.fail("series %x twice", k)
		}
		cp.delta[k] = st
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return nil, fmt.Errorf("decode checkpoint: %w", d.err)
	}
	return cp, nil
}

// The checkpoint is the ingester's own state, not a bucket object: it is
// written to the local disk, through Options.fs.

// writeCheckpoint replaces t's checkpoint file.
func (db *DB) writeCheckpoint(t *tenant, seg int, delta map[uint64]*deltaState) error {
	raw, err := appendCheckpoint(nil, &checkpoint{walSegment: seg, delta: delta})
	if err != nil {
		return err
	}
	if err := db.opts.fs.MkdirAll(t.dir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(t.dir, checkpointFile)
	if err := fsys.ReplaceFile(db.opts.fs, path, path+tmpSuffix, raw); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	return nil
}

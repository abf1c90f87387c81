package storage

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// tenant is one tenant's data. Lock order: blocksMu, then mu.
type tenant struct {
	id  string
	dir string // DIR/tenants/<escaped id>, for its local state

	mu         sync.RWMutex
	head       *head
	frozen     []*frozenHead // cut, block not yet written; oldest first
	delta      map[uint64]*deltaState
	lastAppend time.Time // wall time of the last Append

	// blocksMu guards blocks. Queries hold it for reading while they run,
	// so a block is only closed when no query reads it.
	blocksMu sync.RWMutex
	blocks   []*block // sorted by minT

	// cpSegment is the log segment of the tenant's checkpoint file: its
	// records below it are in blocks. Guarded by DB.cutMu.
	cpSegment int

	// undeleted are the bucket directories of blocks out of the query
	// path (compaction sources, expired blocks, a compacted block taken
	// back) whose deletion failed; Compact retries them before compacting
	// again. failedCut is the block of a failed cut that could not be
	// deleted: it may hold the frozen head's profiles, so the head is not
	// written again before it is gone. undeleted is guarded by
	// DB.compactMu, failedCut by DB.cutMu.
	undeleted []string
	failedCut string

	// damaged are the blocks that a ReadOnly store's Sync found damaged
	// and leaves out without reading them again. Guarded by
	// DB.compactMu.
	damaged map[string]bool

	// uploadedAt are the blocks this store cut that are in its view, by
	// ID, with when they were uploaded, and watermark the WALSegment of
	// the newest one it dropped from its view (see HeadSnapshot): an
	// ingester on a shared bucket's. Guarded by blocksMu.
	uploadedAt map[string]time.Time
	watermark  int
	// snapCache are the heads written for HeadSnapshot, by head.
	snapMu    sync.Mutex
	snapCache map[*head]*snapPart
	// marked are the blocks that carry a deletion mark, as the last sync
	// listed them (and the compactor since added); markTimes the times
	// of those marks the compactor has read; unmarked are the blocks in
	// the bucket that a compacted block replaces, found without a mark
	// by the last sync (a compactor stopped before it marked them).
	// Guarded by DB.compactMu.
	marked    map[string]bool
	markTimes map[string]time.Time
	unmarked  []string
	// partial are the block directories without meta.json, neither
	// marked nor replaced, that the last sync of a store that does not
	// own its bucket listed. Guarded by DB.compactMu.
	partial []string
}

// frozenHead is a head that was cut and waits for its block: it stays
// queryable until the block is open.
type frozenHead struct {
	head       *head
	walSegment int                    // the log segment the cut started
	delta      map[uint64]*deltaState // the delta state at the cut
}

func newTenant(dir, id string) *tenant {
	return &tenant{id: id, dir: filepath.Join(dir, "tenants", tenantDirName(id)),
		head: newHead(), delta: make(map[uint64]*deltaState)}
}

// blocksDir is the bucket directory of t's blocks. It is the same path
// relative to the bucket root as t.dir is to DIR/tenants, so that the
// default bucket, a Dir at DIR/tenants, finds blocks where Hearth always
// kept them.
func (t *tenant) blocksDir() string { return tenantDirName(t.id) + "/blocks/" }

func (db *DB) tenant(id string) *tenant {
	db.mu.RLock()
	t := db.tenants[id]
	db.mu.RUnlock()
	if t != nil {
		return t
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if t = db.tenants[id]; t == nil {
		t = newTenant(db.dir, id)
		db.tenants[id] = t
	}
	return t
}

func (db *DB) lookupTenant(id string) *tenant {
	db.mu.RLock()
	defer db.mu.RUnlock()
	return db.tenants[id]
}

// Tenants returns the IDs of the tenants that hold data, in a head or in
// blocks, sorted.
func (db *DB) Tenants() []string {
	ts := db.allTenants()
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.id
	}
	return out
}

// allTenants returns the tenants sorted by ID.
func (db *DB) allTenants() []*tenant {
	db.mu.RLock()
	out := make([]*tenant, 0, len(db.tenants))
	for _, t := range db.tenants {
		out = append(out, t)
	}
	db.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// tenantDirName escapes a tenant ID into one path element: bytes other
// than [A-Za-z0-9_-], and a leading dot, become %XX; the empty ID is "%".
func tenantDirName(id string) string {
	if id == "" {
		return "%"
	}
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c == '_' || c == '-' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || (c == '.' && i > 0) {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

func parseTenantDirName(name string) (string, error) {
	if name == "%" {
		return "", nil
	}
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(name) {
			return "", fmt.Errorf("bad escape in tenant dir %q", name)
		}
		var v byte
		for _, h := range []byte{name[i+1], name[i+2]} {
			switch {
			case h >= '0' && h <= '9':
				v = v<<4 | (h - '0')
			case h >= 'A' && h <= 'F':
				v = v<<4 | (h - 'A' + 10)
			default:
				return "", fmt.Errorf("bad escape in tenant dir %q", name)
			}
		}
		b.WriteByte(v)
		i += 2
	}
	if tenantDirName(b.String()) != name {
		return "", fmt.Errorf("tenant dir %q is not in canonical form", name)
	}
	return b.String(), nil
}

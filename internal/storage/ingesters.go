package storage

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hearth-profiler/hearth/internal/storage/bucket"
)

// Ingesters and queriers on one bucket (issue 14). An ingester holds in
// its heads what no block has yet, and keeps the blocks it uploaded in
// its view for Options.KeepUploaded after the upload; a querier sees the
// bucket as of its last Sync. A query on the querier asks every ingester
// for a HeadSnapshot and de-duplicates by this rule:
//
//   - the snapshot of instance I for tenant T holds I's live head and
//     frozen heads (written as blocks in memory), and lists the blocks I
//     uploaded that are still in its view (Uploaded); its Watermark W is
//     the WALSegment of the newest block of I that it dropped from its
//     view. Every record of T that I took is either in a block of I with
//     WALSegment <= W, or in the snapshot.
//   - the querier reads its synced blocks but those of I with WALSegment
//     > W (they are in the snapshot, as heads or as Uploaded), the
//     Uploaded blocks (the synced copy when it has one, else opened from
//     the bucket for this query), and the heads of the snapshot.
//
// So a cut between the querier's sync and the ingester's answer never
// counts twice (the new block has WALSegment > W and is left out or is
// listed once in Uploaded), and a block uploaded but not synced yet is
// never missed (it is in Uploaded until it has been in the bucket for
// KeepUploaded, longer than the queriers' sync interval, so by the time
// it counts under W a querier that syncs has it). Blocks of one tenant
// leave the view in WALSegment order, which is their upload order, so
// that W never covers a block still listed.
//
// A compactor merges blocks only once they are older than its minimum
// block age (--compactor.min-block-age, 10 minutes by default), longer
// than KeepUploaded: a compacted block (which names no instance) never
// holds a block that an ingester still lists, and its sources are gone
// from every snapshot before a querier's sync replaces them.

// HeadSnapshot is what an ingester holds of one tenant that queriers may
// not see in the bucket yet: its heads as blocks, and the blocks it
// uploaded that are still in its view. See the rule above.
type HeadSnapshot struct {
	// Instance names the ingester, as the meta.json of its blocks do.
	Instance string `json:"instance"`
	// Watermark is the WALSegment of the newest block of the instance
	// that the snapshot does not cover (dropped from its view); 0 when
	// it dropped none.
	Watermark int `json:"watermark"`
	// Uploaded are the IDs of the blocks of the instance in the bucket
	// that the snapshot counts, as far as they overlap the time range
	// asked.
	Uploaded []string `json:"uploaded"`
	// Heads are the IDs of the blocks written of the heads, whose
	// objects are in files under "<id>/".
	Heads []string `json:"heads"`

	files map[string][]byte
}

// Size is the bytes of the heads' blocks.
func (s *HeadSnapshot) Size() int64 {
	var n int64
	for _, b := range s.files {
		n += int64(len(b))
	}
	return n
}

// snapshotHeader is the first entry of a snapshot's tar stream.
const snapshotHeader = "snapshot.json"

// WriteTo writes s as a tar stream: snapshot.json, then the objects of
// the heads' blocks, each block's meta.json last.
func (s *HeadSnapshot) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	tw := tar.NewWriter(cw)
	hdr, err := json.Marshal(s)
	if err != nil {
		return cw.n, err
	}
	put := func(name string, b []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := tw.Write(b)
		return err
	}
	if err := put(snapshotHeader, hdr); err != nil {
		return cw.n, err
	}
	names := make([]string, 0, len(s.files))
	for n := range s.files {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int {
		// meta.json last in its block, as in the bucket.
		am, bm := path.Base(a) == metaFile, path.Base(b) == metaFile
		if path.Dir(a) == path.Dir(b) && am != bm {
			if am {
				return 1
			}
			return -1
		}
		return strings.Compare(a, b)
	})
	for _, n := range names {
		if err := put(n, s.files[n]); err != nil {
			return cw.n, err
		}
	}
	err = tw.Close()
	return cw.n, err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// ReadHeadSnapshot reads what WriteTo wrote, at most maxBytes of it (0
// bounds nothing): an answer bigger than that fails rather than filling
// the querier's memory.
func ReadHeadSnapshot(r io.Reader, maxBytes int64) (*HeadSnapshot, error) {
	if maxBytes > 0 {
		r = &limitedReader{r: r, left: maxBytes}
	}
	tr := tar.NewReader(r)
	var s *HeadSnapshot
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read head snapshot: %w", err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("read head snapshot %s: %w", h.Name, err)
		}
		if s == nil {
			if h.Name != snapshotHeader {
				return nil, fmt.Errorf("read head snapshot: starts with %q, not %s", h.Name, snapshotHeader)
			}
			s = &HeadSnapshot{}
			if err := json.Unmarshal(b, s); err != nil {
				return nil, fmt.Errorf("read head snapshot: %s: %w", snapshotHeader, err)
			}
			s.files = map[string][]byte{}
			continue
		}
		id, _, ok := strings.Cut(h.Name, "/")
		if !ok || !slices.Contains(s.Heads, id) {
			return nil, fmt.Errorf("read head snapshot: object %q is in no block it lists", h.Name)
		}
		s.files[h.Name] = b
	}
	if s == nil {
		return nil, errors.New("read head snapshot: empty answer")
	}
	return s, nil
}

// errSnapshotTooBig is the error of an answer past ReadHeadSnapshot's
// bound.
var errSnapshotTooBig = errors.New("head snapshot bigger than the querier takes (--querier.ingester-max-bytes)")

type limitedReader struct {
	r    io.Reader
	left int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.left <= 0 {
		return 0, errSnapshotTooBig
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

// snapPart is a head written as a block for snapshots, kept while the
// head has not changed.
type snapPart struct {
	key   headKey
	id    string
	files map[string][]byte
}

// headKey tells whether a head changed: appends only add samples,
// events and bytes.
type headKey struct {
	samples, bytes int64
	series, events int
}

func keyOf(h *head) headKey {
	return headKey{samples: h.samples, bytes: h.bytes, series: len(h.all), events: h.ev.len()}
}

// headOverlaps says whether h holds profiles or events in [start, end).
func headOverlaps(h *head, start, end int64) bool {
	return (len(h.all) > 0 && h.minT < end && h.maxT >= start) ||
		(h.ev.len() > 0 && h.ev.minT < end && h.ev.maxT >= start)
}

// HeadSnapshot returns what of tenantID in [start, end) the store holds
// that queriers may not see in the bucket: its live and frozen heads, as
// blocks written in memory, and the blocks it uploaded within
// Options.KeepUploaded. It is for an ingester on a shared bucket
// (Options.SharedBucket). A head that has not changed since the last
// snapshot is not written again.
func (db *DB) HeadSnapshot(ctx context.Context, tenantID string, start, end int64) (*HeadSnapshot, error) {
	if db.instance == "" || db.opts.ReadOnly {
		return nil, errors.New("head snapshot: this store is not an ingester on a shared bucket")
	}
	s := &HeadSnapshot{Instance: db.instance, files: map[string][]byte{}}
	t := db.lookupTenant(tenantID)
	if t == nil || end <= start {
		// A tenant it never had has no block of this instance either:
		// Open lists every tenant of the bucket.
		return s, nil
	}
	type part struct {
		live *head // the head in the tenant, the cache's key
		h    *head // what to write: a view of the live head, or a frozen one
	}
	var parts []part
	t.blocksMu.RLock()
	t.mu.RLock()
	if headOverlaps(t.head, start, end) {
		parts = append(parts, part{t.head, t.head.view()})
	}
	for _, fh := range t.frozen {
		if headOverlaps(fh.head, start, end) {
			parts = append(parts, part{fh.head, fh.head})
		}
	}
	live := map[*head]bool{t.head: true}
	for _, fh := range t.frozen {
		live[fh.head] = true
	}
	t.mu.RUnlock()
	s.Watermark = t.watermark
	for _, b := range t.blocks {
		if _, ok := t.uploadedAt[b.meta.ID]; ok && b.overlaps(start, end) {
			s.Uploaded = append(s.Uploaded, b.meta.ID)
		}
	}
	t.blocksMu.RUnlock()

	t.snapMu.Lock()
	defer t.snapMu.Unlock()
	t.pruneSnapCache(live)
	for _, p := range parts {
		key := keyOf(p.h)
		sp := t.snapCache[p.live]
		if sp == nil || sp.key != key {
			var err error
			if sp, err = db.writeSnapPart(ctx, p.h, key); err != nil {
				return nil, fmt.Errorf("tenant %s: head snapshot: %w", tenantID, err)
			}
			if t.snapCache == nil {
				t.snapCache = map[*head]*snapPart{}
			}
			t.snapCache[p.live] = sp
		}
		s.Heads = append(s.Heads, sp.id)
		for n, b := range sp.files {
			s.files[n] = b
		}
	}
	return s, nil
}

// pruneSnapCache forgets the snapshots of heads that are neither live
// nor frozen any more; live nil takes them from t. The caller holds
// t.snapMu.
func (t *tenant) pruneSnapCache(live map[*head]bool) {
	if len(t.snapCache) == 0 {
		return
	}
	if live == nil {
		t.mu.RLock()
		live = map[*head]bool{t.head: true}
		for _, fh := range t.frozen {
			live[fh.head] = true
		}
		t.mu.RUnlock()
	}
	for h := range t.snapCache {
		if !live[h] {
			delete(t.snapCache, h)
		}
	}
}

// writeSnapPart writes h as a block in memory.
func (db *DB) writeSnapPart(ctx context.Context, h *head, key headKey) (*snapPart, error) {
	mem := bucket.NewMem("head snapshot")
	id := db.snapIDs.next(db.opts.Now())
	// No walSegment and no instance: the block is never in the bucket,
	// and the querier's rule applies to bucket blocks only.
	if _, _, err := writeHeadBlock(ctx, h, mem, "", id, 0, ""); err != nil {
		return nil, err
	}
	sp := &snapPart{key: key, id: id, files: map[string][]byte{}}
	for _, n := range mem.Objects() {
		b, _ := mem.Bytes(n)
		sp.files[n] = b
	}
	return sp, nil
}

// trimIngesterView leaves in an ingester's view, at Open, only the
// blocks it cut itself within Options.KeepUploaded, by their IDs' time
// (when they were cut; the upload came after, but is not recorded): the
// others are in the bucket for the queriers, and the snapshots' watermark
// covers those it drops. A block of another instance was opened for
// replay's sake alone.
func (db *DB) trimIngesterView() {
	for _, t := range db.allTenants() {
		t.blocksMu.Lock()
		var keep, drop []*block
		for _, b := range t.blocks {
			if db.instance != "" && b.meta.Instance != db.instance {
				drop = append(drop, b)
				continue
			}
			at, err := parseID(b.meta.ID)
			if err != nil {
				at = db.opts.Now()
			}
			if t.uploadedAt == nil {
				t.uploadedAt = map[string]time.Time{}
			}
			t.uploadedAt[b.meta.ID] = at
			keep = append(keep, b)
		}
		t.blocks = keep
		t.blocksMu.Unlock()
		for _, b := range drop {
			b.close()
		}
	}
	db.dropUploaded()
}

// dropUploaded drops from an ingester's view the blocks it uploaded more
// than Options.KeepUploaded ago, oldest WALSegment first, and raises the
// tenants' watermarks past them.
func (db *DB) dropUploaded() {
	if db.opts.KeepUploaded <= 0 {
		return
	}
	cutoff := db.opts.Now().Add(-db.opts.KeepUploaded)
	for _, t := range db.allTenants() {
		// A tenant no longer queried would keep the snapshot of a head
		// long written out until its next query.
		t.snapMu.Lock()
		t.pruneSnapCache(nil)
		t.snapMu.Unlock()
		t.blocksMu.Lock()
		own := make([]*block, 0, len(t.uploadedAt))
		for _, b := range t.blocks {
			if _, ok := t.uploadedAt[b.meta.ID]; ok {
				own = append(own, b)
			}
		}
		slices.SortStableFunc(own, func(a, b *block) int { return a.meta.WALSegment - b.meta.WALSegment })
		drop := map[*block]bool{}
		for _, b := range own {
			// In WALSegment order, and no further than the first block
			// still young, so that no block at or below the watermark
			// is still listed (a querier takes a block by ID once, so
			// it would not count twice, but the rule is kept plain).
			if t.uploadedAt[b.meta.ID].After(cutoff) {
				break
			}
			drop[b] = true
			t.watermark = max(t.watermark, b.meta.WALSegment)
			delete(t.uploadedAt, b.meta.ID)
		}
		if len(drop) > 0 {
			t.blocks = slices.DeleteFunc(t.blocks, func(b *block) bool { return drop[b] })
		}
		t.blocksMu.Unlock()
		for b := range drop {
			b.close()
			db.logger.Debug("uploaded block dropped from the ingester's view", "tenant", t.id, "block", b.meta.ID, "walSegment", b.meta.WALSegment)
		}
	}
}

// runDropUploaded calls dropUploaded every Options.CheckInterval, or
// twice per KeepUploaded when that is shorter, until ctx is done: a
// block stays in the view at most half as long again as asked.
func (db *DB) runDropUploaded(ctx context.Context) {
	tick := time.NewTicker(max(min(db.opts.CheckInterval, db.opts.KeepUploaded/2), time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		db.dropUploaded()
	}
}

// FetchHeads asks every ingester for its HeadSnapshot of tenantID over
// [start, end). An error fails the query that asked: an answer without
// an ingester's heads would be short without saying so.
type FetchHeads func(ctx context.Context, tenantID string, start, end int64) ([]*HeadSnapshot, error)

type ingestersKey struct{}

// queryIngesters is one query's (one request's) ingesters: the views it
// fetched, by tenant and time range, and the blocks it opened for them.
type queryIngesters struct {
	fetch FetchHeads
	mu    sync.Mutex
	views map[viewKey]*remoteView
	open  []*block
}

type viewKey struct {
	tenant     string
	start, end int64
}

// WithIngesters returns a context under which a read-only store's queries
// ask the ingesters with fetch and add what they answer, de-duplicated
// (see HeadSnapshot). Call release once the queries under it are done:
// it closes the blocks they opened.
func WithIngesters(ctx context.Context, fetch FetchHeads) (_ context.Context, release func()) {
	qi := &queryIngesters{fetch: fetch, views: map[viewKey]*remoteView{}}
	return context.WithValue(ctx, ingestersKey{}, qi), func() {
		qi.mu.Lock()
		defer qi.mu.Unlock()
		for _, b := range qi.open {
			b.close()
		}
		qi.open = nil
	}
}

// remoteView is what the ingesters add to a tenant's blocks in one
// query.
type remoteView struct {
	heads []*block
	// uploaded are the blocks the ingesters listed, by ID: nil for one
	// the store held when the view was made, else opened for the query.
	uploaded map[string]*block
	// watermark is each answering instance's Watermark.
	watermark map[string]int
}

// blocks returns what a query reads of own, a tenant's blocks, with the
// ingesters' view: the rule of HeadSnapshot. The caller holds the
// tenant's blocksMu.
func (rv *remoteView) blocks(own []*block) []*block {
	if rv == nil {
		return own
	}
	out := make([]*block, 0, len(own)+len(rv.heads)+len(rv.uploaded))
	seen := make(map[string]bool, len(own))
	for _, b := range own {
		if w, ok := rv.watermark[b.meta.Instance]; ok && b.meta.Instance != "" && b.meta.WALSegment > w {
			if _, listed := rv.uploaded[b.meta.ID]; !listed {
				continue // in the instance's heads when it answered
			}
		}
		seen[b.meta.ID] = true
		out = append(out, b)
	}
	for id, b := range rv.uploaded {
		if b != nil && !seen[id] {
			out = append(out, b)
		}
	}
	out = append(out, rv.heads...)
	sortBlocks(out)
	return out
}

// isHead says whether b is an ingester's head written for the query.
func (rv *remoteView) isHead(b *block) bool {
	return rv != nil && slices.Contains(rv.heads, b)
}

// readTenant returns the tenant a query over [start, end) reads, and
// what the ingesters add to it when ctx comes from WithIngesters: then a
// tenant that only the ingesters hold is an empty one of its own.
func (db *DB) readTenant(ctx context.Context, tenantID string, start, end int64) (*tenant, *remoteView, error) {
	t := db.lookupTenant(tenantID)
	qi, _ := ctx.Value(ingestersKey{}).(*queryIngesters)
	if qi == nil || !db.opts.ReadOnly {
		return t, nil, nil
	}
	rv, err := db.ingesterView(ctx, qi, t, tenantID, start, end)
	if err != nil {
		return nil, nil, err
	}
	if t == nil {
		t = newTenant(db.dir, tenantID)
	}
	return t, rv, nil
}

// ingesterView asks the ingesters, once per tenant and range in a query,
// and opens what they answered.
func (db *DB) ingesterView(ctx context.Context, qi *queryIngesters, t *tenant, tenantID string, start, end int64) (*remoteView, error) {
	key := viewKey{tenantID, start, end}
	qi.mu.Lock()
	defer qi.mu.Unlock()
	if rv := qi.views[key]; rv != nil {
		return rv, nil
	}
	snaps, err := qi.fetch(ctx, tenantID, start, end)
	if err != nil {
		return nil, err
	}
	held := map[string]bool{}
	if t != nil {
		t.blocksMu.RLock()
		for _, b := range t.blocks {
			held[b.meta.ID] = true
		}
		t.blocksMu.RUnlock()
	}
	rv := &remoteView{uploaded: map[string]*block{}, watermark: map[string]int{}}
	bdir := tenantDirName(tenantID) + "/blocks/"
	for _, s := range snaps {
		rv.watermark[s.Instance] = s.Watermark
		for _, id := range s.Uploaded {
			if _, err := parseID(id); err != nil {
				return nil, fmt.Errorf("ingester %s lists block %q: %w", s.Instance, id, err)
			}
			if held[id] {
				rv.uploaded[id] = nil
				continue
			}
			// Uploaded, not synced yet: read from the bucket for this
			// query, as the next Sync will.
			dir := bdir + id + "/"
			m, err := readMeta(ctx, db.bkt, dir)
			if err != nil {
				return nil, fmt.Errorf("tenant %s: block %s that ingester %s uploaded: %w", tenantID, id, s.Instance, err)
			}
			b, err := openBlock(ctx, db.bkt, dir, m)
			if err != nil {
				return nil, fmt.Errorf("tenant %s: block %s that ingester %s uploaded: %w", tenantID, id, s.Instance, err)
			}
			qi.open = append(qi.open, b)
			rv.uploaded[id] = b
		}
		if len(s.Heads) == 0 {
			continue
		}
		mem := bucket.NewMem("heads of ingester " + s.Instance)
		for n, raw := range s.files {
			if err := mem.Upload(ctx, n, bytes.NewReader(raw)); err != nil {
				return nil, err
			}
		}
		for _, id := range s.Heads {
			m, err := readMeta(ctx, mem, id+"/")
			if err != nil {
				return nil, fmt.Errorf("tenant %s: heads of ingester %s: %w", tenantID, s.Instance, err)
			}
			b, err := openBlock(ctx, mem, id+"/", m)
			if err != nil {
				return nil, fmt.Errorf("tenant %s: heads of ingester %s: block %s: %w", tenantID, s.Instance, id, err)
			}
			qi.open = append(qi.open, b)
			rv.heads = append(rv.heads, b)
		}
	}
	qi.views[key] = rv
	return rv, nil
}

// IngesterError is a query's failure to hear from one ingester: the query
// fails rather than answer without the ingester's heads. Hearth keeps
// every write in one ingester only (no replication), so no other one
// could stand in for it, as Pyroscope's and Mimir's queriers fail a
// query when fewer ingesters answer than replication allows.
type IngesterError struct {
	// Addr is the ingester's host:port.
	Addr string
	Err  error
}

func (e *IngesterError) Error() string {
	return fmt.Sprintf("ingester %s did not answer, and what it holds that is not in the bucket yet cannot be left out silently: %v", e.Addr, e.Err)
}

func (e *IngesterError) Unwrap() error { return e.Err }

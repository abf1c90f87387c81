package storage

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/hearth-profiler/hearth/internal/events"
	"github.com/hearth-profiler/hearth/internal/labels"
	"github.com/hearth-profiler/hearth/internal/storage/bucket"
)

// blockWriter uploads one block, series by series in label order:
// samples.parquet while the series come, then symbols.bin and index.bin,
// and meta.json last, which makes the block exist. A crash or an error
// before that leaves objects without meta.json, which are not a block:
// abort deletes them, and so does Open if abort could not.
//
// The samples stream into the bucket through a pipe rather than being
// staged in a local file and uploaded from it: on a local Dir that would
// write every block twice, and a retry rewrites the block from its source
// (a frozen head, or source blocks that stay until the new block exists)
// rather than from a staged copy, so there is nothing a staging directory
// would save. The price is that the writer runs at the pace of the upload.
type blockWriter struct {
	ctx context.Context
	bkt bucket.Bucket
	dir string // the block's bucket directory, "<tenant>/blocks/<id>/"
	id  string
	// instance goes into meta.json (blockMeta.Instance), and instances
	// (blockMeta.Instances) for a compacted block.
	instance  string
	instances map[string]int

	sw       *samplesWriter
	pw       *io.PipeWriter
	uploaded chan error // the samples upload's result; nil once received

	ix         blockIndex
	minT, maxT int64
	ev         *eventsMeta // nil until writeEvents
	// samplesDone is set once samples.parquet is uploaded, of
	// samplesBytes.
	samplesDone  bool
	samplesBytes int64
}

// closeSamples ends samples.parquet and waits for its upload. Uploads
// of a block run one at a time, so that a block's files reach the bucket
// in a known order.
func (w *blockWriter) closeSamples() error {
	if w.samplesDone {
		return nil
	}
	n, err := w.sw.close()
	if err != nil {
		return fmt.Errorf("write samples: %w", err)
	}
	w.pw.Close()
	err = <-w.uploaded
	w.uploaded = nil
	if err != nil {
		return err
	}
	w.samplesDone, w.samplesBytes = true, n
	return nil
}

// errAborted stops the samples upload of a block that is given up.
var errAborted = errors.New("block write aborted")

func newBlockWriter(ctx context.Context, bkt bucket.Bucket, blocksDir, id string) *blockWriter {
	w := &blockWriter{ctx: ctx, bkt: bkt, dir: blocksDir + id + "/", id: id,
		uploaded: make(chan error, 1), minT: 1<<63 - 1, maxT: -1 << 63}
	pr, pw := io.Pipe()
	w.pw = pw
	w.sw = newSamplesWriter(pw)
	go func() {
		err := bkt.Upload(ctx, w.dir+samplesFile, pr)
		// An upload that stopped reading early must fail the writes
		// still to come rather than block them.
		pr.CloseWithError(cmp.Or(err, io.ErrClosedPipe))
		w.uploaded <- err
	}()
	return w
}

// addSeries writes one series. Series come in label order; profiles in time
// order, each with its rows sorted by stack then sample set.
func (w *blockWriter) addSeries(lbls labels.Labels, profiles []memProfile) error {
	if n := len(w.ix.series); n > 0 && labels.Compare(w.ix.series[n-1].lbls, lbls) >= 0 {
		return fmt.Errorf("BUG: block series %s out of order", lbls)
	}
	if len(profiles) == 0 {
		return nil
	}
	id := int32(len(w.ix.series))
	s := indexSeries{lbls: lbls, first: len(w.ix.ts), n: len(profiles),
		minT: profiles[0].ts, maxT: profiles[len(profiles)-1].ts}
	for i := range profiles {
		mp := &profiles[i]
		if err := w.sw.add(id, mp); err != nil {
			return fmt.Errorf("write samples: %w", err)
		}
		var total int64
		for _, v := range mp.values {
			total += v
		}
		w.ix.ts = append(w.ix.ts, mp.ts)
		w.ix.rowEnd = append(w.ix.rowEnd, w.sw.rows)
		w.ix.totals = append(w.ix.totals, total)
	}
	w.ix.series = append(w.ix.series, s)
	w.minT, w.maxT = min(w.minT, s.minT), max(w.maxT, s.maxT)
	return nil
}

// finish uploads the rest of the block, meta.json last.
func (w *blockWriter) finish(syms *Symbols, sets []labels.Labels, spans []SpanRef, comp blockCompaction, walSegment int) (*blockMeta, error) {
	if err := w.closeSamples(); err != nil {
		return nil, err
	}
	samplesBytes := w.samplesBytes
	var spanb []byte
	if len(spans) > 1 {
		var err error
		if spanb, err = appendSpans(nil, spans); err != nil {
			return nil, err
		}
		if err := w.bkt.Upload(w.ctx, w.dir+spansFile, bytes.NewReader(spanb)); err != nil {
			return nil, err
		}
	}
	symb, err := AppendSymbols(nil, syms, sets)
	if err != nil {
		return nil, err
	}
	if err := w.bkt.Upload(w.ctx, w.dir+symbolsFile, bytes.NewReader(symb)); err != nil {
		return nil, err
	}
	idxb, err := appendIndex(nil, &w.ix)
	if err != nil {
		return nil, err
	}
	if err := w.bkt.Upload(w.ctx, w.dir+indexFile, bytes.NewReader(idxb)); err != nil {
		return nil, err
	}
	meta := &blockMeta{
		ID: w.id, Version: blockVersion, MinT: w.minT, MaxT: w.maxT,
		Stats: blockStats{
			Series: int64(len(w.ix.series)), Profiles: int64(len(w.ix.ts)),
			Samples: w.ix.numRows(), Spans: int64(max(len(spans)-1, 0)),
			Bytes: samplesBytes + int64(len(symb)) + int64(len(idxb)) + int64(len(spanb)),
		},
		Compaction: comp,
		WALSegment: walSegment,
		Instance:   w.instance,
		Instances:  w.instances,
	}
	if len(w.ix.ts) == 0 {
		meta.MinT, meta.MaxT = 0, 0
	}
	if ev := w.ev; ev != nil && ev.Rows > 0 {
		meta.Events = ev
		meta.Stats.Bytes += ev.Bytes
		if len(w.ix.ts) == 0 {
			meta.MinT, meta.MaxT = ev.MinT, ev.MaxT
		} else {
			meta.MinT, meta.MaxT = min(meta.MinT, ev.MinT), max(meta.MaxT, ev.MaxT)
		}
	}
	mb, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := w.bkt.Upload(w.ctx, w.dir+metaFile, bytes.NewReader(append(mb, '\n'))); err != nil {
		return nil, err
	}
	return meta, nil
}

// writeEvents uploads events.parquet with the attribute columns cols
// (and other, the pairs past the column cap); feed adds the events, in
// block order. It runs after the samples are uploaded: the two files
// stream one after the other, each at the pace of its upload.
func (w *blockWriter) writeEvents(cols []eventAttrColumn, other bool, feed func(*eventsWriter) error) error {
	if err := w.closeSamples(); err != nil {
		return err
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := w.bkt.Upload(w.ctx, w.dir+eventsFile, pr)
		pr.CloseWithError(cmp.Or(err, io.ErrClosedPipe))
		done <- err
	}()
	ew := newEventsWriter(pw, cols, other)
	err := feed(ew)
	var meta *eventsMeta
	if err == nil {
		meta, err = ew.close()
	}
	if err != nil {
		pw.CloseWithError(errAborted)
		<-done
		return fmt.Errorf("write events: %w", err)
	}
	pw.Close()
	if err := <-done; err != nil {
		return err
	}
	w.ev = meta
	return nil
}

// abort stops the samples upload and deletes what was uploaded. It is
// called with the block not yet in existence, or with its meta.json
// uploaded by an Upload that reported an error (an object store can
// store an object and then fail to say so): deleteBlock takes meta.json
// first either way.
func (w *blockWriter) abort() error {
	if w.uploaded != nil {
		w.pw.CloseWithError(errAborted)
		<-w.uploaded
		w.uploaded = nil
	}
	// The write may have failed because its context was cancelled; the
	// clean-up must still run.
	return deleteBlock(context.WithoutCancel(w.ctx), w.bkt, w.dir)
}

// writeHeadBlock writes the profiles of a frozen head as block id in the
// bucket directory blocksDir. When it fails, it returns with the block
// deleted, or with a non-nil undeleted error if that failed too.
func writeHeadBlock(ctx context.Context, h *head, bkt bucket.Bucket, blocksDir, id string, walSegment int, instance string) (meta *blockMeta, undeleted, err error) {
	w := newBlockWriter(ctx, bkt, blocksDir, id)
	w.instance = instance
	meta, err = func() (*blockMeta, error) {
		series := slices.Clone(h.all)
		slices.SortFunc(series, func(a, b *memSeries) int { return labels.Compare(a.lbls, b.lbls) })
		for _, s := range series {
			profs := slices.Clone(s.profiles)
			slices.SortStableFunc(profs, func(a, b memProfile) int { return cmp.Compare(a.ts, b.ts) })
			for i := range profs {
				profs[i] = sortedRows(profs[i])
			}
			if err := w.addSeries(s.lbls, profs); err != nil {
				return nil, err
			}
		}
		if err := writeHeadEvents(w, h.ev); err != nil {
			return nil, err
		}
		return w.finish(h.syms.snapshot(), h.sampleSets, h.spans.refs, blockCompaction{Level: 1}, walSegment)
	}()
	if err != nil {
		return nil, w.abort(), fmt.Errorf("write block %s: %w", id, err)
	}
	return meta, nil, nil
}

// sortedRows returns mp with its rows sorted by stack, then sample set,
// then span, sharing nothing with mp when it had to sort.
func sortedRows(mp memProfile) memProfile {
	less := func(i, j int) bool {
		if mp.stacks[i] != mp.stacks[j] {
			return mp.stacks[i] < mp.stacks[j]
		}
		if mp.sets != nil && mp.sets[i] != mp.sets[j] {
			return mp.sets[i] < mp.sets[j]
		}
		return mp.spans != nil && mp.spans[i] < mp.spans[j]
	}
	sorted := true
	for i := 1; i < len(mp.stacks); i++ {
		if less(i, i-1) {
			sorted = false
			break
		}
	}
	if sorted {
		return mp
	}
	perm := make([]int32, len(mp.stacks))
	for i := range perm {
		perm[i] = int32(i)
	}
	slices.SortFunc(perm, func(a, b int32) int {
		if less(int(a), int(b)) {
			return -1
		}
		if less(int(b), int(a)) {
			return 1
		}
		return 0
	})
	out := memProfile{ts: mp.ts, total: mp.total, stacks: make([]uint32, len(perm)), values: make([]int64, len(perm))}
	if mp.sets != nil {
		out.sets = make([]uint32, len(perm))
	}
	if mp.spans != nil {
		out.spans = make([]uint32, len(perm))
	}
	for i, p := range perm {
		out.stacks[i], out.values[i] = mp.stacks[p], mp.values[p]
		if mp.sets != nil {
			out.sets[i] = mp.sets[p]
		}
		if mp.spans != nil {
			out.spans[i] = mp.spans[p]
		}
	}
	return out
}

// writeHeadEvents writes the events of a frozen head, if it has any, in
// block order.
func writeHeadEvents(w *blockWriter, h *eventHead) error {
	if h.len() == 0 {
		return nil
	}
	counts := map[attrKT]int64{}
	for id, k := range h.keys {
		for t, n := range h.keyTypes[id] {
			if n > 0 {
				counts[attrKT{k, events.Type(t)}] = n
			}
		}
	}
	cols, other := planEventColumns(counts, h.mostlyDistinct())
	perm := h.sortedOrder()
	all := events.Columns{Intrinsics: events.AllIntrinsics | events.ColDetail, AllAttrs: true}
	return w.writeEvents(cols, other, func(ew *eventsWriter) error {
		var b events.Batch
		for lo := 0; lo < len(perm); lo += eventsWriteBatch {
			if err := w.ctx.Err(); err != nil {
				return err
			}
			h.fill(&b, all, perm, lo, min(lo+eventsWriteBatch, len(perm)))
			if err := ew.add(&b); err != nil {
				return err
			}
		}
		return nil
	})
}

// eventsWriteBatch is how many events a block write handles at a time.
const eventsWriteBatch = 8 << 10

// noteInstance records that the block holds the records of instance's log
// below seg, keeping the highest segment of each instance.
func (w *blockWriter) noteInstance(instance string, seg int) {
	if w.instances == nil {
		w.instances = map[string]int{}
	}
	w.instances[instance] = max(w.instances[instance], seg)
}

package storage

import (
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/hearth-profiler/hearth/internal/labels"
)

// blockWriter writes one block into a temporary directory, series by
// series in label order, and makes it visible with a rename once every file
// is on disk: a crash never leaves a partial block under its ID.
type blockWriter struct {
	blocksDir, id, tmp string
	sw                 *samplesWriter
	ix                 blockIndex
	minT, maxT         int64
}

func newBlockWriter(blocksDir, id string) (*blockWriter, error) {
	tmp := filepath.Join(blocksDir, id+tmpSuffix)
	if err := os.RemoveAll(tmp); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, err
	}
	sw, err := newSamplesWriter(filepath.Join(tmp, samplesFile))
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	return &blockWriter{blocksDir: blocksDir, id: id, tmp: tmp, sw: sw, minT: 1<<63 - 1, maxT: -1 << 63}, nil
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
			return err
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

// finish writes the symbol tables, index and meta.json, syncs everything
// and renames the block into place.
func (w *blockWriter) finish(syms *Symbols, sets []labels.Labels, comp blockCompaction, walSegment int) (*blockMeta, error) {
	if err := w.sw.close(); err != nil {
		return nil, fmt.Errorf("write samples: %w", err)
	}
	w.sw = nil
	symb, err := AppendSymbols(nil, syms, sets)
	if err != nil {
		return nil, err
	}
	if err := writeFileSync(filepath.Join(w.tmp, symbolsFile), symb); err != nil {
		return nil, err
	}
	idxb, err := appendIndex(nil, &w.ix)
	if err != nil {
		return nil, err
	}
	if err := writeFileSync(filepath.Join(w.tmp, indexFile), idxb); err != nil {
		return nil, err
	}
	st, err := os.Stat(filepath.Join(w.tmp, samplesFile))
	if err != nil {
		return nil, err
	}
	meta := &blockMeta{
		ID: w.id, Version: blockVersion, MinT: w.minT, MaxT: w.maxT,
		Stats: blockStats{
			Series: int64(len(w.ix.series)), Profiles: int64(len(w.ix.ts)),
			Samples: w.ix.numRows(), Bytes: st.Size() + int64(len(symb)) + int64(len(idxb)),
		},
		Compaction: comp,
		WALSegment: walSegment,
	}
	if len(w.ix.ts) == 0 {
		meta.MinT, meta.MaxT = 0, 0
	}
	mb, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeFileSync(filepath.Join(w.tmp, metaFile), append(mb, '\n')); err != nil {
		return nil, err
	}
	if err := syncDir(w.tmp); err != nil {
		return nil, err
	}
	if err := os.Rename(w.tmp, filepath.Join(w.blocksDir, w.id)); err != nil {
		return nil, err
	}
	if err := syncDir(w.blocksDir); err != nil {
		return nil, err
	}
	return meta, nil
}

// abort removes what was written.
func (w *blockWriter) abort() {
	if w.sw != nil {
		w.sw.abort()
	}
	os.RemoveAll(w.tmp)
}

// writeHeadBlock writes the profiles of a frozen head as block id.
func writeHeadBlock(h *head, blocksDir, id string, walSegment int) (*blockMeta, error) {
	w, err := newBlockWriter(blocksDir, id)
	if err != nil {
		return nil, fmt.Errorf("write block %s: %w", id, err)
	}
	meta, err := func() (*blockMeta, error) {
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
		return w.finish(h.syms.snapshot(), h.sampleSets, blockCompaction{Level: 1}, walSegment)
	}()
	if err != nil {
		w.abort()
		return nil, fmt.Errorf("write block %s: %w", id, err)
	}
	return meta, nil
}

// sortedRows returns mp with its rows sorted by stack, then sample set,
// sharing nothing with mp when it had to sort.
func sortedRows(mp memProfile) memProfile {
	less := func(i, j int) bool {
		if mp.stacks[i] != mp.stacks[j] {
			return mp.stacks[i] < mp.stacks[j]
		}
		return mp.sets != nil && mp.sets[i] < mp.sets[j]
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
	for i, p := range perm {
		out.stacks[i], out.values[i] = mp.stacks[p], mp.values[p]
		if mp.sets != nil {
			out.sets[i] = mp.sets[p]
		}
	}
	return out
}

// writeFileSync writes data to path and fsyncs it.
func writeFileSync(path string, data []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncDir fsyncs a directory, making renames and creations in it durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// replaceFile writes data to path through a synced temporary file and a
// rename, so that path holds the old or the new content, never a part.
func replaceFile(path string, data []byte) error {
	tmp := path + tmpSuffix
	if err := writeFileSync(tmp, data); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

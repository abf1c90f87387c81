package storage

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/hearth-profiler/hearth/internal/storage/bucket"
)

// DamagedError says that a block's data failed its checks while a query
// read it: a page that does not decode, or rows that point outside the
// block's symbols. Start-up checks what it can without reading every page;
// this is what it could not.
type DamagedError struct {
	Block string
	Err   error
}

func (e *DamagedError) Error() string { return fmt.Sprintf("read block %s: %v", e.Block, e.Err) }

func (e *DamagedError) Unwrap() error { return e.Err }

// readFailed classifies an error of reading block b's samples: the
// query's own end (cancelled, timed out) and a bucket that did not answer
// as they are, anything else as damage.
func readFailed(ctx context.Context, b *block, err error) error {
	if cerr := ctx.Err(); cerr != nil && errors.Is(err, cerr) {
		return err
	}
	if bucket.IsUnavailable(err) {
		return fmt.Errorf("read block %s: %w", b.meta.ID, err)
	}
	return &DamagedError{Block: b.meta.ID, Err: err}
}

// Skipped collects the blocks that queries of a context left out because
// their data was damaged, so that the answer can say so.
type Skipped struct {
	mu     sync.Mutex
	blocks []string
}

type skippedKey struct{}

// WithSkipped returns ctx whose selects leave out damaged blocks, listing
// them in the returned Skipped, instead of failing. A select without it
// fails on the first damaged block.
func WithSkipped(ctx context.Context) (context.Context, *Skipped) {
	s := &Skipped{}
	return context.WithValue(ctx, skippedKey{}, s), s
}

// List returns what was skipped, one line per block.
func (s *Skipped) List() []string {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.blocks...)
}

// skip records err as a skipped block if ctx collects them and err is
// damage, and says whether the select may go on without the block.
func (db *DB) skip(ctx context.Context, tenantID string, err error) bool {
	s, _ := ctx.Value(skippedKey{}).(*Skipped)
	var de *DamagedError
	if s == nil || !errors.As(err, &de) {
		return false
	}
	db.damagedReads.Add(1)
	db.logger.Error("damaged block left out of a query", "tenant", tenantID, "block", de.Block, "err", de.Err)
	s.mu.Lock()
	s.blocks = append(s.blocks, fmt.Sprintf("block %s left out: its data is damaged (%v)", de.Block, de.Err))
	s.mu.Unlock()
	return true
}

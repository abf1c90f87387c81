package storage

import (
	"errors"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestReplayDecodeError: a record that cannot be decoded fails Open with
// its position, and leaves neither the decoding workers nor the applier
// behind.
func TestReplayDecodeError(t *testing.T) {
	dir := t.TempDir()
	opts := testOptions()
	db := openDB(t, dir, opts)
	loadTestData(t, db, 0, 40, nil)
	db.Close()

	before := runtime.NumGoroutine()
	var calls atomic.Int64
	failing := opts
	failing.Decode = func(payload []byte) ([]*Input, error) {
		if calls.Add(1) == 100 {
			return nil, errors.New("broken payload")
		}
		return decodeTestPayload(payload)
	}
	_, err := Open(dir, nil, failing)
	if err == nil || !strings.Contains(err.Error(), "decode wal record") || !strings.Contains(err.Error(), "broken payload") {
		t.Fatalf("Open with an undecodable record: %v, want an error naming the record", err)
	}
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > before; {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after the failed Open, %d before", runtime.NumGoroutine(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The same log opens with a decoder that works.
	db = openDB(t, dir, opts)
	db.Close()
}

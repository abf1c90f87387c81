package profiletest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/hearth-profiler/hearth/internal/ingest"
	"github.com/hearth-profiler/hearth/internal/storage"
)

// Store is a storage.DB on a temporary directory with an ingester.
type Store struct {
	DB  *storage.DB
	Ing *ingest.Ingester
	Dir string
}

// OpenStore opens a store in a new temporary directory, closed when the
// test ends.
func OpenStore(tb testing.TB) *Store {
	tb.Helper()
	return OpenStoreIn(tb, tb.TempDir())
}

// OpenStoreIn opens (or reopens) the store in dir.
func OpenStoreIn(tb testing.TB, dir string) *Store {
	tb.Helper()
	db, err := storage.Open(dir, nil, storage.Options{Decode: ingest.Replay})
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return &Store{DB: db, Ing: ingest.New(db, ingest.DefaultProfileLimits(), nil), Dir: dir}
}

// PushFile ingests a pprof file as name at time t.
func (s *Store) PushFile(tb testing.TB, name, file string, t time.Time) {
	tb.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		tb.Fatal(err)
	}
	s.Push(tb, name, data, t)
}

// Push ingests pprof bytes as name at time t.
func (s *Store) Push(tb testing.TB, name string, data []byte, t time.Time) {
	tb.Helper()
	err := s.Ing.Ingest(context.Background(), "anonymous", &ingest.Request{
		Name: name, Format: "pprof", Profile: data, From: t.UnixNano(), Until: t.Add(10 * time.Second).UnixNano(),
	})
	if err != nil {
		tb.Fatalf("ingest %s: %v", name, err)
	}
}

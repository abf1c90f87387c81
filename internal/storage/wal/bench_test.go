package wal

import (
	"fmt"
	"testing"
)

// BenchmarkLog measures Log without fsync, the default: the cost of framing,
// checksumming and one write call per record.
func BenchmarkLog(b *testing.B) {
	for _, size := range []int{200, 4 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("bytes=%d", size), func(b *testing.B) {
			w, err := Open(b.TempDir(), nil, Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			payload := make([]byte, size)
			for i := range payload {
				payload[i] = byte(i)
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if err := w.Log(payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReplay measures reading back a segment of 4 KiB records.
func BenchmarkReplay(b *testing.B) {
	dir := b.TempDir()
	w, err := Open(dir, nil, Options{})
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 4<<10)
	const n = 4096
	for range n {
		if err := w.Log(payload); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := w.Cut(); err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	b.SetBytes(n * int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		got := 0
		if err := w.Replay(0, func(int, []byte) error { got++; return nil }); err != nil {
			b.Fatal(err)
		}
		if got != n {
			b.Fatalf("replayed %d records, want %d", got, n)
		}
	}
}

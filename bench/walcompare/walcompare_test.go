// Package walcompare compares the Log throughput of Hearth's write-ahead
// log with that of Prometheus's tsdb/wlog on the same records. It is a
// module of its own so that Prometheus, and the versions of its
// dependencies it requires, stay out of Hearth's build.
package walcompare

import (
	"fmt"
	"testing"

	"github.com/prometheus/prometheus/tsdb/wlog"
	"github.com/prometheus/prometheus/util/compression"

	"github.com/hearth-profiler/hearth/internal/storage/wal"
)

var sizes = []int{200, 4 << 10, 64 << 10}

func payload(size int) []byte {
	p := make([]byte, size)
	for i := range p {
		p[i] = byte(i * 7)
	}
	return p
}

// Both logs write each record with one write call when Log returns (wlog
// flushes its page at the end of every Log call), without fsync, in
// 128 MiB segments.
func BenchmarkLog(b *testing.B) {
	for _, size := range sizes {
		p := payload(size)
		b.Run(fmt.Sprintf("hearth/bytes=%d", size), func(b *testing.B) {
			w, err := wal.Open(b.TempDir(), nil, wal.Options{SegmentBytes: 128 << 20})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if err := w.Log(p); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("wlog/bytes=%d", size), func(b *testing.B) {
			w, err := wlog.NewSize(nil, nil, b.TempDir(), 128<<20, compression.None)
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				if err := w.Log(p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

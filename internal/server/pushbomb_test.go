package server_test

import (
	"bytes"
	"io"
	"net/http"
	"sync"
	"testing"

	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"github.com/klauspost/compress/gzip"
	"google.golang.org/protobuf/proto"

	"github.com/hearth-profiler/hearth/internal/server"
)

// TestPushBombsAtOnce sends push.v1 messages that Connect itself
// decompresses (gzip) from a few kilobytes to 48 MiB each, sixteen at
// once: the decompression counts in the in-flight budget, so most are
// refused as busy before they are whole, and the heap stays far below
// sixteen times the message.
func TestPushBombsAtOnce(t *testing.T) {
	cfg := server.DefaultConfig()
	cfg.MaxInflightBytes = 64 << 20
	base := serve(t, cfg)
	bomb := &pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
		Labels:  []*typesv1.LabelPair{{Name: "__name__", Value: "process_cpu"}, {Name: "service_name", Value: "bomb"}},
		Samples: []*pushv1.RawSample{{RawProfile: make([]byte, 48<<20)}},
	}}}
	// Compressed once here, and sent as Connect's unary protocol would, so
	// that the client's copies do not count in the heap measured.
	raw, err := proto.Marshal(bomb)
	if err != nil {
		t.Fatal(err)
	}
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write(raw)
	zw.Close()
	body := zb.Bytes()
	raw = nil

	grown := heapGrowth()
	const bombs = 16
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[int]int{}
	for range bombs {
		wg.Go(func() {
			req, _ := http.NewRequest("POST", base+pushv1connect.PusherServicePushProcedure, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/proto")
			req.Header.Set("Content-Encoding", "gzip")
			code := 0
			if resp, err := http.DefaultClient.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				code = resp.StatusCode
			}
			mu.Lock()
			codes[code]++
			mu.Unlock()
		})
	}
	wg.Wait()
	grew := grown()
	t.Logf("answers %v; heap in use grew by at most %d MiB", codes, grew>>20)
	// Connect answers resource exhausted with 429, invalid argument
	// (the zeros are no profile) with 400.
	if codes[http.StatusTooManyRequests] == 0 || codes[http.StatusOK] > 0 || codes[http.StatusTooManyRequests]+codes[http.StatusBadRequest] != bombs {
		t.Errorf("answers %v: want every bomb refused, some as busy (429)", codes)
	}
	// Without the budget in the decompressor every message is whole in
	// memory at once, the decompressed bytes and then the decoded
	// message: 1,849 MiB measured. With it, 410 MiB (one message that
	// goes through, its buffers' spare capacity, and garbage not yet
	// collected). The bound sits between the two.
	const bound = 640 << 20
	if grew > bound {
		t.Errorf("heap grew by %d MiB under the bombs, over %d MiB", grew>>20, bound>>20)
	}
}

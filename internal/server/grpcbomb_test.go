package server_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"

	"github.com/hearth-profiler/hearth/internal/server"
)

// rawCodec sends the bytes it is given as the message, so that a test can
// send what no client library would build.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

func (rawCodec) Name() string { return "proto" }

// TestGRPCBombsAtOnce sends sixteen gzipped OTLP gRPC messages at once
// that each decompress to 48 MiB: grpc-go decompresses them before any
// handler runs, so the decompressions take turns (one here, where the
// in-flight budget holds one message at the decompression limit), and
// the heap stays far below sixteen messages.
func TestGRPCBombsAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("compressing 768 MiB on the client side takes over a minute under -race; the full suite runs it")
	}
	cfg := server.DefaultConfig()
	cfg.MaxInflightBytes = 64 << 20
	base := serve(t, cfg)
	conn, err := grpc.NewClient(strings.TrimPrefix(base, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Field 15, length-delimited, 48 MiB of zeros: a field the request
	// does not have, which decoders skip.
	const size = 48 << 20
	bomb := append([]byte{15<<3 | 2}, protowireVarint(size)...)
	bomb = append(bomb, make([]byte, size)...)

	grown := heapGrowth()
	const bombs = 16
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[string]int{}
	for range bombs {
		wg.Go(func() {
			var reply []byte
			err := conn.Invoke(context.Background(), "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export",
				&bomb, &reply, grpc.ForceCodecV2(rawCodec{}), grpc.UseCompressor(gzip.Name))
			mu.Lock()
			codes[status.Code(err).String()]++
			mu.Unlock()
		})
	}
	wg.Wait()
	grew := grown()
	t.Logf("answers %v; heap in use grew by at most %d MiB", codes, grew>>20)
	if codes["Internal"] > 0 || codes["Unknown"] > 0 {
		t.Errorf("answers %v: a decompression that waits must not fail", codes)
	}
	// The client's bomb (48 MiB) and its compressed copies count too.
	// Without turns every message decompresses at once: 905 MiB measured.
	// With one turn, 195-273 MiB over four runs (363 under -race).
	const bound = 640 << 20
	if grew > bound {
		t.Errorf("heap grew by %d MiB under the bombs, over %d MiB", grew>>20, bound>>20)
	}
}

// protowireVarint encodes v as a protobuf varint.
func protowireVarint(v uint64) []byte {
	var b []byte
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

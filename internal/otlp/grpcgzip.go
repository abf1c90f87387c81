package otlp

import (
	"io"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/encoding"
	// The Collector's otlp exporter gzips by default, and gRPC servers
	// decode only the compressors registered in the process. Imported
	// here so that its init, which registers grpc-go's gzip, runs before
	// this package's, which wraps it.
	_ "google.golang.org/grpc/encoding/gzip"
)

// grpc-go decompresses a message before any handler or interceptor sees
// it, up to the server's MaxRecvMsgSize (the decompression limit), and a
// server takes any number of messages at once. So that a burst of small
// gzipped messages that each decompress to the limit cannot take that
// limit's worth of memory each, the gzip decompressions of gRPC messages
// wait for one of a bounded number of turns (LimitGRPCDecompressions).
// They wait rather than fail: grpc-go answers a failed decompression as
// Internal, which OTLP exporters drop instead of retrying. A turn is held
// from the start of a message's decompression until grpc-go closes the
// reader, which it does once the message is whole (or over the limit).

var decompressionTurns atomic.Pointer[chan struct{}]

// LimitGRPCDecompressions lets at most n gzip decompressions of gRPC
// messages run at once in this process; n <= 0 lifts the bound. The
// server sets it from its in-flight budget and decompression limit. gRPC's
// compressors are registered per process, so the bound is too.
func LimitGRPCDecompressions(n int) {
	if n <= 0 {
		decompressionTurns.Store(nil)
		return
	}
	ch := make(chan struct{}, n)
	decompressionTurns.Store(&ch)
}

func init() {
	encoding.RegisterCompressor(&turnGzip{inner: encoding.GetCompressor("gzip")})
}

// turnGzip is grpc-go's gzip compressor with its decompressions taking
// turns.
type turnGzip struct{ inner encoding.Compressor }

func (c *turnGzip) Name() string { return c.inner.Name() }

func (c *turnGzip) Compress(w io.Writer) (io.WriteCloser, error) { return c.inner.Compress(w) }

func (c *turnGzip) Decompress(r io.Reader) (io.Reader, error) {
	turns := decompressionTurns.Load()
	if turns == nil {
		return c.inner.Decompress(r)
	}
	*turns <- struct{}{}
	dr, err := c.inner.Decompress(r)
	if err != nil {
		<-*turns
		return nil, err
	}
	return &turnReader{r: dr, turns: *turns}, nil
}

// turnReader gives its turn back when it is closed.
type turnReader struct {
	r     io.Reader
	turns chan struct{}
	once  sync.Once
}

func (t *turnReader) Read(p []byte) (int, error) { return t.r.Read(p) }

func (t *turnReader) Close() error {
	var err error
	t.once.Do(func() {
		if c, ok := t.r.(io.Closer); ok {
			err = c.Close()
		}
		<-t.turns
	})
	return err
}

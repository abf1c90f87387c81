package push

import (
	"compress/gzip"
	"io"

	"connectrpc.com/connect"

	"github.com/hearth-profiler/hearth/internal/ingest"
)

// leasedGzip is Connect's gzip decompressor with every decompressed byte
// counted in the ingester's in-flight budget while the message is being
// decompressed. Connect decompresses a message before the handler runs,
// so without it a few kilobytes of compressed zeros per request could
// each take the message limit in memory, any number at once; past the
// budget the request is refused as busy (resource exhausted), which
// clients retry.
type leasedGzip struct {
	budget *ingest.Budget
	lease  *ingest.Lease
	gz     *gzip.Reader
	err    error // of the last Reset
}

func newLeasedGzip(budget *ingest.Budget) connect.Decompressor {
	return &leasedGzip{budget: budget}
}

// Reset starts a new message with a new, empty lease.
func (d *leasedGzip) Reset(r io.Reader) error {
	d.lease.Release()
	d.lease = d.budget.Lease()
	if d.gz == nil {
		d.gz, d.err = gzip.NewReader(r)
	} else {
		d.err = d.gz.Reset(r)
	}
	return d.err
}

func (d *leasedGzip) Read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	n, err := d.gz.Read(p)
	if gerr := d.lease.Grow(int64(n)); gerr != nil {
		return 0, connect.NewError(connect.CodeResourceExhausted, gerr)
	}
	return n, err
}

// Close ends the message and gives its bytes back to the budget: the
// handler counts the decoded message in a lease of its own.
func (d *leasedGzip) Close() error {
	d.lease.Release()
	if d.gz == nil || d.err != nil {
		return nil
	}
	return d.gz.Close()
}

// newGzipWriter is the compressor Connect uses by default, named again
// because WithCompression replaces both halves.
func newGzipWriter() connect.Compressor { return gzip.NewWriter(nil) }

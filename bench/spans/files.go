package spans

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// A workload written to a directory, so that every peer is sent the same
// bytes and the encoding is not done while a server is measured:
//
//	DIR/manifest.json   the Config, the counts (Stats), sample traces
//	DIR/requests.bin    the batches in order, each framed as a 4-byte
//	                    big-endian body length, a 4-byte span count, and
//	                    the ExportTraceServiceRequest protobuf body

// ManifestFormat names the layout above; a reader refuses another.
const ManifestFormat = "hearth-bench-spans/1"

// requestsFile is the framed batches' file name in a workload directory.
const requestsFile = "requests.bin"

// maxFrameBytes bounds one framed body, so that a damaged length cannot
// make a reader allocate gigabytes.
const maxFrameBytes = 64 << 20

// Manifest describes a workload directory.
type Manifest struct {
	Format   string  `json:"format"`
	Config   Config  `json:"config"`
	Stats    Stats   `json:"stats"`
	Services int     `json:"services"`
	Routes   int     `json:"routes"`
	Made     string  `json:"made"` // RFC 3339, when it was written
	Seconds  float64 `json:"seconds"`
	// Samples are the first trace of evenly spaced batches (at most 64),
	// for lookups by trace ID.
	Samples []TraceSample `json:"samples"`
}

// Generate makes every batch with workers goroutines and calls fn with
// them in order, from one goroutine. It stops at fn's first error.
func (w *Workload) Generate(ctx context.Context, workers int, fn func(Batch) error) error {
	workers = max(1, min(workers, w.batches))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		b   Batch
		err error
	}
	// Worker j makes batches j, j+workers, ...; reading the workers'
	// channels in turn gives the batches in order.
	chans := make([]chan result, workers)
	var wg sync.WaitGroup
	for j := range chans {
		chans[j] = make(chan result, 2)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(chans[j])
			for i := j; i < w.batches; i += workers {
				b, err := w.Encode(i)
				select {
				case chans[j] <- result{b, err}:
				case <-ctx.Done():
					return
				}
				if err != nil {
					return
				}
			}
		}()
	}
	defer wg.Wait()
	for i := range w.batches {
		r, ok := <-chans[i%workers]
		if !ok {
			return ctx.Err()
		}
		if r.err != nil {
			return r.err
		}
		if err := fn(r.b); err != nil {
			return err
		}
	}
	return nil
}

// sampleStride is the batch stride of a manifest's sample traces.
func sampleStride(batches int) int { return max(1, (batches+63)/64) }

// WriteDir writes the workload to dir (made if missing), with workers
// goroutines encoding, and returns its manifest.
func WriteDir(ctx context.Context, dir string, w *Workload, workers int) (*Manifest, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("workload directory: %w", err)
	}
	t0 := time.Now()
	f, err := os.Create(filepath.Join(dir, requestsFile))
	if err != nil {
		return nil, fmt.Errorf("workload directory: %w", err)
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	m := &Manifest{Format: ManifestFormat, Config: w.cfg, Services: w.Services(), Routes: w.Routes()}
	stride := sampleStride(w.batches)
	err = w.Generate(ctx, workers, func(b Batch) error {
		m.Stats.Add(b.Stats)
		if b.Index%stride == 0 {
			m.Samples = append(m.Samples, b.First)
		}
		return writeFrame(bw, b.Body, int(b.Stats.Spans))
	})
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", filepath.Join(dir, requestsFile), err)
	}
	m.Made = time.Now().UTC().Format(time.RFC3339)
	m.Seconds = time.Since(t0).Seconds()
	js, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), append(js, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("write manifest: %w", err)
	}
	return m, nil
}

func writeFrame(w io.Writer, body []byte, spans int) error {
	var h [8]byte
	binary.BigEndian.PutUint32(h[:4], uint32(len(body)))
	binary.BigEndian.PutUint32(h[4:], uint32(spans))
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	_, err := w.Write(body)
	return err
}

// readFrame reads one framed batch; io.EOF when r is at its end.
func readFrame(r *bufio.Reader) (body []byte, spans int, err error) {
	var h [8]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, 0, fmt.Errorf("truncated frame header")
		}
		return nil, 0, err
	}
	n := binary.BigEndian.Uint32(h[:4])
	if n > maxFrameBytes {
		return nil, 0, fmt.Errorf("frame of %d bytes: more than %d, the file is damaged", n, maxFrameBytes)
	}
	body = make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, 0, fmt.Errorf("truncated frame of %d bytes: %w", n, err)
	}
	return body, int(binary.BigEndian.Uint32(h[4:])), nil
}

// Dir reads a workload directory's batches in order. Next may be called
// from several goroutines.
type Dir struct {
	Manifest *Manifest
	mu       sync.Mutex
	f        *os.File
	r        *bufio.Reader
	read     int
}

// OpenDir opens a directory written by WriteDir.
func OpenDir(dir string) (*Dir, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return nil, fmt.Errorf("workload directory %s: %w (write one with `go run ./bench/spangen write -out %s`)", dir, err, dir)
	}
	var m Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("workload manifest %s: %w", filepath.Join(dir, "manifest.json"), err)
	}
	if m.Format != ManifestFormat {
		return nil, fmt.Errorf("workload manifest %s: format %q, want %q", filepath.Join(dir, "manifest.json"), m.Format, ManifestFormat)
	}
	f, err := os.Open(filepath.Join(dir, requestsFile))
	if err != nil {
		return nil, fmt.Errorf("workload directory: %w", err)
	}
	return &Dir{Manifest: &m, f: f, r: bufio.NewReaderSize(f, 1<<20)}, nil
}

// Next returns the next batch's body and spans, io.EOF after the last.
func (d *Dir) Next() ([]byte, int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	body, spans, err := readFrame(d.r)
	if err == io.EOF && d.read != d.Manifest.Stats.Batches {
		return nil, 0, fmt.Errorf("%s: %d batches, the manifest says %d", d.f.Name(), d.read, d.Manifest.Stats.Batches)
	}
	if err != nil {
		return nil, 0, err
	}
	d.read++
	return body, spans, nil
}

// Close closes the requests file.
func (d *Dir) Close() error { return d.f.Close() }

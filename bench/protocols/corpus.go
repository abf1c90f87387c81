package main

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"

	"github.com/google/pprof/profile"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"
	"google.golang.org/protobuf/proto"

	"github.com/hearth-profiler/hearth/internal/otlp/otlptest"
)

// corpusProfile is one recorded CPU profile of the corpus.
type corpusProfile struct {
	name     string
	data     []byte // the file as recorded
	cpuNanos int64  // the sum of its cpu/nanoseconds values
}

// loadCorpus reads dir/cpu-*.pb.gz in name order.
func loadCorpus(dir string) ([]*corpusProfile, error) {
	names, err := filepath.Glob(filepath.Join(dir, "cpu-*.pb.gz"))
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no cpu-*.pb.gz in %s (run from the repository root, or set -corpus)", dir)
	}
	slices.Sort(names)
	var out []*corpusProfile
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		p, err := profile.ParseData(b)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", name, err)
		}
		c := &corpusProfile{name: filepath.Base(name), data: b}
		i := slices.IndexFunc(p.SampleType, func(st *profile.ValueType) bool { return st.Type == "cpu" && st.Unit == "nanoseconds" })
		if i < 0 {
			return nil, fmt.Errorf("%s: no cpu/nanoseconds sample type", name)
		}
		for _, s := range p.Sample {
			c.cpuNanos += s.Value[i]
		}
		out = append(out, c)
	}
	return out, nil
}

// workload is what every protocol sends: profile i is corpus profile
// i%len(corpus), of service svc-(i%services), for the 10 s window
// starting at from(i). Windows are distinct and consecutive, ending at end.
type workload struct {
	corpus   []*corpusProfile
	n        int
	services int
	window   int64 // seconds
	end      int64 // Unix seconds
}

func (w workload) start() int64              { return w.end - int64(w.n)*w.window }
func (w workload) from(i int) int64          { return w.start() + int64(i)*w.window }
func (w workload) service(i int) string      { return fmt.Sprintf("svc-%d", i%w.services) }
func (w workload) file(i int) *corpusProfile { return w.corpus[i%len(w.corpus)] }

// bodies are the pre-encoded payloads of the N profiles, per encoding.
// The pprof profiles are shared by /ingest and push; the OTLP ones by the
// OTLP rows, which differ only in how they carry them.
type bodies struct {
	pprof    [][]byte // gzipped pprof, re-stamped: what /ingest sends
	push     [][]byte // push.v1.PushRequest, protobuf
	otlp     [][]byte // ExportProfilesServiceRequest, protobuf
	otlpGzip [][]byte // the same, gzipped
}

// need says which encodings to prepare: those of the protocols selected.
type need struct{ push, otlp, otlpGzip bool }

func (n need) or(m need) need {
	return need{push: n.push || m.push, otlp: n.otlp || m.otlp, otlpGzip: n.otlpGzip || m.otlpGzip}
}

// encode prepares every body before any clock starts, on every core.
// Each profile is re-stamped (TimeNanos = its window's start,
// DurationNanos = the window) and written as runtime/pprof writes it; the
// push and OTLP bodies are made from that same profile.
func encode(w workload, nd need) (*bodies, error) {
	b := &bodies{pprof: make([][]byte, w.n)}
	if nd.push {
		b.push = make([][]byte, w.n)
	}
	if nd.otlp {
		b.otlp = make([][]byte, w.n)
	}
	if nd.otlpGzip {
		b.otlpGzip = make([][]byte, w.n)
	}
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
		next     = make(chan int)
	)
	fail := func(err error) {
		mu.Lock()
		firstErr = cmp.Or(firstErr, err)
		mu.Unlock()
	}
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			// Each worker parses each corpus profile once and changes
			// only its times; workers write distinct indices.
			parsed := map[*corpusProfile]*profile.Profile{}
			for i := range next {
				f := w.file(i)
				p := parsed[f]
				if p == nil {
					var err error
					if p, err = profile.ParseData(f.data); err != nil {
						fail(fmt.Errorf("parse %s: %w", f.name, err))
						continue
					}
					parsed[f] = p
				}
				p.TimeNanos = w.from(i) * 1e9
				p.DurationNanos = w.window * 1e9
				var buf bytes.Buffer
				if err := p.Write(&buf); err != nil {
					fail(fmt.Errorf("encode %s: %w", f.name, err))
					continue
				}
				b.pprof[i] = buf.Bytes()
				if nd.push {
					body, err := pushBody(w.service(i), b.pprof[i])
					if err != nil {
						fail(err)
						continue
					}
					b.push[i] = body
				}
				if nd.otlp || nd.otlpGzip {
					pd := otlptest.FromPprof(p, map[string]string{"service.name": w.service(i)})
					body, err := pprofileotlp.NewExportRequestFromProfiles(pd).MarshalProto()
					if err != nil {
						fail(fmt.Errorf("encode OTLP of %s: %w", f.name, err))
						continue
					}
					if nd.otlp {
						b.otlp[i] = body
					}
					if nd.otlpGzip {
						b.otlpGzip[i] = gzipBytes(body)
					}
				}
			}
		})
	}
	for i := range w.n {
		next <- i
	}
	close(next)
	wg.Wait()
	return b, firstErr
}

// pushRequest is one series with one raw profile, as Grafana Alloy's
// pyroscope.write sends a scraped CPU profile.
func pushRequest(service string, pprof []byte) *pushv1.PushRequest {
	return &pushv1.PushRequest{Series: []*pushv1.RawProfileSeries{{
		Labels: []*typesv1.LabelPair{
			{Name: "__name__", Value: "process_cpu"},
			{Name: "service_name", Value: service},
		},
		Samples: []*pushv1.RawSample{{RawProfile: pprof}},
	}}}
}

// pushBody is pushRequest as the generated Connect client encodes it.
func pushBody(service string, pprof []byte) ([]byte, error) {
	return proto.Marshal(pushRequest(service, pprof))
}

func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b) // a bytes.Buffer does not fail
	_ = zw.Close()
	return buf.Bytes()
}

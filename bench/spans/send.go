package spans

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// ExportMethod is OTLP's gRPC method for traces.
const ExportMethod = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

// ErrUnimplemented says the server does not serve ExportMethod.
var ErrUnimplemented = errors.New("the server does not implement " + ExportMethod)

// Source gives the batches to send, each as its encoded body and its
// span count; io.EOF after the last. Next is called from several
// goroutines.
type Source interface {
	Next() (body []byte, spans int, err error)
}

// SendConfig says where and how to send.
type SendConfig struct {
	Addr    string // host:port of an OTLP gRPC server (cleartext HTTP/2)
	Tenant  string // sent as X-Scope-OrgID; empty sends none
	Clients int    // concurrent clients, each its own connection, each waiting for its answer before sending again
	Gzip    bool   // compress requests (grpc-encoding: gzip)
	// Timeout bounds one call; RetryFor bounds the retries of a batch the
	// server refused for now (Unavailable, ResourceExhausted), as
	// OpenTelemetry exporters retry them.
	Timeout  time.Duration
	RetryFor time.Duration
	// Progress, when set, is called about every second with the spans
	// acknowledged so far.
	Progress func(spans int64)
}

// SendResult is what a send achieved.
type SendResult struct {
	Requests    int64 `json:"requests"`     // acknowledged export calls
	Spans       int64 `json:"spans"`        // spans in them, refused ones included
	Bytes       int64 `json:"bytes"`        // protobuf bytes of them, before compression
	Failed      int64 `json:"failed"`       // calls that failed for good
	FailedSpans int64 `json:"failed_spans"` // spans in them
	Rejected    int64 `json:"rejected"`     // spans refused by partial_success
	Retries     int64 `json:"retries"`
	// Errors holds the first message of each kind of failure.
	Errors         []string `json:"errors,omitempty"`
	Seconds        float64  `json:"seconds"`
	SpansPerSecond float64  `json:"spans_per_s"` // acknowledged and not refused, per wall second
	P50Ms          float64  `json:"latency_p50_ms"`
	P99Ms          float64  `json:"latency_p99_ms"`
	MaxMs          float64  `json:"latency_max_ms"`
}

// rawCodec passes bodies encoded beforehand to grpc-go's transport as
// they are, so that what is measured is the server, and every peer is
// sent the same bytes. It is what ptraceotlp.NewGRPCClient sends, less
// the marshalling: the messages were made by ptraceotlp's MarshalProto.
type rawCodec struct{}

type rawMessage struct{ data []byte }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(*rawMessage)
	if !ok {
		return nil, fmt.Errorf("raw codec: cannot marshal %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(m.data)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*rawMessage)
	if !ok {
		return fmt.Errorf("raw codec: cannot unmarshal into %T", v)
	}
	m.data = data.Materialize()
	return nil
}

func (rawCodec) Name() string { return "proto" }

// Send sends every batch of src to cfg.Addr and reports how it went. It
// returns an error wrapping ErrUnimplemented, and stops, when the server
// does not serve the method; other failures are counted, not returned.
func Send(ctx context.Context, cfg SendConfig, src Source) (SendResult, error) {
	var res SendResult
	if cfg.Clients < 1 {
		return res, fmt.Errorf("%d clients: want at least 1", cfg.Clients)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Minute
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if cfg.Tenant != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "x-scope-orgid", cfg.Tenant)
	}
	opts := []grpc.CallOption{grpc.ForceCodecV2(rawCodec{}), grpc.MaxCallRecvMsgSize(16 << 20)}
	if cfg.Gzip {
		opts = append(opts, grpc.UseCompressor(gzip.Name))
	}
	var conns []*grpc.ClientConn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range cfg.Clients {
		c, err := grpc.NewClient(cfg.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return res, fmt.Errorf("connect to %s: %w", cfg.Addr, err)
		}
		conns = append(conns, c)
	}

	var (
		mu        sync.Mutex
		latencies []float64
		errKinds  = map[string]bool{}
		acked     atomic.Int64
		srcErr    error
	)
	note := func(kind, msg string) {
		mu.Lock()
		defer mu.Unlock()
		if !errKinds[kind] && len(errKinds) < 10 {
			errKinds[kind] = true
			res.Errors = append(res.Errors, msg)
		}
	}
	t0 := time.Now()
	stopProgress := make(chan struct{})
	if cfg.Progress != nil {
		go func() {
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-stopProgress:
					return
				case <-t.C:
					cfg.Progress(acked.Load())
				}
			}
		}()
	}
	var wg sync.WaitGroup
	for _, conn := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []float64
			defer func() {
				mu.Lock()
				latencies = append(latencies, lat...)
				mu.Unlock()
			}()
			for ctx.Err() == nil {
				body, spans, err := src.Next()
				if err == io.EOF {
					return
				}
				if err != nil {
					mu.Lock()
					srcErr = err
					mu.Unlock()
					cancel(err)
					return
				}
				start := time.Now()
				reply, retries, err := export(ctx, conn, cfg, body, opts)
				atomic.AddInt64(&res.Retries, int64(retries))
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					st := status.Convert(err)
					if st.Code() == codes.Unimplemented {
						cancel(fmt.Errorf("%w: %s", ErrUnimplemented, st.Message()))
						return
					}
					atomic.AddInt64(&res.Failed, 1)
					atomic.AddInt64(&res.FailedSpans, int64(spans))
					note(st.Code().String(), fmt.Sprintf("%s: %.300s", st.Code(), st.Message()))
					continue
				}
				lat = append(lat, float64(time.Since(start).Microseconds())/1000)
				atomic.AddInt64(&res.Requests, 1)
				atomic.AddInt64(&res.Spans, int64(spans))
				atomic.AddInt64(&res.Bytes, int64(len(body)))
				if rejected, msg, err := partialSuccess(reply); err != nil {
					note("answer", err.Error())
				} else if rejected > 0 {
					atomic.AddInt64(&res.Rejected, rejected)
					note("partial_success", fmt.Sprintf("partial_success: %d spans refused: %.300s", rejected, msg))
				}
				acked.Add(int64(spans))
			}
		}()
	}
	wg.Wait()
	close(stopProgress)
	res.Seconds = time.Since(t0).Seconds()
	if res.Seconds > 0 {
		res.SpansPerSecond = float64(res.Spans-res.Rejected) / res.Seconds
	}
	sort.Float64s(latencies)
	res.P50Ms, res.P99Ms = quantile(latencies, 0.5), quantile(latencies, 0.99)
	if len(latencies) > 0 {
		res.MaxMs = latencies[len(latencies)-1]
	}
	if srcErr != nil {
		return res, fmt.Errorf("read batches: %w", srcErr)
	}
	if cause := context.Cause(ctx); errors.Is(cause, ErrUnimplemented) {
		return res, cause
	}
	return res, ctx.Err()
}

// export makes one call, retrying while the server says it cannot take
// the batch now.
func export(ctx context.Context, conn *grpc.ClientConn, cfg SendConfig, body []byte, opts []grpc.CallOption) (*rawMessage, int, error) {
	deadline := time.Now().Add(cfg.RetryFor)
	backoff := 50 * time.Millisecond
	for retries := 0; ; retries++ {
		cctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		reply := &rawMessage{}
		err := conn.Invoke(cctx, ExportMethod, &rawMessage{data: body}, reply, opts...)
		cancel()
		if err == nil {
			return reply, retries, nil
		}
		code := status.Code(err)
		if (code != codes.Unavailable && code != codes.ResourceExhausted) || time.Now().Add(backoff).After(deadline) {
			return nil, retries, err
		}
		select {
		case <-ctx.Done():
			return nil, retries, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// partialSuccess reads an ExportTraceServiceResponse.
func partialSuccess(reply *rawMessage) (int64, string, error) {
	er := ptraceotlp.NewExportResponse()
	if err := er.UnmarshalProto(reply.data); err != nil {
		return 0, "", fmt.Errorf("decode export response: %w", err)
	}
	ps := er.PartialSuccess()
	return ps.RejectedSpans(), ps.ErrorMessage(), nil
}

func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

// LiveSource makes the workload's batches as they are sent, with workers
// goroutines encoding, in order.
func (w *Workload) LiveSource(ctx context.Context, workers int) Source {
	ch := make(chan Batch, 2*max(1, workers))
	ls := &liveSource{ch: ch}
	go func() {
		defer close(ch)
		ls.err = w.Generate(ctx, workers, func(b Batch) error {
			select {
			case ch <- b:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	return ls
}

type liveSource struct {
	ch  chan Batch
	err error // set before ch is closed
	mu  sync.Mutex
	st  Stats
}

func (s *liveSource) Next() ([]byte, int, error) {
	b, ok := <-s.ch
	if !ok {
		if s.err != nil {
			return nil, 0, s.err
		}
		return nil, 0, io.EOF
	}
	s.mu.Lock()
	s.st.Add(b.Stats)
	s.mu.Unlock()
	return b.Body, int(b.Stats.Spans), nil
}

// Stats counts the batches a live source has handed out.
func (s *liveSource) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st
}

// StatsOf returns the counts of a source made by LiveSource.
func StatsOf(src Source) (Stats, bool) {
	ls, ok := src.(*liveSource)
	if !ok {
		return Stats{}, false
	}
	return ls.Stats(), true
}

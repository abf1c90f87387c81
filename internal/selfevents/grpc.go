package selfevents

import (
	"context"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/hearth-profiler/hearth/internal/events"
	"github.com/hearth-profiler/hearth/internal/tenant"
)

// UnaryInterceptor records each unary gRPC call (OTLP exports) as a
// server span named by its method, with its status code and tenant.
func (r *Recorder) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if r == nil {
			return handler(ctx, req)
		}
		start := time.Now()
		s := &span{trace: randomTraceID(), id: randomSpanID()}
		var parent events.SpanID
		md, _ := metadata.FromIncomingContext(ctx)
		if tp := md.Get("traceparent"); len(tp) > 0 {
			if tid, pid, ok := parseTraceparent(tp[0]); ok {
				s.trace, parent = tid, pid
			}
		}
		resp, err := handler(withSpan(ctx, s), req)
		code := status.Code(err)
		e := events.Event{Start: start.UnixNano(), Duration: int64(time.Since(start)), TraceID: s.trace, SpanID: s.id,
			ParentID: parent, Name: info.FullMethod, Kind: events.KindServer,
			Attrs: []events.Attr{
				{Key: "span.rpc.system", Value: events.String("grpc")},
				{Key: "span.rpc.method", Value: events.String(info.FullMethod)},
				{Key: "span.rpc.grpc.status_code", Value: events.Int(int64(code))},
			}}
		if err != nil {
			e.Status, e.StatusMessage = events.StatusError, status.Convert(err).Message()
		}
		if t := md.Get(strings.ToLower(tenant.Header)); len(t) > 0 {
			e.Attrs = append(e.Attrs, events.Attr{Key: "span.hearth.tenant", Value: events.String(t[0])})
		}
		s.mu.Lock()
		e.Attrs = append(e.Attrs, s.attrs...)
		s.mu.Unlock()
		r.Record(e)
		return resp, err
	}
}

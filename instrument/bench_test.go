package instrument

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// BenchmarkStartEnd starts a child span and ends it, with the SDK's
// tracer and with it wrapped: the difference is what the labels cost.
// The spans record (always sampled) and go nowhere, so that the SDK's
// own work is as small as it gets.
func BenchmarkStartEnd(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	defer func() { _ = tp.Shutdown(context.Background()) }()
	for _, c := range []struct {
		name string
		tp   trace.TracerProvider
	}{{"sdk", tp}, {"instrument", TracerProvider(tp)}} {
		b.Run(c.name, func(b *testing.B) {
			tracer := c.tp.Tracer("bench")
			ctx, root := tracer.Start(context.Background(), "root")
			defer root.End()
			b.ReportAllocs()
			for b.Loop() {
				_, span := tracer.Start(ctx, "child")
				span.End()
			}
		})
	}
}

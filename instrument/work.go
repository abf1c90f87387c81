package instrument

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// The fields Run records on every unit of work.
const (
	// ResultField is "success", "error" or "canceled".
	ResultField = "result"
	// ErrorField is the error's text, when there is one.
	ErrorField = "error"
)

// The values of ResultField.
const (
	ResultSuccess  = "success"
	ResultError    = "error"
	ResultCanceled = "canceled"
)

// Run runs f as one unit of work: a span named name, started with tracer
// from ctx with opts (trace.WithAttributes, trace.WithSpanKind), that
// ends when f returns. The span records the
// result (ResultField: success, error, or canceled when the error is the
// context's cancellation or deadline) and the error's text (ErrorField),
// and its status is Error when f failed for another reason than being
// canceled. A panic in f is recorded as an error and panics on. Run
// returns f's error.
func Run(ctx context.Context, tracer trace.Tracer, name string, f func(context.Context) error, opts ...trace.SpanStartOption) (err error) {
	ctx, span := tracer.Start(ctx, name, opts...)
	defer func() {
		if p := recover(); p != nil {
			record(span, fmt.Errorf("panic: %v", p))
			span.End()
			panic(p)
		}
		record(span, err)
		span.End()
	}()
	return f(ctx)
}

func record(span trace.Span, err error) {
	switch {
	case err == nil:
		span.SetAttributes(attribute.String(ResultField, ResultSuccess))
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		span.SetAttributes(attribute.String(ResultField, ResultCanceled), attribute.String(ErrorField, err.Error()))
	default:
		span.SetAttributes(attribute.String(ResultField, ResultError), attribute.String(ErrorField, err.Error()))
		span.SetStatus(codes.Error, err.Error())
	}
}

// AddFields adds fields to the span of ctx: every identifier at hand
// (user, tenant, order, build) belongs on the event, where a query can
// group by it. Values are as Field makes them.
func AddFields(ctx context.Context, fields ...attribute.KeyValue) {
	trace.SpanFromContext(ctx).SetAttributes(fields...)
}

// AddField adds one field to the span of ctx.
func AddField(ctx context.Context, key string, value any) {
	trace.SpanFromContext(ctx).SetAttributes(Field(key, value))
}

// AddTraceFields adds fields to the span of ctx and returns a context
// that gives them to every span started from it with a tracer of
// TracerProvider: the rest of the request in this process, so that each
// of its events can be grouped by them.
func AddTraceFields(ctx context.Context, fields ...attribute.KeyValue) context.Context {
	AddFields(ctx, fields...)
	prev, _ := ctx.Value(traceFieldsKey{}).(*traceFields)
	return context.WithValue(ctx, traceFieldsKey{}, &traceFields{prev: prev, fields: fields})
}

// AddTraceField is AddTraceFields of one field.
func AddTraceField(ctx context.Context, key string, value any) context.Context {
	return AddTraceFields(ctx, Field(key, value))
}

type traceFieldsKey struct{}

// traceFields are the fields of AddTraceFields, newest last, as a list
// that each call extends without changing what earlier contexts see.
type traceFields struct {
	prev   *traceFields
	fields []attribute.KeyValue
	once   sync.Once
	flat   []attribute.KeyValue
}

// all returns every field, oldest first: a key set twice keeps the
// newest value, as SetAttributes keeps the last.
func (f *traceFields) all() []attribute.KeyValue {
	f.once.Do(func() {
		if f.prev != nil {
			f.flat = append(f.flat, f.prev.all()...)
		}
		f.flat = append(f.flat, f.fields...)
	})
	return f.flat
}

// Field makes an attribute of a Go value: strings, bools, integers and
// floats as themselves, errors and fmt.Stringers as their text, anything
// else as fmt's %v.
func Field(key string, value any) attribute.KeyValue {
	switch v := value.(type) {
	case string:
		return attribute.String(key, v)
	case bool:
		return attribute.Bool(key, v)
	case int:
		return attribute.Int(key, v)
	case int64:
		return attribute.Int64(key, v)
	case int32:
		return attribute.Int64(key, int64(v))
	case uint32:
		return attribute.Int64(key, int64(v))
	case float64:
		return attribute.Float64(key, v)
	case float32:
		return attribute.Float64(key, float64(v))
	case []string:
		return attribute.StringSlice(key, v)
	case error:
		return attribute.String(key, v.Error())
	case fmt.Stringer:
		return attribute.String(key, v.String())
	}
	return attribute.String(key, fmt.Sprint(value))
}

package otlp

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pprofile"
	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/hearth-profiler/hearth/internal/ingest"
	"github.com/hearth-profiler/hearth/internal/storage"
	"github.com/hearth-profiler/hearth/internal/tenant"
)

// RegisterGRPC serves opentelemetry.proto.collector.profiles.v1development
// .ProfilesService/Export on s, storing through ing. The size of one
// request is bounded by s's grpc.MaxRecvMsgSize (4 MiB unless set).
func RegisterGRPC(s *grpc.Server, ing *ingest.Ingester, logger *slog.Logger) {
	pprofileotlp.RegisterGRPCServer(s, NewGRPCServer(ing, Options{Logger: logger}))
}

// NewGRPCServer returns the ProfilesService implementation that
// RegisterGRPC registers, for callers that set Options.
func NewGRPCServer(ing *ingest.Ingester, opts Options) pprofileotlp.GRPCServer {
	return &grpcServer{exp: &exporter{ing: ing, opts: opts.withDefaults()}}
}

// tenantMetadataKey is tenant.Header as gRPC metadata keys are: lower case.
var tenantMetadataKey = strings.ToLower(tenant.Header)

type grpcServer struct {
	// The embedded value supplies the unexported method that the
	// GRPCServer interface requires; Export below replaces its Export.
	*pprofileotlp.UnimplementedGRPCServer
	exp *exporter
}

// Export stores one export request. pdata has already checked the
// request's development version and decoded it; a message that does not
// decode is answered by grpc-go itself.
func (g *grpcServer) Export(ctx context.Context, req pprofileotlp.ExportRequest) (pprofileotlp.ExportResponse, error) {
	var sizer pprofile.ProtoMarshaler
	ctx, ten, release, err := grpcAdmit(ctx, g.exp.ing, func() int64 { return int64(sizer.ProfilesSize(req.Profiles())) })
	defer release()
	resp := pprofileotlp.NewExportResponse()
	if err == nil {
		resp, err = g.exp.export(ctx, ten, req.Profiles())
	}
	return resp, grpcError(err)
}

// grpcAdmit reads the tenant of a gRPC export call and admits its message,
// whose decoded size is size(): grpc-go has read and decoded the message
// (within MaxRecvMsgSize), and it counts against the in-flight bound and
// the tenant's ingest rate from here. The returned ctx carries the lease;
// release gives it back, and must be called whatever the error.
func grpcAdmit(ctx context.Context, adm ingest.Admitter, size func() int64) (_ context.Context, ten string, release func(), _ error) {
	var id string
	if vs := metadata.ValueFromIncomingContext(ctx, tenantMetadataKey); len(vs) > 0 {
		id = vs[0]
	}
	ten, err := tenant.Check(id)
	if err != nil {
		return ctx, "", func() {}, status.Error(codes.InvalidArgument, err.Error())
	}
	ctx, lease := adm.Lease(ctx)
	n := size()
	if err := lease.Grow(n); err != nil {
		return ctx, ten, lease.Release, err
	}
	return ctx, ten, lease.Release, adm.AdmitBytes(ten, n)
}

// grpcError is the gRPC status of an export's error (nil: nil).
func grpcError(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	if be, ok := errors.AsType[*ingest.BusyError](err); ok {
		return status.Error(codes.ResourceExhausted, be.Error())
	}
	if rl, ok := errors.AsType[*ingest.RateLimitedError](err); ok {
		// RetryInfo tells OTLP exporters when to send again.
		return withRetryInfo(status.New(codes.ResourceExhausted, rl.Error()), rl.RetryAfter)
	}
	if se, ok := errors.AsType[*storageError](err); ok && errors.Is(err, storage.ErrBehind) {
		// Hearth cannot keep up: as the ingest rate limit answers.
		return withRetryInfo(status.New(codes.ResourceExhausted, se.what+" not stored, retry later: "+se.err.Error()), ingest.RetryAfter)
	}
	if se, ok := errors.AsType[*storageError](err); ok {
		// Unavailable is retryable for OTLP exporters; RetryInfo says
		// how long to wait, as Retry-After does over HTTP.
		return withRetryInfo(status.New(codes.Unavailable, se.what+" not stored, retry later: "+se.err.Error()), ingest.RetryAfter)
	}
	if he, ok := errors.AsType[*httpError](err); ok {
		return status.Error(grpcCode(he.status), he.msg)
	}
	if ie, ok := errors.AsType[*ingest.InputError](err); ok {
		// ResourceExhausted without RetryInfo, for a request over a
		// limit, tells OTLP exporters not to send it again.
		return status.Error(grpcCode(inputStatus(ie)), ie.Msg)
	}
	return status.Error(codes.Internal, err.Error())
}

func withRetryInfo(st *status.Status, after time.Duration) error {
	if withRetry, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(after)}); err == nil {
		st = withRetry
	}
	return st.Err()
}

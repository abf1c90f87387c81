package otlp

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"go.opentelemetry.io/collector/pdata/pprofile"
	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/hearth-profiler/hearth/internal/ingest"
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
	var id string
	if vs := metadata.ValueFromIncomingContext(ctx, tenantMetadataKey); len(vs) > 0 {
		id = vs[0]
	}
	ten, err := tenant.Check(id)
	if err != nil {
		return pprofileotlp.NewExportResponse(), status.Error(codes.InvalidArgument, err.Error())
	}
	// grpc-go has read and decoded the message (within MaxRecvMsgSize);
	// it counts against the in-flight bound from here, with what its
	// profiles decompress to.
	ctx, lease := g.exp.ing.Lease(ctx)
	defer lease.Release()
	var sizer pprofile.ProtoMarshaler
	size := int64(sizer.ProfilesSize(req.Profiles()))
	err = lease.Grow(size)
	if err == nil {
		err = g.exp.ing.AdmitBytes(ten, size)
	}
	var resp pprofileotlp.ExportResponse
	if err == nil {
		resp, err = g.exp.export(ctx, ten, req.Profiles())
	} else {
		resp = pprofileotlp.NewExportResponse()
	}
	var se *storageError
	if be, ok := errors.AsType[*ingest.BusyError](err); ok {
		return resp, status.Error(codes.ResourceExhausted, be.Error())
	}
	if rl, ok := errors.AsType[*ingest.RateLimitedError](err); ok {
		// RetryInfo tells OTLP exporters when to send again.
		st := status.New(codes.ResourceExhausted, rl.Error())
		if withRetry, derr := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(rl.RetryAfter)}); derr == nil {
			st = withRetry
		}
		return resp, st.Err()
	}
	if errors.As(err, &se) {
		// Unavailable is retryable for OTLP exporters; RetryInfo says
		// how long to wait, as Retry-After does over HTTP.
		st := status.New(codes.Unavailable, "profiles not stored, retry later: "+se.err.Error())
		if withRetry, derr := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(ingest.RetryAfter)}); derr == nil {
			st = withRetry
		}
		return resp, st.Err()
	}
	if err != nil {
		return resp, status.Error(codes.Internal, err.Error())
	}
	return resp, nil
}

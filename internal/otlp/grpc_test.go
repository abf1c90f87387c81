package otlp

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pprofile"
	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/hearth-profiler/hearth/internal/otlp/otlptest"
	"github.com/hearth-profiler/hearth/internal/profiletest"
	"github.com/hearth-profiler/hearth/internal/query"
)

// exportMethod is the full gRPC method name of OTLP profile exports.
const exportMethod = "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export"

// grpcTestServer serves RegisterGRPC on a loopback port.
type grpcTestServer struct {
	store  *profiletest.Store
	eng    *query.Engine
	client pprofileotlp.GRPCClient
	conn   *grpc.ClientConn
}

func newGRPCTestServer(tb testing.TB) *grpcTestServer {
	tb.Helper()
	st := profiletest.OpenStore(tb)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := grpc.NewServer()
	RegisterGRPC(srv, st.Ing, nil)
	go func() { _ = srv.Serve(lis) }()
	tb.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	return &grpcTestServer{store: st, eng: query.NewEngine(st.DB), client: pprofileotlp.NewGRPCClient(conn), conn: conn}
}

func grpcContext(tb testing.TB, kv ...string) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	tb.Cleanup(cancel)
	if len(kv) > 0 {
		ctx = metadata.AppendToOutgoingContext(ctx, kv...)
	}
	return ctx
}

// TestExportGRPC exports with pdata's own gRPC client and reads back what
// was stored, in the tenant the metadata names.
func TestExportGRPC(t *testing.T) {
	s := newGRPCTestServer(t)
	resp, err := s.client.Export(grpcContext(t), pprofileotlp.NewExportRequestFromProfiles(exampleProfiles()))
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	if ps := resp.PartialSuccess(); ps.RejectedProfiles() != 0 {
		t.Errorf("%d profiles refused: %s", ps.RejectedProfiles(), ps.ErrorMessage())
	}
	checkExampleStored(t, s.eng, "anonymous")

	if _, err := s.client.Export(grpcContext(t, "x-scope-orgid", "team-b"), pprofileotlp.NewExportRequestFromProfiles(exampleProfiles())); err != nil {
		t.Fatalf("export as team-b: %v", err)
	}
	checkExampleStored(t, s.eng, "team-b")
}

// TestExportGRPCPartialSuccess: one bad profile of three is refused and
// named; the other two are stored.
func TestExportGRPCPartialSuccess(t *testing.T) {
	s := newGRPCTestServer(t)
	resp, err := s.client.Export(grpcContext(t), pprofileotlp.NewExportRequestFromProfiles(badStringIndex()))
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	ps := resp.PartialSuccess()
	if ps.RejectedProfiles() != 1 || !strings.Contains(ps.ErrorMessage(), "resource_profiles[1].scope_profiles[0].profiles[0]: sample type name: string index") {
		t.Errorf("partial success {%d %q}, want one refusal naming the profile and its bad string index", ps.RejectedProfiles(), ps.ErrorMessage())
	}
	checkExampleStored(t, s.eng, "anonymous")
}

// TestExportGRPCErrors checks the status of each request the server
// refuses whole, and that nothing of it was stored.
func TestExportGRPCErrors(t *testing.T) {
	// A resource attribute whose key refers past the string table: the
	// message decodes, but its references do not resolve.
	var kv, res, rp, badRef []byte
	kv = protowire.AppendTag(kv, 3, protowire.VarintType) // KeyValue.key_strindex
	kv = protowire.AppendVarint(kv, 99)
	res = protowire.AppendTag(res, 1, protowire.BytesType) // Resource.attributes
	res = protowire.AppendBytes(res, kv)
	rp = protowire.AppendTag(rp, 1, protowire.BytesType) // ResourceProfiles.resource
	rp = protowire.AppendBytes(rp, res)
	badRef = protowire.AppendTag(badRef, 1, protowire.BytesType) // resource_profiles
	badRef = protowire.AppendBytes(badRef, rp)

	good := encodeExport(t, exampleProfiles(), false)
	for _, tc := range []struct {
		name string
		md   []string
		body []byte
		code codes.Code
		msg  string
	}{
		// grpc-go answers a message that does not decode before any
		// handler runs, with Internal; OTLP exporters do not retry it,
		// as with InvalidArgument.
		{name: "garbage", body: []byte("\xff\xff\xff\xff not protobuf"), code: codes.Internal, msg: "unmarshal"},
		{name: "bad string reference", body: badRef, code: codes.InvalidArgument, msg: "invalid key_strindex 99"},
		{name: "unsupported development version", md: []string{pprofileotlp.DevelopmentVersionHeader, "3"}, body: good, code: codes.InvalidArgument, msg: "supported version is 1"},
		{name: "bad tenant", md: []string{"x-scope-orgid", "a/b"}, body: good, code: codes.InvalidArgument, msg: "invalid tenant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newGRPCTestServer(t)
			var out []byte
			in := tc.body
			err := s.conn.Invoke(grpcContext(t, tc.md...), exportMethod, &in, &out, grpc.ForceCodecV2(otlptest.RawCodec{}))
			st := status.Convert(err)
			if st.Code() != tc.code || !strings.Contains(st.Message(), tc.msg) {
				t.Errorf("status {%v %q}, want %v with %q", st.Code(), st.Message(), tc.code, tc.msg)
			}
			types, err := s.eng.ProfileTypes(context.Background(), request("{}"))
			if err != nil || len(types) != 0 {
				t.Errorf("stored %v (err %v), want nothing", types, err)
			}
		})
	}
}

// TestExportGRPCStorageFailure: a store that cannot write answers
// Unavailable, which exporters retry, with the delay to wait.
func TestExportGRPCStorageFailure(t *testing.T) {
	s := newGRPCTestServer(t)
	if err := s.store.DB.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := s.client.Export(grpcContext(t), pprofileotlp.NewExportRequestFromProfiles(exampleProfiles()))
	st := status.Convert(err)
	if st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "wal is closed") {
		t.Fatalf("status {%v %q}, want Unavailable naming the cause", st.Code(), st.Message())
	}
	var delay time.Duration
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			delay = ri.RetryDelay.AsDuration()
		}
	}
	if delay != time.Duration(RetryAfterSeconds)*time.Second {
		t.Errorf("RetryInfo delay %v, want %v", delay, time.Duration(RetryAfterSeconds)*time.Second)
	}
}

// TestExportGRPCEmpty: an empty request succeeds and stores nothing.
func TestExportGRPCEmpty(t *testing.T) {
	s := newGRPCTestServer(t)
	resp, err := s.client.Export(grpcContext(t), pprofileotlp.NewExportRequestFromProfiles(pprofile.NewProfiles()))
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	if ps := resp.PartialSuccess(); ps.RejectedProfiles() != 0 {
		t.Errorf("partial success %d: %s", ps.RejectedProfiles(), ps.ErrorMessage())
	}
	if types, err := s.eng.ProfileTypes(context.Background(), request("{}")); err != nil || len(types) != 0 {
		t.Errorf("stored %v (err %v), want nothing", types, err)
	}
}

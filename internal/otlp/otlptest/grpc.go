package otlptest

import (
	"context"
	"fmt"
	"net"
	"sync"

	"go.opentelemetry.io/collector/pdata/pprofile"
	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
)

// RawCodec passes gRPC messages as the bytes on the wire (a *[]byte), to
// send what no client would and to capture what a client sends. Its name
// is the protobuf codec's, so that the content-subtype stays
// application/grpc.
type RawCodec struct{}

// Marshal returns the bytes *v holds.
func (RawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}

// Unmarshal stores the message's bytes in *v.
func (RawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

// Name is "proto".
func (RawCodec) Name() string { return "proto" }

// CaptureGRPC returns the message that pdata's gRPC client puts on the wire
// to export pd, as a loopback server that keeps the raw bytes received it.
func CaptureGRPC(ctx context.Context, pd pprofile.Profiles) ([]byte, error) {
	var mu sync.Mutex
	var got []byte
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := grpc.NewServer(grpc.ForceServerCodecV2(RawCodec{}), grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
		var msg []byte
		if err := stream.RecvMsg(&msg); err != nil {
			return err
		}
		mu.Lock()
		got = msg
		mu.Unlock()
		empty := []byte{} // an ExportProfilesServiceResponse with nothing set
		return stream.SendMsg(&empty)
	}))
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if _, err := pprofileotlp.NewGRPCClient(conn).Export(ctx, pprofileotlp.NewExportRequestFromProfiles(pd)); err != nil {
		return nil, fmt.Errorf("export to the capturing server: %w", err)
	}
	mu.Lock()
	defer mu.Unlock()
	return got, nil
}

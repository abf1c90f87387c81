package main

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"go.opentelemetry.io/collector/pdata/pprofile/pprofileotlp"

	"github.com/hearth-profiler/hearth/internal/push"
)

// exportPath is OTLP's gRPC method, as an HTTP/2 path.
const exportPath = "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export"

// target is where a started server listens.
type target struct {
	base     string // http://host:port of --listen
	grpcBase string // http://host:port of --otlp.grpc.listen; "" when off
}

// protocol is one way in: how a pre-encoded body travels, and how the
// answer says it was stored.
type protocol struct {
	name  string
	about string // what a row of the table sends, for the legend
	// needs names the pre-encoded bodies the protocol sends; the gzipped
	// pprof profiles are always made, since every body is made from them.
	needs need
	// grpcPort asks for a server with --otlp.grpc.listen on a port of its
	// own (grpc-go's own HTTP/2 transport, not net/http's).
	grpcPort bool
	// h2c sends over cleartext HTTP/2 (one connection, a stream per
	// request, as a gRPC client does); otherwise HTTP/1.1 with a
	// keep-alive connection per client.
	h2c bool
	// body picks the protocol's pre-encoded payload of profile i.
	body func(b *bodies, i int) []byte
	// request builds request i; called before the clock starts.
	request func(t target, w workload, i int, body []byte) (*http.Request, error)
	// check reads an answer whose body has been read whole.
	check func(resp *http.Response, body []byte) error
}

// protocols are the ways in, in the order they run.
var protocols = []protocol{
	{
		name:  "ingest",
		about: "Pyroscope's `POST /ingest?name=svc-K&format=pprof&from=&until=`, the gzipped pprof as the body (HTTP/1.1)",
		body:  func(b *bodies, i int) []byte { return b.pprof[i] },
		request: func(t target, w workload, i int, body []byte) (*http.Request, error) {
			q := url.Values{}
			q.Set("name", w.service(i))
			q.Set("format", "pprof")
			q.Set("from", strconv.FormatInt(w.from(i), 10))
			q.Set("until", strconv.FormatInt(w.from(i)+w.window, 10))
			return post(t.base+"/ingest?"+q.Encode(), "application/octet-stream", body)
		},
		check: checkStatus,
	},
	{
		name:  "push",
		needs: need{push: true},
		about: "Pyroscope's `push.v1.PusherService/Push`, Connect protocol, protobuf (HTTP/1.1): one series " +
			"{__name__=process_cpu, service_name=svc-K} with the gzipped pprof as its raw profile",
		body: func(b *bodies, i int) []byte { return b.push[i] },
		request: func(t target, _ workload, _ int, body []byte) (*http.Request, error) {
			// A Connect unary call is a POST of the bare message.
			r, err := post(t.base+push.PushProcedure, "application/proto", body)
			if err == nil {
				r.Header.Set("Connect-Protocol-Version", "1")
			}
			return r, err
		},
		check: checkStatus,
	},
	{
		name:  "otlp-http",
		needs: need{otlpGzip: true},
		about: "OTLP `POST /v1development/profiles`, protobuf, gzipped as OTLP exporters send by default (HTTP/1.1)",
		body:  func(b *bodies, i int) []byte { return b.otlpGzip[i] },
		request: func(t target, _ workload, _ int, body []byte) (*http.Request, error) {
			r, err := post(t.base+"/v1development/profiles", "application/x-protobuf", body)
			if err == nil {
				r.Header.Set("Content-Encoding", "gzip")
			}
			return r, err
		},
		check: checkOTLPHTTP,
	},
	{
		name:  "otlp-http-identity",
		needs: need{otlp: true},
		about: "the same OTLP/HTTP request, not compressed",
		body:  func(b *bodies, i int) []byte { return b.otlp[i] },
		request: func(t target, _ workload, _ int, body []byte) (*http.Request, error) {
			return post(t.base+"/v1development/profiles", "application/x-protobuf", body)
		},
		check: checkOTLPHTTP,
	},
	{
		name:  "otlp-grpc",
		needs: need{otlp: true},
		about: "OTLP gRPC `ProfilesService/Export` on the main port (cleartext HTTP/2, served through grpc-go's " +
			"ServeHTTP), not compressed",
		h2c:  true,
		body: func(b *bodies, i int) []byte { return b.otlp[i] },
		request: func(t target, _ workload, _ int, body []byte) (*http.Request, error) {
			return grpcRequest(t.base, body)
		},
		check: checkGRPC,
	},
	{
		name:     "otlp-grpc-port",
		needs:    need{otlp: true},
		about:    "the same gRPC call on `--otlp.grpc.listen`, grpc-go's own server transport",
		grpcPort: true,
		h2c:      true,
		body:     func(b *bodies, i int) []byte { return b.otlp[i] },
		request: func(t target, _ workload, _ int, body []byte) (*http.Request, error) {
			return grpcRequest(t.grpcBase, body)
		},
		check: checkGRPC,
	},
}

func post(u, contentType string, body []byte) (*http.Request, error) {
	r, err := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	r.Header.Set("Content-Type", contentType)
	return r, nil
}

// grpcRequest is a unary gRPC call as a gRPC client puts it on the wire:
// an HTTP/2 POST whose body is the message behind a 5-byte prefix (a
// compressed flag, 0 here, and the length). It is written by hand rather
// than through grpc-go's client (which pprofileotlp.NewGRPCClient wraps)
// because that client marshals each message when it sends it, and the
// benchmark sends bodies encoded beforehand; the bytes are the same, which
// the tests check.
func grpcRequest(base string, msg []byte) (*http.Request, error) {
	var prefix [5]byte
	binary.BigEndian.PutUint32(prefix[1:], uint32(len(msg)))
	// The prefix is read before the message rather than copied in front
	// of it: the message stays the one encoded beforehand.
	body := func() io.ReadCloser {
		return io.NopCloser(io.MultiReader(bytes.NewReader(prefix[:]), bytes.NewReader(msg)))
	}
	r, err := http.NewRequest(http.MethodPost, base+exportPath, body())
	if err != nil {
		return nil, err
	}
	r.ContentLength = int64(len(prefix) + len(msg))
	// Lets the transport send the request again on a new connection if
	// the server closed the old one before reading it.
	r.GetBody = func() (io.ReadCloser, error) { return body(), nil }
	r.Header.Set("Content-Type", "application/grpc")
	r.Header.Set("Te", "trailers")
	return r, nil
}

func checkStatus(resp *http.Response, body []byte) error {
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %.300s", resp.Status, bytes.TrimSpace(body))
	}
	return nil
}

// checkOTLPHTTP reads the ExportProfilesServiceResponse: a 200 may still
// say that some profiles were refused.
func checkOTLPHTTP(resp *http.Response, body []byte) error {
	if err := checkStatus(resp, body); err != nil {
		return err
	}
	return checkExportResponse(body)
}

func checkExportResponse(msg []byte) error {
	er := pprofileotlp.NewExportResponse()
	if err := er.UnmarshalProto(msg); err != nil {
		return fmt.Errorf("decode export response: %w", err)
	}
	if ps := er.PartialSuccess(); ps.RejectedProfiles() != 0 {
		return fmt.Errorf("%d profiles refused: %s", ps.RejectedProfiles(), ps.ErrorMessage())
	}
	return nil
}

// checkGRPC reads a unary gRPC answer: the status in the trailers (or, for
// an error without a message, in the headers), then the one message.
func checkGRPC(resp *http.Response, body []byte) error {
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %.300s", resp.Status, bytes.TrimSpace(body))
	}
	status, msg := resp.Trailer.Get("Grpc-Status"), resp.Trailer.Get("Grpc-Message")
	if status == "" {
		status, msg = resp.Header.Get("Grpc-Status"), resp.Header.Get("Grpc-Message")
	}
	if status != "0" {
		if m, err := url.PathUnescape(msg); err == nil {
			msg = m // grpc-message is percent-encoded
		}
		return fmt.Errorf("grpc-status %q: %s", status, msg)
	}
	if len(body) < 5 || body[0] != 0 || int(binary.BigEndian.Uint32(body[1:5])) != len(body)-5 {
		return fmt.Errorf("answer is not one uncompressed gRPC message (%d bytes)", len(body))
	}
	return checkExportResponse(body[5:])
}

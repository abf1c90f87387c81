package push

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"google.golang.org/protobuf/proto"

	"github.com/hearth-profiler/hearth/internal/profiletest"
	"github.com/hearth-profiler/hearth/internal/testfiles"
)

// FuzzPush sends arbitrary bytes as the body of a Connect protobuf Push
// request: the handler must never panic and must answer 2xx or 4xx (5xx
// would say that the server failed, not the input).
func FuzzPush(f *testing.F) {
	raw, err := os.ReadFile(testfiles.CorpusCPU(f)[0])
	if err != nil {
		f.Fatal(err)
	}
	for _, req := range []*pushv1.PushRequest{
		newPushRequest(series{labels: []string{"__name__", "process_cpu", "service_name", "f"}, profiles: [][]byte{raw}}),
		newPushRequest(series{labels: []string{"__name__", "memory", "bad-name", "x"}, profiles: [][]byte{[]byte("x")}}),
		newPushRequest(series{labels: []string{"service_name", "s"}, profiles: [][]byte{raw[:100]}}),
	} {
		b, err := proto.Marshal(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x80})
	store := profiletest.OpenStore(f)
	_, h := NewHandler(store.Ing, nil)
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, PushProcedure, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/proto")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code < 200 || rec.Code >= 500 || (rec.Code >= 300 && rec.Code < 400) {
			t.Fatalf("status %d for %d bytes: %s", rec.Code, len(body), rec.Body.Bytes())
		}
	})
}

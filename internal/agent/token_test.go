package agent

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"

	"github.com/hearth-profiler/hearth/internal/labels"
	"github.com/hearth-profiler/hearth/internal/logtest"
)

// TestPushToken: a server that wants a token answers 401 without one and
// with a wrong one, 403 to a token of another tenant; the agent logs why
// each time without the token, keeps the profiles, and pushes them once
// the token it is given changes to a good one.
func TestPushToken(t *testing.T) {
	c := &captureServer{}
	mux := http.NewServeMux()
	mux.Handle(pushv1connect.NewPusherServiceHandler(c))
	var seen sync.Map // Authorization headers received
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		seen.Store(auth, true)
		switch auth {
		case "Bearer good-token":
			mux.ServeHTTP(w, r)
		case "Bearer other-tenant-token":
			http.Error(w, "token may not push to team-a", http.StatusForbidden)
		default:
			http.Error(w, "no valid token", http.StatusUnauthorized)
		}
	}))
	defer ts.Close()
	var token atomic.Value
	token.Store("")
	var logs logtest.Buffer
	p := newPusher(pusherOptions{
		server: ts.URL, tenant: "team-a", token: func() string { return token.Load().(string) },
		maxBufferBytes: 1 << 20, timeout: 5 * time.Second, retryMin: 5 * time.Millisecond, retryMax: 20 * time.Millisecond,
	}, slog.New(slog.NewTextHandler(&logs, nil)))
	p.enqueue([]*pushItem{newPushItem(labels.FromStrings("service_name", "svc"), []byte("profile"))})
	runPusher(t, p)
	waitLog := func(what string) {
		t.Helper()
		waitFor(t, 10*time.Second, "log of "+what, func() bool { return strings.Contains(logs.String(), what) })
	}
	waitLog("the server needs a token and none was sent")
	token.Store("wrong-s3cret-token")
	waitLog("the server did not accept the token")
	token.Store("other-tenant-token")
	waitLog(`the token is not allowed to push to tenant \"team-a\"`)
	token.Store("good-token")
	waitFor(t, 10*time.Second, "the push with the good token", func() bool { st, _, _ := p.snapshot(); return st.pushed == 1 })
	if _, ok := seen.Load("Bearer wrong-s3cret-token"); !ok {
		t.Error("the wrong token was never sent: the agent did not follow its token")
	}
	for _, secret := range []string{"wrong-s3cret-token", "other-tenant-token", "good-token"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log shows a token (%s):\n%s", secret, logs.String())
		}
	}
	if st, _, _ := p.snapshot(); st.rejected != 0 || st.dropped != 0 {
		t.Errorf("stats %+v: profiles refused for their token must wait, not be dropped", st)
	}
}

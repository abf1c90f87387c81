package settings

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/go-cmp/cmp"
	settingsv1 "github.com/grafana/pyroscope/api/gen/proto/go/settings/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/settings/v1/settingsv1connect"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/hearth-profiler/hearth/internal/tenant"
)

func serve(t *testing.T, s *Store) settingsv1connect.SettingsServiceClient {
	t.Helper()
	path, h := NewHandler(s)
	mux := http.NewServeMux()
	mux.Handle(path, h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return settingsv1connect.NewSettingsServiceClient(srv.Client(), srv.URL, connect.WithProtoJSON())
}

func open(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, DefaultLimits, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return time.UnixMilli(5000) }
	return s
}

func req[T any](tenantID string, msg *T) *connect.Request[T] {
	r := connect.NewRequest(msg)
	if tenantID != "" {
		r.Header().Set(tenant.Header, tenantID)
	}
	return r
}

func get(t *testing.T, c settingsv1connect.SettingsServiceClient, tenantID string) []*settingsv1.Setting {
	t.Helper()
	res, err := c.Get(context.Background(), req(tenantID, &settingsv1.GetSettingsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	return res.Msg.Settings
}

func TestSettings(t *testing.T) {
	dir := t.TempDir()
	c := serve(t, open(t, dir))
	ctx := context.Background()
	set := func(tenantID, name, value string, at int64) (*settingsv1.Setting, error) {
		res, err := c.Set(ctx, req(tenantID, &settingsv1.SetSettingsRequest{Setting: &settingsv1.Setting{Name: name, Value: value, ModifiedAt: at}}))
		if err != nil {
			return nil, err
		}
		return res.Msg.Setting, nil
	}
	if got, err := set("", "pyroscope.ui.theme", "dark", 0); err != nil || got.ModifiedAt != 5000 {
		t.Fatalf("set without a time: %v %v", got, err)
	}
	if _, err := set("", "b.setting", "1", 100); err != nil {
		t.Fatal(err)
	}
	if _, err := set("team-a", "b.setting", "theirs", 100); err != nil {
		t.Fatal(err)
	}
	// Older than stored: refused, and the stored one stays.
	if _, err := set("", "b.setting", "older", 99); connect.CodeOf(err) != connect.CodeAlreadyExists {
		t.Errorf("an older set: %v, want already_exists", err)
	}
	if _, err := set("", "b.setting", "2", 100); err != nil {
		t.Errorf("a set as old as the stored one: %v", err)
	}
	want := []*settingsv1.Setting{{Name: "b.setting", Value: "2", ModifiedAt: 100}, {Name: "pyroscope.ui.theme", Value: "dark", ModifiedAt: 5000}}
	if d := cmp.Diff(want, get(t, c, ""), protocmp.Transform()); d != "" {
		t.Errorf("settings (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]*settingsv1.Setting{{Name: "b.setting", Value: "theirs", ModifiedAt: 100}}, get(t, c, "team-a"), protocmp.Transform()); d != "" {
		t.Errorf("another tenant's settings (-want +got):\n%s", d)
	}
	for _, bad := range []*settingsv1.SetSettingsRequest{
		{},
		{Setting: &settingsv1.Setting{Value: "no name"}},
		{Setting: &settingsv1.Setting{Name: strings.Repeat("n", 300)}},
		{Setting: &settingsv1.Setting{Name: "big", Value: strings.Repeat("v", 70<<10)}},
	} {
		if _, err := c.Set(ctx, req("", bad)); connect.CodeOf(err) != connect.CodeInvalidArgument {
			t.Errorf("set %.40v: %v, want invalid_argument", bad, err)
		}
	}
	if _, err := c.Delete(ctx, req("", &settingsv1.DeleteSettingsRequest{Name: "pyroscope.ui.theme"})); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Delete(ctx, req("", &settingsv1.DeleteSettingsRequest{Name: "never.set"})); err != nil {
		t.Errorf("delete of nothing: %v", err)
	}

	// A restart finds them.
	c = serve(t, open(t, dir))
	if d := cmp.Diff(want[:1], get(t, c, ""), protocmp.Transform()); d != "" {
		t.Errorf("settings after reopen (-want +got):\n%s", d)
	}

	// A write that fails stores nothing.
	if err := os.Mkdir(filepath.Join(dir, FileName+".tmp"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := set("", "c.setting", "x", 0); connect.CodeOf(err) != connect.CodeInternal {
		t.Errorf("a set that cannot be written: %v, want internal", err)
	}
	if d := cmp.Diff(want[:1], get(t, c, ""), protocmp.Transform()); d != "" {
		t.Errorf("settings after a failed write (-want +got):\n%s", d)
	}
}

// TestDamagedFile: a file that cannot be read is set aside, and the
// settings start empty rather than the server not at all.
func TestDamagedFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, FileName), []byte(`{"anonymous": {"a": `), 0o600); err != nil {
		t.Fatal(err)
	}
	c := serve(t, open(t, dir))
	if got := get(t, c, ""); len(got) != 0 {
		t.Errorf("settings from a damaged file: %v", got)
	}
	aside, _ := filepath.Glob(filepath.Join(dir, FileName+".damaged-*"))
	if len(aside) != 1 {
		t.Errorf("damaged file not set aside: %v", aside)
	}
	if _, err := c.Set(context.Background(), req("", &settingsv1.SetSettingsRequest{Setting: &settingsv1.Setting{Name: "a", Value: "1"}})); err != nil {
		t.Errorf("set after a damaged file: %v", err)
	}
}

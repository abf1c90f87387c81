package server_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect"
	capabilitiesv1 "github.com/grafana/pyroscope/api/gen/proto/go/capabilities/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/capabilities/v1/capabilitiesv1connect"
	settingsv1 "github.com/grafana/pyroscope/api/gen/proto/go/settings/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/settings/v1/settingsv1connect"
	vcsv1 "github.com/grafana/pyroscope/api/gen/proto/go/vcs/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/vcs/v1/vcsv1connect"

	"github.com/hearth-profiler/hearth/internal/server"
)

// TestDrilldownServices calls, with Pyroscope's generated clients over
// every protocol, what Profiles Drilldown asks of a server besides
// queries: feature flags, recording rules, and services Hearth does not
// have, which must answer "unimplemented" rather than the web UI's 405.
func TestDrilldownServices(t *testing.T) {
	cfg := server.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.SelfProfileInterval = 0
	s, err := server.New(cfg, slog.New(slog.NewTextHandler(tlog{t}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	// gRPC clients speak HTTP/2 in clear text, as to Hearth's port.
	ts := httptest.NewUnstartedServer(s.Handler())
	ts.Config.Protocols = new(http.Protocols)
	ts.Config.Protocols.SetHTTP1(true)
	ts.Config.Protocols.SetUnencryptedHTTP2(true)
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		s.Close()
	})
	h2 := &http.Client{Transport: &http.Transport{Protocols: new(http.Protocols)}}
	h2.Transport.(*http.Transport).Protocols.SetUnencryptedHTTP2(true)
	type opts struct {
		client *http.Client
		opt    []connect.ClientOption
	}
	for name, o := range map[string]opts{
		"connect-proto": {ts.Client(), nil},
		"connect-json":  {ts.Client(), []connect.ClientOption{connect.WithProtoJSON()}},
		"grpc":          {h2, []connect.ClientOption{connect.WithGRPC()}},
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			flags, err := capabilitiesv1connect.NewFeatureFlagsServiceClient(o.client, ts.URL, o.opt...).
				GetFeatureFlags(ctx, connect.NewRequest(&capabilitiesv1.GetFeatureFlagsRequest{}))
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, f := range flags.Msg.FeatureFlags {
				if f.Enabled {
					t.Errorf("flag %s is on", f.Name)
				}
				names = append(names, f.Name)
			}
			if strings.Join(names, ",") != "pyroscopeRuler,pyroscopeRulerFunctions,utf8LabelNames,v2StorageLayer" {
				t.Errorf("flags %v", names)
			}

			rules := settingsv1connect.NewRecordingRulesServiceClient(o.client, ts.URL, o.opt...)
			list, err := rules.ListRecordingRules(ctx, connect.NewRequest(&settingsv1.ListRecordingRulesRequest{}))
			if err != nil || len(list.Msg.Rules) != 0 {
				t.Errorf("list recording rules: %v, %v; want none", list, err)
			}
			_, err = rules.UpsertRecordingRule(ctx, connect.NewRequest(&settingsv1.UpsertRecordingRuleRequest{MetricName: "x"}))
			if connect.CodeOf(err) != connect.CodeUnimplemented || !strings.Contains(err.Error(), "recording rules: Hearth does not evaluate") {
				t.Errorf("upsert recording rule: %v; want unimplemented, saying why", err)
			}

			_, err = vcsv1connect.NewVCSServiceClient(o.client, ts.URL, o.opt...).GithubApp(ctx, connect.NewRequest(&vcsv1.GithubAppRequest{}))
			if connect.CodeOf(err) != connect.CodeUnimplemented || !strings.Contains(err.Error(), "vcs.v1.VCSService/GithubApp") {
				t.Errorf("a service Hearth does not have: %v; want unimplemented naming it", err)
			}
		})
	}
	// The web UI still answers what is not a procedure call.
	res, err := http.Post(ts.URL+"/not-a-procedure", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /not-a-procedure: %d; want the UI's 405", res.StatusCode)
	}
}

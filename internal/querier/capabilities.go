package querier

import (
	"context"
	"net/http"

	"connectrpc.com/connect"
	capabilitiesv1 "github.com/grafana/pyroscope/api/gen/proto/go/capabilities/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/capabilities/v1/capabilitiesv1connect"
)

// NewFeatureFlagsHandler serves capabilities.v1.FeatureFlagsService, which
// Profiles Drilldown asks what optional server features it may use. Hearth
// names Pyroscope's flags and has none of them on: it runs no ruler, takes
// Prometheus-style label names only, and is not Pyroscope's v2 storage.
func NewFeatureFlagsHandler(opts ...connect.HandlerOption) (string, http.Handler) {
	return capabilitiesv1connect.NewFeatureFlagsServiceHandler(featureFlags{}, opts...)
}

type featureFlags struct{}

func (featureFlags) GetFeatureFlags(context.Context, *connect.Request[capabilitiesv1.GetFeatureFlagsRequest]) (*connect.Response[capabilitiesv1.GetFeatureFlagsResponse], error) {
	off := func(name, desc string) *capabilitiesv1.FeatureFlag {
		return &capabilitiesv1.FeatureFlag{Name: name, Enabled: false, Description: &desc}
	}
	return connect.NewResponse(&capabilitiesv1.GetFeatureFlagsResponse{FeatureFlags: []*capabilitiesv1.FeatureFlag{
		off("pyroscopeRuler", "Hearth exports no metrics from profiles through rules."),
		off("pyroscopeRulerFunctions", "Hearth exports no metrics from profiles through rules."),
		off("utf8LabelNames", "Hearth takes Prometheus-style label names only."),
		off("v2StorageLayer", "Hearth keeps profiles in its own storage, not Pyroscope's."),
	}}), nil
}

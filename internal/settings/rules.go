package settings

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"connectrpc.com/connect"
	settingsv1 "github.com/grafana/pyroscope/api/gen/proto/go/settings/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/settings/v1/settingsv1connect"
)

// NewRecordingRulesHandler serves settings.v1.RecordingRulesService.
// Hearth does not evaluate recording rules (metrics made from profiles),
// so it lists none, and refuses to make or change one with Unimplemented,
// saying so. Profiles Drilldown lists them on every flame graph view.
func NewRecordingRulesHandler(opts ...connect.HandlerOption) (string, http.Handler) {
	return settingsv1connect.NewRecordingRulesServiceHandler(rules{}, opts...)
}

type rules struct{}

var errNoRules = connect.NewError(connect.CodeUnimplemented, errors.New("recording rules: Hearth does not evaluate them"))

func (rules) ListRecordingRules(_ context.Context, req *connect.Request[settingsv1.ListRecordingRulesRequest]) (*connect.Response[settingsv1.ListRecordingRulesResponse], error) {
	if _, err := tenantOf(req.Header()); err != nil {
		return nil, err
	}
	return connect.NewResponse(&settingsv1.ListRecordingRulesResponse{}), nil
}

func (rules) GetRecordingRule(_ context.Context, req *connect.Request[settingsv1.GetRecordingRuleRequest]) (*connect.Response[settingsv1.GetRecordingRuleResponse], error) {
	if _, err := tenantOf(req.Header()); err != nil {
		return nil, err
	}
	return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("recording rule %q: Hearth keeps no recording rules", req.Msg.Id))
}

func (rules) UpsertRecordingRule(context.Context, *connect.Request[settingsv1.UpsertRecordingRuleRequest]) (*connect.Response[settingsv1.UpsertRecordingRuleResponse], error) {
	return nil, errNoRules
}

func (rules) DeleteRecordingRule(context.Context, *connect.Request[settingsv1.DeleteRecordingRuleRequest]) (*connect.Response[settingsv1.DeleteRecordingRuleResponse], error) {
	return nil, errNoRules
}

// Package settings serves settings.v1.SettingsService, the Connect API in
// which Grafana's Profiles Drilldown app keeps a tenant's settings (name,
// value, time of change) and reads them back when it opens. They are kept
// per tenant in one JSON file in the data directory, replaced whole and
// atomically on every change; a file that cannot be read is set aside,
// logged, and the settings start empty, so that it never stops a start.
//
// The semantics are Pyroscope's: Set without a time of change stamps it
// with now, Set older than what is stored fails with AlreadyExists, Get
// lists by name, Delete of a name that is not there succeeds.
package settings

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"connectrpc.com/connect"
	settingsv1 "github.com/grafana/pyroscope/api/gen/proto/go/settings/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/settings/v1/settingsv1connect"

	"github.com/hearth-profiler/hearth/internal/tenant"
)

// FileName is the settings file in the data directory.
const FileName = "settings.json"

// Limits bound what a tenant may store.
type Limits struct {
	MaxSettings   int // settings per tenant
	MaxNameBytes  int
	MaxValueBytes int
}

// DefaultLimits are generous for what Drilldown keeps (a few settings of
// a few KB).
var DefaultLimits = Limits{MaxSettings: 1000, MaxNameBytes: 256, MaxValueBytes: 64 << 10}

// setting is one setting as the file holds it.
type setting struct {
	Value      string `json:"value"`
	ModifiedAt int64  `json:"modifiedAt"` // unix milliseconds
}

// Store keeps the settings of every tenant. It is safe for concurrent use.
type Store struct {
	path   string
	limits Limits
	logger *slog.Logger
	now    func() time.Time

	mu  sync.Mutex
	all map[string]map[string]setting // by tenant, then name
}

// Open reads the settings file of the data directory dir, if there is one.
func Open(dir string, limits Limits, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{path: filepath.Join(dir, FileName), limits: limits, logger: logger, now: time.Now,
		all: map[string]map[string]setting{}}
	raw, err := os.ReadFile(s.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("read settings: %w", err)
	}
	if err := json.Unmarshal(raw, &s.all); err != nil || s.all == nil {
		aside := fmt.Sprintf("%s.damaged-%d", s.path, time.Now().UnixNano())
		if rerr := os.Rename(s.path, aside); rerr != nil {
			return nil, fmt.Errorf("settings file %s cannot be read (%v) nor set aside: %w", s.path, err, rerr)
		}
		logger.Error("settings file cannot be read: set aside, settings start empty", "file", s.path, "moved_to", aside, "err", err)
		s.all = map[string]map[string]setting{}
	}
	return s, nil
}

// Get lists a tenant's settings by name.
func (s *Store) Get(tenantID string) []*settingsv1.Setting {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []*settingsv1.Setting{}
	for name, st := range s.all[tenantID] {
		out = append(out, &settingsv1.Setting{Name: name, Value: st.Value, ModifiedAt: st.ModifiedAt})
	}
	slices.SortFunc(out, func(a, b *settingsv1.Setting) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// ErrOlder is a Set older than the setting stored.
var ErrOlder = errors.New("a newer change of the setting is already stored")

// Set stores a setting once it is on disk. A setting without a time of
// change gets now.
func (s *Store) Set(tenantID string, in *settingsv1.Setting) (*settingsv1.Setting, error) {
	switch {
	case in.Name == "":
		return nil, errors.New("name: a setting needs a name")
	case len(in.Name) > s.limits.MaxNameBytes:
		return nil, fmt.Errorf("name: %d bytes, at most %d", len(in.Name), s.limits.MaxNameBytes)
	case len(in.Value) > s.limits.MaxValueBytes:
		return nil, fmt.Errorf("value of %s: %d bytes, at most %d", in.Name, len(in.Value), s.limits.MaxValueBytes)
	}
	out := &settingsv1.Setting{Name: in.Name, Value: in.Value, ModifiedAt: in.ModifiedAt}
	if out.ModifiedAt <= 0 {
		out.ModifiedAt = s.now().UnixMilli()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.all[tenantID]
	old, had := t[out.Name]
	if had && old.ModifiedAt > out.ModifiedAt {
		return nil, fmt.Errorf("set %s: %w", out.Name, ErrOlder)
	}
	if !had && len(t) >= s.limits.MaxSettings {
		return nil, fmt.Errorf("set %s: the tenant has %d settings, at most %d", out.Name, len(t), s.limits.MaxSettings)
	}
	if t == nil {
		t = map[string]setting{}
		s.all[tenantID] = t
	}
	t[out.Name] = setting{Value: out.Value, ModifiedAt: out.ModifiedAt}
	if err := s.save(); err != nil {
		// What is not on disk is not stored.
		if had {
			t[out.Name] = old
		} else {
			delete(t, out.Name)
		}
		return nil, err
	}
	return out, nil
}

// Delete removes a setting, once that is on disk.
func (s *Store) Delete(tenantID, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.all[tenantID]
	old, had := t[name]
	if !had {
		return nil
	}
	delete(t, name)
	if err := s.save(); err != nil {
		t[name] = old
		return err
	}
	return nil
}

// SaveError is a change that could not be written: it is not stored.
type SaveError struct{ Err error }

func (e *SaveError) Error() string { return "save settings: " + e.Err.Error() }
func (e *SaveError) Unwrap() error { return e.Err }

// save replaces the file with the settings as they are: a temporary file,
// synced, renamed over it, and the directory synced. The caller holds mu.
func (s *Store) save() error {
	raw, err := json.Marshal(s.all)
	if err != nil {
		return &SaveError{err}
	}
	tmp := s.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return &SaveError{err}
	}
	_, err = f.Write(raw)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, s.path)
	}
	if err != nil {
		os.Remove(tmp)
		return &SaveError{err}
	}
	if d, err := os.Open(filepath.Dir(s.path)); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return &SaveError{fmt.Errorf("sync directory: %w", err)}
		}
	}
	return nil
}

// handler implements settings.v1.SettingsService on a Store.
type handler struct{ s *Store }

var _ settingsv1connect.SettingsServiceHandler = handler{}

// NewHandler returns the handler of settings.v1.SettingsService and the
// path prefix to mount it at. The tenant is the X-Scope-OrgID header.
func NewHandler(s *Store, opts ...connect.HandlerOption) (string, http.Handler) {
	return settingsv1connect.NewSettingsServiceHandler(handler{s}, opts...)
}

func tenantOf(h http.Header) (string, error) {
	t, err := tenant.Check(h.Get(tenant.Header))
	if err != nil {
		return "", connect.NewError(connect.CodeInvalidArgument, err)
	}
	return t, nil
}

func (h handler) Get(_ context.Context, req *connect.Request[settingsv1.GetSettingsRequest]) (*connect.Response[settingsv1.GetSettingsResponse], error) {
	t, err := tenantOf(req.Header())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&settingsv1.GetSettingsResponse{Settings: h.s.Get(t)}), nil
}

func (h handler) Set(_ context.Context, req *connect.Request[settingsv1.SetSettingsRequest]) (*connect.Response[settingsv1.SetSettingsResponse], error) {
	t, err := tenantOf(req.Header())
	if err != nil {
		return nil, err
	}
	if req.Msg.Setting == nil {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("setting: no setting given"))
	}
	out, err := h.s.Set(t, req.Msg.Setting)
	var se *SaveError
	switch {
	case errors.Is(err, ErrOlder):
		return nil, connect.NewError(connect.CodeAlreadyExists, err)
	case errors.As(err, &se):
		return nil, connect.NewError(connect.CodeInternal, err)
	case err != nil:
		return nil, connect.NewError(connect.CodeInvalidArgument, err)
	}
	return connect.NewResponse(&settingsv1.SetSettingsResponse{Setting: out}), nil
}

func (h handler) Delete(_ context.Context, req *connect.Request[settingsv1.DeleteSettingsRequest]) (*connect.Response[settingsv1.DeleteSettingsResponse], error) {
	t, err := tenantOf(req.Header())
	if err != nil {
		return nil, err
	}
	if err := h.s.Delete(t, req.Msg.Name); err != nil {
		return nil, connect.NewError(connect.CodeInternal, err)
	}
	return connect.NewResponse(&settingsv1.DeleteSettingsResponse{}), nil
}

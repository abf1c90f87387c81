// Package eventstest holds what the tests of the events ways in share.
package eventstest

import (
	"context"
	"slices"
	"sync"

	"github.com/hearth-profiler/hearth/internal/events"
)

// Recorder is an events.Appender that keeps what it is given, by tenant,
// or fails with Err.
type Recorder struct {
	mu       sync.Mutex
	byTenant map[string][]events.Event
	calls    int
	// Err, when set, is what AppendEvents returns, storing nothing.
	Err error
}

// AppendEvents keeps evs under tenant, or returns Err.
func (r *Recorder) AppendEvents(_ context.Context, tenant string, evs []events.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls++
	if r.Err != nil {
		return r.Err
	}
	if r.byTenant == nil {
		r.byTenant = map[string][]events.Event{}
	}
	r.byTenant[tenant] = append(r.byTenant[tenant], evs...)
	return nil
}

// Events returns what tenant was given.
func (r *Recorder) Events(tenant string) []events.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.byTenant[tenant])
}

// Calls counts the calls of AppendEvents.
func (r *Recorder) Calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls
}

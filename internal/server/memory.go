package server

import (
	"context"
	"runtime/debug"
	"time"
)

// memoryRelease decides when the server hands the memory that ingest used
// back to the system: once writes pause for a whole tick, so that a resting
// server is not held at its peak RSS, and once per pause. Doing it during
// ingest would only cost CPU: the memory would be faulted straight back in.
type memoryRelease struct {
	last, releasedAt int64
}

func newMemoryRelease(appends int64) *memoryRelease {
	return &memoryRelease{last: appends, releasedAt: -1}
}

// due is called every tick with the writes so far, and says whether to
// release memory now.
func (m *memoryRelease) due(appends int64) bool {
	if appends != m.last {
		m.last = appends
		return false
	}
	if appends == m.releasedAt {
		return false
	}
	m.releasedAt = appends
	return true
}

// releaseMemory runs debug.FreeOSMemory when memoryRelease says so, every
// tick, until ctx is done.
func releaseMemory(ctx context.Context, every time.Duration, appends func() int64) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	m := newMemoryRelease(appends())
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if m.due(appends()) {
				debug.FreeOSMemory()
			}
		}
	}
}

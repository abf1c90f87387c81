// Package logtest holds what tests need to read a component's log: a
// buffer that the goroutines of a server or an agent may write to at once.
package logtest

import (
	"bytes"
	"sync"
)

// Buffer collects log lines from any goroutine.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

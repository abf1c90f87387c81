package server

import "github.com/hearth-profiler/hearth/internal/storage"

// HoldOpen makes Start wait for release between listening and opening the
// storage.
func HoldOpen(release <-chan struct{}) (restore func()) {
	old := beforeOpen
	beforeOpen = func() { <-release }
	return func() { beforeOpen = old }
}

// DB returns the server's storage, for tests that read back what arrived
// by ways in that have no query route yet.
func (s *Server) DB() *storage.DB { return s.db }

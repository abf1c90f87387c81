package server

// HoldOpen makes Start wait for release between listening and opening the
// storage.
func HoldOpen(release <-chan struct{}) (restore func()) {
	old := beforeOpen
	beforeOpen = func() { <-release }
	return func() { beforeOpen = old }
}

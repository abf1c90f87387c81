package auth

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// MaxFileBytes bounds the tokens file: thousands of entries fit.
const MaxFileBytes = 4 << 20

// DefaultPollInterval is how often Watch looks at the tokens file.
const DefaultPollInterval = 5 * time.Second

// File is a tokens file kept loaded: Reload and Watch read it again, and
// a file that does not parse leaves the tokens loaded before in place.
type File struct {
	path   string
	logger *slog.Logger
	cur    atomic.Pointer[Tokens]

	mu sync.Mutex // one read at a time; guards what follows
	// The file as last read: a poll reads it again only when its
	// modification time or size changed, or when it was read so soon
	// after its last change that a change in the same clock tick could
	// have kept both.
	modTime time.Time
	size    int64
	racy    bool
	sum     [sha256.Size]byte
}

// OpenFile loads the tokens file at path; an error leaves nothing loaded.
func OpenFile(path string, logger *slog.Logger) (*File, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	f := &File{path: path, logger: logger}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.load(true); err != nil {
		return nil, err
	}
	return f, nil
}

// Path is the file's path.
func (f *File) Path() string { return f.path }

// Tokens returns the tokens loaded last.
func (f *File) Tokens() *Tokens { return f.cur.Load() }

// Reload reads the file now. When it does not parse, the tokens loaded
// before stay, and the error is logged and returned.
func (f *File) Reload() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, err := f.load(true)
	if err != nil {
		f.logger.Error("reload tokens file; the tokens loaded before stay", "file", f.path, "err", err)
	}
	return err
}

// Watch reads the file again whenever it changes, looking every interval,
// until ctx is done.
func (f *File) Watch(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		f.mu.Lock()
		_, err := f.load(false)
		f.mu.Unlock()
		// A bad file is logged once, not at every look.
		switch {
		case err != nil && err.Error() != lastErr:
			f.logger.Error("reload tokens file; the tokens loaded before stay", "file", f.path, "err", err)
			lastErr = err.Error()
		case err == nil:
			lastErr = ""
		}
	}
}

// load reads and parses the file when force is set or it may have
// changed, and installs its tokens when its content changed. It reports
// whether it installed new tokens. f.mu is held.
func (f *File) load(force bool) (bool, error) {
	fi, err := os.Stat(f.path)
	if err != nil {
		return false, fmt.Errorf("read tokens file: %w", err)
	}
	if !force && !f.racy && fi.ModTime().Equal(f.modTime) && fi.Size() == f.size {
		return false, nil
	}
	readAt := time.Now()
	data, err := readFile(f.path)
	if err != nil {
		return false, err
	}
	f.modTime, f.size = fi.ModTime(), fi.Size()
	f.racy = readAt.Sub(fi.ModTime()) < 2*time.Second
	sum := sha256.Sum256(data)
	if sum == f.sum && f.cur.Load() != nil {
		return false, nil
	}
	ts, err := Parse(data)
	if err != nil {
		return false, fmt.Errorf("load %s: %w", f.path, err)
	}
	f.sum = sum
	f.cur.Store(ts)
	f.logger.Info("tokens loaded", "file", f.path, "tokens", len(ts.list), "names", ts.Names())
	if fi.Mode().Perm()&0o004 != 0 && ts.hasPlain {
		f.logger.Warn("the tokens file holds plain tokens and every user of this host can read it; use token_sha256, or chmod o-r", "file", f.path)
	}
	return true, nil
}

func readFile(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read tokens file: %w", err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read tokens file %s: %w", path, err)
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("tokens file %s is larger than %d bytes", path, MaxFileBytes)
	}
	return data, nil
}

package scrape

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	yaml "go.yaml.in/yaml/v2"
)

// MetaFilepath is the discovered label that names the file a target was
// read from, as in Prometheus.
const MetaFilepath = "__meta_filepath"

// maxFileSDBytes bounds one file_sd file: a list of targets, not a data
// set.
const maxFileSDBytes = 16 << 20

// group is a list of targets sharing labels, from static_configs or a
// file_sd file.
type group struct {
	targets []string
	labels  map[string]string
}

// ParseFileSD parses the contents of a file_sd file, a JSON (ext ".json")
// or YAML (".yml", ".yaml") list of {targets, labels}, as Prometheus
// reads it. Unknown fields, bad addresses and bad label names are errors.
func ParseFileSD(data []byte, ext string) ([]*StaticConfig, error) {
	if len(data) > maxFileSDBytes {
		return nil, fmt.Errorf("file is larger than %d bytes", maxFileSDBytes)
	}
	var groups []*StaticConfig
	switch ext {
	case ".json":
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&groups); err != nil {
			return nil, fmt.Errorf("parse JSON: %w", err)
		}
		if _, err := dec.Token(); err != io.EOF {
			return nil, errors.New("parse JSON: data after the list")
		}
	case ".yml", ".yaml":
		if err := yaml.UnmarshalStrict(data, &groups); err != nil {
			return nil, yamlError("parse YAML", err)
		}
	default:
		return nil, fmt.Errorf("unknown file extension %q: want .json, .yml or .yaml", ext)
	}
	for i, g := range groups {
		if g == nil {
			return nil, fmt.Errorf("entry %d is empty", i)
		}
		if err := validateGroup(g, true); err != nil {
			return nil, fmt.Errorf("entry %d: %w", i, err)
		}
	}
	return groups, nil
}

// fileDiscoverer keeps the target groups of one file_sd_configs entry up to
// date: it re-reads the files when fsnotify reports a change in their
// directories (after a short quiet period, since editors write in steps)
// and every refresh interval. A file that cannot be read or parsed keeps
// the groups it last had.
type fileDiscoverer struct {
	cfg      FileSDConfig
	debounce time.Duration
	logger   *slog.Logger
	notify   func() // called from the run goroutine when groups change

	mu     sync.Mutex
	byFile map[string][]group // the last good groups of each file
	reads  int                // completed refreshes, for tests

	cancel context.CancelFunc
	done   chan struct{}
}

func newFileDiscoverer(cfg FileSDConfig, debounce time.Duration, logger *slog.Logger, notify func()) *fileDiscoverer {
	d := &fileDiscoverer{
		cfg:      FileSDConfig{Files: slices.Clone(cfg.Files), RefreshInterval: cfg.RefreshInterval},
		debounce: debounce, logger: logger, notify: notify,
		byFile: map[string][]group{},
	}
	d.refresh()
	return d
}

// key identifies the discoverer's configuration, so that a reload that
// keeps it also keeps its state.
func (d *fileDiscoverer) key() string { return fileSDKey(&d.cfg) }

func fileSDKey(fc *FileSDConfig) string {
	return fmt.Sprintf("%q %d", fc.Files, fc.RefreshInterval)
}

// groups returns the current groups, by file name.
func (d *fileDiscoverer) groups() []group {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []group
	for _, f := range slices.Sorted(maps.Keys(d.byFile)) {
		out = append(out, d.byFile[f]...)
	}
	return out
}

// refresh reads the files again and says whether the groups changed.
func (d *fileDiscoverer) refresh() bool {
	var paths []string
	for _, pattern := range d.cfg.Files {
		m, err := filepath.Glob(pattern)
		if err != nil {
			d.logger.Warn("file_sd glob", "pattern", pattern, "err", err)
			continue
		}
		paths = append(paths, m...)
	}
	slices.Sort(paths)
	paths = slices.Compact(paths)

	d.mu.Lock()
	old := d.byFile
	d.mu.Unlock()
	next := make(map[string][]group, len(paths))
	for _, p := range paths {
		gs, err := readFileSD(p)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // removed between the glob and the read
			}
			if prev, ok := old[p]; ok {
				next[p] = prev
			}
			d.logger.Warn("read file_sd file; keeping its last good targets", "file", p, "err", err)
			continue
		}
		next[p] = gs
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	changed := !reflect.DeepEqual(next, d.byFile)
	d.byFile = next
	d.reads++
	return changed
}

func readFileSD(path string) ([]group, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSDBytes+1))
	if err != nil {
		return nil, err
	}
	scs, err := ParseFileSD(data, filepath.Ext(path))
	if err != nil {
		return nil, err
	}
	gs := make([]group, 0, len(scs))
	for _, sc := range scs {
		ls := make(map[string]string, len(sc.Labels)+1)
		maps.Copy(ls, sc.Labels)
		ls[MetaFilepath] = path
		gs = append(gs, group{targets: sc.Targets, labels: ls})
	}
	return gs, nil
}

// start runs the watcher until stop.
func (d *fileDiscoverer) start(ctx context.Context) {
	ctx, d.cancel = context.WithCancel(ctx)
	d.done = make(chan struct{})
	go d.run(ctx)
}

func (d *fileDiscoverer) stop() {
	if d.cancel == nil {
		return
	}
	d.cancel()
	<-d.done
}

func (d *fileDiscoverer) run(ctx context.Context) {
	defer close(d.done)
	var events <-chan fsnotify.Event
	var errs <-chan error
	w, err := fsnotify.NewWatcher()
	if err != nil {
		d.logger.Warn("file_sd: no change notifications, re-reading every refresh_interval", "err", err)
	} else {
		defer w.Close()
		events, errs = w.Events, w.Errors
	}
	// Directories are watched rather than files, so that a file replaced
	// by a rename (how editors and config tools write) is seen.
	watched := map[string]bool{}
	watch := func() {
		if w == nil {
			return
		}
		for _, pattern := range d.cfg.Files {
			dir := filepath.Dir(pattern)
			if watched[dir] {
				continue
			}
			if err := w.Add(dir); err != nil {
				d.logger.Warn("file_sd: watch directory", "dir", dir, "err", err)
				continue
			}
			watched[dir] = true
		}
	}
	update := func() {
		if d.refresh() {
			d.notify()
		}
	}
	watch()
	// The files were read when the discoverer was made; read them again
	// now that changes are watched, or a change in between would wait for
	// the refresh interval.
	update()
	tick := time.NewTicker(time.Duration(d.cfg.RefreshInterval))
	defer tick.Stop()
	var quiet *time.Timer
	var quietC <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			if quiet != nil {
				quiet.Stop()
			}
			return
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if !d.matches(ev.Name) {
				continue
			}
			if quiet == nil {
				quiet = time.NewTimer(d.debounce)
			} else {
				quiet.Reset(d.debounce)
			}
			quietC = quiet.C
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			d.logger.Warn("file_sd: watch", "err", err)
		case <-quietC:
			quietC = nil
			update()
		case <-tick.C:
			// A directory created after the start can be watched now.
			watch()
			update()
		}
	}
}

// matches says whether a changed path is one of the discoverer's files.
func (d *fileDiscoverer) matches(path string) bool {
	for _, pattern := range d.cfg.Files {
		if ok, _ := filepath.Match(pattern, path); ok {
			return true
		}
		if ok, _ := filepath.Match(filepath.Clean(pattern), filepath.Clean(path)); ok {
			return true
		}
	}
	return false
}

package scrape

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hearth-profiler/hearth/internal/ingest"
)

// Appender stores scraped profiles; *ingest.Ingester is one. Ingest is
// called from many goroutines at once. An *ingest.InputError says the
// profile was refused.
type Appender interface {
	Ingest(ctx context.Context, tenant string, r *ingest.Request) error
}

// Options tune a Manager. The zero value takes the defaults.
type Options struct {
	// FileSDDebounce is how long file_sd waits after a change notification
	// for more before it re-reads the files (default 200ms).
	FileSDDebounce time.Duration
	// StoreTimeout bounds storing one scraped profile (default 30s).
	StoreTimeout time.Duration
}

func (o *Options) setDefaults() {
	if o.FileSDDebounce <= 0 {
		o.FileSDDebounce = 200 * time.Millisecond
	}
	if o.StoreTimeout <= 0 {
		o.StoreTimeout = 30 * time.Second
	}
}

// counters are the manager's running totals.
type counters struct {
	scrapes, failures, bytes atomic.Uint64
}

// Manager runs the scrape loops of a configuration: one loop per endpoint
// of each target, each on its own schedule, so that a slow or dead target
// delays nobody else. It is safe for concurrent use.
//
// The usual sequence is NewManager, ApplyConfig, then Run in a goroutine;
// ApplyConfig may be called again at any time to reload. Nothing is
// scraped before Run, and nothing after Stop (or Run's context ending)
// returns.
type Manager struct {
	app    Appender
	logger *slog.Logger
	opts   Options
	stats  counters

	ctx    context.Context // ends with Stop; parent of every loop and watcher
	cancel context.CancelFunc

	mu      sync.Mutex
	started bool
	stopped bool
	pools   map[string]*pool // by job name
	order   []string         // job names in configuration order
	// manual makes loops scrape on Trigger instead of on their interval,
	// for benchmarks that count rounds.
	manual bool

	syncMu   sync.Mutex
	dirty    map[string]bool // jobs whose discovered targets changed
	syncWake chan struct{}
	syncDone chan struct{}

	stopOnce sync.Once
}

// pool is the running state of one job.
type pool struct {
	cfg      *ScrapeConfig
	external map[string]string
	client   *http.Client
	clientFP string
	files    []*fileDiscoverer
	targets  []*target
	loops    map[string]*loop // by loop key
}

// NewManager returns a manager that stores what it scrapes with app.
func NewManager(app Appender, logger *slog.Logger, opts Options) *Manager {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts.setDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{
		app: app, logger: logger.With("component", "scrape"), opts: opts,
		ctx: ctx, cancel: cancel,
		pools: map[string]*pool{}, dirty: map[string]bool{},
		syncWake: make(chan struct{}, 1), syncDone: make(chan struct{}),
	}
}

// ErrStopped is returned by ApplyConfig and Run once the manager stopped.
var ErrStopped = errors.New("scrape manager stopped")

// ApplyConfig validates cfg and makes it the running configuration. Loops
// whose target and settings are unchanged keep running with their state;
// loops of removed targets or changed settings are stopped (a scrape in
// flight is cancelled, or finishes storing what it already pulled) before
// their replacements start. On error, the previous configuration keeps
// running.
func (m *Manager) ApplyConfig(cfg *Config) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.stopped {
		return ErrStopped
	}
	// Validate fills in defaults; under m.mu, so that re-applying the
	// running configuration does not change it under a status reader.
	if err := cfg.Validate(); err != nil {
		return err
	}
	// Build what can fail before changing anything.
	next := make(map[string]*pool, len(cfg.ScrapeConfigs))
	var fresh []*fileDiscoverer
	for _, sc := range cfg.ScrapeConfigs {
		old := m.pools[sc.JobName]
		p := &pool{cfg: sc, external: cfg.Global.ExternalLabels, clientFP: clientFingerprint(&sc.HTTPClientConfig), loops: map[string]*loop{}}
		if old != nil && old.clientFP == p.clientFP {
			p.client = old.client
		} else {
			client, err := newClient(sc)
			if err != nil {
				return fmt.Errorf("job %q: %w", sc.JobName, err)
			}
			p.client = client
		}
		next[sc.JobName] = p
	}
	for _, sc := range cfg.ScrapeConfigs {
		p, old := next[sc.JobName], m.pools[sc.JobName]
		for _, fc := range sc.FileSDConfigs {
			// A discoverer whose configuration is unchanged is kept, with the
			// last good targets of files that are broken right now.
			var d *fileDiscoverer
			if old != nil {
				for _, od := range old.files {
					if od.key() == fileSDKey(fc) && !slices.Contains(p.files, od) {
						d = od
						break
					}
				}
			}
			if d == nil {
				job := sc.JobName
				d = newFileDiscoverer(*fc, m.opts.FileSDDebounce, m.logger.With("job", job), func() { m.requestSync(job) })
				fresh = append(fresh, d)
			}
			p.files = append(p.files, d)
		}
	}

	// Commit: stop what is gone, keep what is unchanged, start what is new.
	kept := map[*fileDiscoverer]bool{}
	keptClients := map[*http.Client]bool{}
	for _, p := range next {
		for _, d := range p.files {
			kept[d] = true
		}
		keptClients[p.client] = true
	}
	var stop []*loop
	for job, old := range m.pools {
		for _, d := range old.files {
			if !kept[d] {
				d.stop()
			}
		}
		if np := next[job]; np != nil {
			// syncPool below keeps the loops whose spec is unchanged.
			np.loops = old.loops
		} else {
			stop = append(stop, slices.Collect(maps.Values(old.loops))...)
		}
	}
	m.stopLoops(stop)
	prev := m.pools
	m.pools = next
	m.order = m.order[:0]
	for _, sc := range cfg.ScrapeConfigs {
		m.order = append(m.order, sc.JobName)
		m.syncPool(next[sc.JobName])
	}
	for _, old := range prev {
		if !keptClients[old.client] {
			old.client.CloseIdleConnections()
		}
	}
	if m.started {
		for _, d := range fresh {
			d.start(m.ctx)
		}
	}
	m.logger.Info("scrape config applied", "jobs", len(cfg.ScrapeConfigs), "targets", m.numTargets())
	return nil
}

func (m *Manager) numTargets() int {
	n := 0
	for _, p := range m.pools {
		n += len(p.targets)
	}
	return n
}

// syncPool brings the pool's loops in line with its current targets. The
// caller holds m.mu.
func (m *Manager) syncPool(p *pool) {
	groups := make([]group, 0, len(p.cfg.StaticConfigs))
	for _, st := range p.cfg.StaticConfigs {
		groups = append(groups, group{targets: st.Targets, labels: st.Labels})
	}
	for _, d := range p.files {
		groups = append(groups, d.groups()...)
	}
	p.targets = buildTargets(p.cfg, p.external, groups)
	want := map[string]bool{}
	var start []*loop
	for _, t := range p.targets {
		for _, ep := range p.cfg.endpoints {
			spec := newLoopSpec(p.cfg, t, ep, p.clientFP)
			key := spec.key()
			want[key] = true
			if _, ok := p.loops[key]; ok {
				continue // same target, same settings: it keeps running
			}
			l := m.newLoop(key, spec, t, ep, p.client)
			p.loops[key] = l
			start = append(start, l)
		}
	}
	var stop []*loop
	for key, l := range p.loops {
		if !want[key] {
			stop = append(stop, l)
			delete(p.loops, key)
		}
	}
	m.stopLoops(stop)
	if m.started && !m.stopped {
		for _, l := range start {
			m.startLoop(l)
		}
	}
}

func (m *Manager) newLoop(key string, spec loopSpec, t *target, ep Endpoint, client *http.Client) *loop {
	l := &loop{
		key: key, spec: spec, target: t, endpoint: ep, client: client, app: m.app,
		logger:       m.logger.With("job", spec.Job, "target", t.address, "endpoint", ep.Name),
		stats:        &m.stats,
		storeTimeout: m.opts.StoreTimeout,
		health:       HealthUnknown,
	}
	if spec.STC != "" {
		l.stc = []byte(spec.STC)
	}
	if m.manual {
		l.manual = make(chan struct{}, 1)
	}
	return l
}

func (m *Manager) startLoop(l *loop) {
	ctx, cancel := context.WithCancel(m.ctx)
	l.cancel = cancel
	l.done = make(chan struct{})
	go l.run(ctx)
}

// stopLoops cancels the loops and waits until each has returned.
func (m *Manager) stopLoops(ls []*loop) {
	for _, l := range ls {
		if l.cancel != nil {
			l.cancel()
		}
	}
	for _, l := range ls {
		if l.done != nil {
			<-l.done
		}
	}
}

// requestSync asks the sync goroutine to rebuild a job's targets. It never
// blocks, so discoverers can call it at any time.
func (m *Manager) requestSync(job string) {
	m.syncMu.Lock()
	m.dirty[job] = true
	m.syncMu.Unlock()
	select {
	case m.syncWake <- struct{}{}:
	default:
	}
}

func (m *Manager) syncLoop() {
	defer close(m.syncDone)
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-m.syncWake:
		}
		m.syncMu.Lock()
		jobs := m.dirty
		m.dirty = map[string]bool{}
		m.syncMu.Unlock()
		m.mu.Lock()
		for job := range jobs {
			if p := m.pools[job]; p != nil && !m.stopped {
				before := len(p.targets)
				m.syncPool(p)
				m.logger.Info("discovered targets changed", "job", job, "before", before, "targets", len(p.targets))
			}
		}
		m.mu.Unlock()
	}
}

// Run starts scraping and blocks until ctx ends or Stop is called; it
// then stops every loop, waiting for scrapes in flight, and returns nil.
func (m *Manager) Run(ctx context.Context) error {
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return ErrStopped
	}
	if m.started {
		m.mu.Unlock()
		return errors.New("scrape manager is already running")
	}
	m.started = true
	for _, p := range m.pools {
		for _, d := range p.files {
			d.start(m.ctx)
		}
		for _, l := range p.loops {
			m.startLoop(l)
		}
	}
	go m.syncLoop()
	m.mu.Unlock()
	select {
	case <-ctx.Done():
	case <-m.ctx.Done():
	}
	m.Stop()
	return nil
}

// Stop stops every loop and watcher and waits for them. Profiles already
// pulled are stored first. It may be called more than once.
func (m *Manager) Stop() {
	m.stopOnce.Do(func() {
		m.mu.Lock()
		m.stopped = true
		started := m.started
		m.mu.Unlock()
		m.cancel()
		if started {
			// The sync goroutine takes m.mu; wait for it before taking it.
			<-m.syncDone
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, p := range m.pools {
			m.stopLoops(slices.Collect(maps.Values(p.loops)))
			for _, d := range p.files {
				d.stop()
			}
			p.client.CloseIdleConnections()
		}
	})
}

// trigger makes every loop of a manual manager (see Manager.manual)
// scrape once now; it does not wait for the scrapes.
func (m *Manager) trigger() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range m.pools {
		for _, l := range p.loops {
			select {
			case l.manual <- struct{}{}:
			default:
			}
		}
	}
}

// Stats are a manager's running totals since it was made, for metrics.
type Stats struct {
	// Scrapes counts finished scrapes, failed ones included.
	Scrapes uint64
	// Failures counts scrapes that stored nothing: the target did not
	// answer in time or with a profile, or the profile was refused.
	Failures uint64
	// Bytes counts the response bytes of scrapes that were stored.
	Bytes uint64
	// Targets and Loops are the current number of targets and of
	// (target, endpoint) loops.
	Targets, Loops int
}

// Stats returns the running totals.
func (m *Manager) Stats() Stats {
	s := Stats{Scrapes: m.stats.scrapes.Load(), Failures: m.stats.failures.Load(), Bytes: m.stats.bytes.Load()}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range m.pools {
		s.Targets += len(p.targets)
		s.Loops += len(p.loops)
	}
	return s
}

package agent

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	gpprof "github.com/google/pprof/profile"
	"github.com/klauspost/compress/gzip"

	"github.com/hearth-profiler/hearth/internal/labels"
)

// Config is what the agent needs to run. Start from DefaultConfig.
type Config struct {
	// Server is the base URL of the Hearth server, http://host:4040.
	Server string
	// Interval is the span of one profile: every Interval, each process
	// sampled gets one profile.
	Interval time.Duration
	// DrainInterval is how often the sampler's kernel maps are emptied,
	// so that they stay small; at most Interval. It is the longest wait:
	// while drains lose more than LostShareTarget of their samples to a
	// full map, the agent drains more often, down to an eighth of it.
	DrainInterval time.Duration
	// LostShareTarget is the share of samples, 0 to 1, that a drain may
	// lose to full kernel maps before the agent drains more often.
	LostShareTarget float64
	// FrequencyHz is the sampler's frequency, per CPU; it sets the
	// profiles' period. The sampler is opened with it by the caller.
	FrequencyHz int
	// ServiceNameEnv are the environment variables that name a process's
	// service, first set first; without one, the executable's base name.
	ServiceNameEnv []string
	// Include and Exclude select the processes profiled (see Filter).
	// The agent's own process is always left out.
	Include, Exclude Selector
	// Labels are added to every series; the agent's own labels win over
	// them. Names must be valid and not start with "__".
	Labels labels.Labels
	// MaxBufferBytes bounds the profiles waiting to be pushed; beyond it
	// the oldest are dropped.
	MaxBufferBytes int64
	// Tenant is sent as X-Scope-OrgID; "" sends none.
	Tenant string
	// BearerToken is sent as "Authorization: Bearer ..."; "" sends none.
	BearerToken string
	// Token, when set, gives the token of each push instead of
	// BearerToken, so that a token that is replaced (a file rotated) is
	// picked up.
	Token func() string
	// MaxProcesses bounds the processes tracked at once; samples of more
	// are dropped and counted.
	MaxProcesses int
	// MaxStacks bounds the distinct stacks of one interval, over all
	// processes; samples of more are dropped and counted.
	MaxStacks int
	// PushTimeout bounds one push request.
	PushTimeout time.Duration
	// RetryMin and RetryMax bound the backoff between failed pushes.
	RetryMin, RetryMax time.Duration
	// ShutdownTimeout bounds the last push when Run's context ends.
	ShutdownTimeout time.Duration
	// StatsInterval is how often Stats are logged at info level; 0 never.
	StatsInterval time.Duration
	// Hostname is the host label; "" takes os.Hostname.
	Hostname string
	// ProcRoot is where /proc is mounted (the host's, when the agent
	// runs in a container: mount it and point here).
	ProcRoot string
	// SelfPID is the agent's own process ID, never profiled; 0 takes
	// os.Getpid.
	SelfPID int
	// HTTPClient sends the pushes; nil uses a client of its own.
	HTTPClient *http.Client
}

// DefaultConfig is the configuration of a plain `hearth agent`.
func DefaultConfig() Config {
	return Config{
		Server:        "http://localhost:4040",
		Interval:      10 * time.Second,
		DrainInterval: 2 * time.Second,
		// Half the 1% that the agent promises to stay under.
		LostShareTarget: 0.005,
		// 19 Hz, not a round number, so that sampling does not fall into
		// step with work that runs at 10, 20 or 100 Hz timers.
		FrequencyHz:     19,
		ServiceNameEnv:  slices.Clone(DefaultServiceNameEnv),
		MaxBufferBytes:  32 << 20,
		MaxProcesses:    4096,
		MaxStacks:       65536,
		PushTimeout:     30 * time.Second,
		RetryMin:        time.Second,
		RetryMax:        time.Minute,
		ShutdownTimeout: 5 * time.Second,
		StatsInterval:   time.Minute,
		ProcRoot:        "/proc",
	}
}

// Validate checks c and names the first field that is wrong.
func (c *Config) Validate() error {
	u, err := url.Parse(c.Server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("server %q: want a URL like http://localhost:4040", c.Server)
	}
	switch {
	case c.Interval < 100*time.Millisecond:
		return fmt.Errorf("interval %v: want at least 100ms", c.Interval)
	case c.DrainInterval <= 0 || c.DrainInterval > c.Interval:
		return fmt.Errorf("drain interval %v: want more than 0 and at most the interval (%v)", c.DrainInterval, c.Interval)
	case c.LostShareTarget <= 0 || c.LostShareTarget >= 1:
		return fmt.Errorf("lost share target %v: want more than 0 and less than 1", c.LostShareTarget)
	case c.FrequencyHz < 1 || c.FrequencyHz > 1000:
		return fmt.Errorf("frequency %d Hz: want 1 to 1000", c.FrequencyHz)
	case c.MaxBufferBytes < 1<<10:
		return fmt.Errorf("max buffer bytes %d: want at least 1024", c.MaxBufferBytes)
	case c.MaxProcesses < 1:
		return fmt.Errorf("max processes %d: want at least 1", c.MaxProcesses)
	case c.MaxStacks < 1:
		return fmt.Errorf("max stacks %d: want at least 1", c.MaxStacks)
	case c.PushTimeout <= 0:
		return fmt.Errorf("push timeout %v: want more than 0", c.PushTimeout)
	case c.RetryMin <= 0 || c.RetryMax < c.RetryMin:
		return fmt.Errorf("retry backoff %v to %v: want 0 < min <= max", c.RetryMin, c.RetryMax)
	case c.ShutdownTimeout < 0 || c.StatsInterval < 0:
		return errors.New("shutdown timeout and stats interval must not be negative")
	case strings.ContainsAny(c.Tenant, "/\\\x00") || len(c.Tenant) > 150:
		return fmt.Errorf("tenant %q: at most 150 characters, none of / \\ NUL", c.Tenant)
	case strings.ContainsAny(c.BearerToken, "\r\n"):
		return errors.New("bearer token holds a line break")
	}
	for _, n := range c.ServiceNameEnv {
		if n == "" || strings.ContainsAny(n, "=\x00") {
			return fmt.Errorf("service name variable %q: want a variable name", n)
		}
	}
	if err := c.Labels.Validate(); err != nil {
		return fmt.Errorf("labels: %w", err)
	}
	return nil
}

// Stats say what the agent did since it started.
type Stats struct {
	// Samples is the samples drained from the sampler.
	Samples uint64
	// Lost is the samples the sampler could not record, by reason.
	Lost map[string]uint64
	// DrainErrors is the drains that failed.
	DrainErrors uint64
	// Filtered is the samples of processes left out: by the filter, or
	// the agent's own.
	Filtered uint64
	// Dropped is the samples dropped by a cap, by cap: "processes",
	// "stacks".
	Dropped map[string]uint64
	// Frames is the frames of the profiles built, each weighted by its
	// stack's samples; Unnamed those of them without a function name,
	// by reason.
	Frames  uint64
	Unnamed map[string]uint64
	// Profiles is the profiles built.
	Profiles uint64
	// Pushed, Rejected and DroppedProfiles count profiles: stored by
	// the server, refused by it as bad input, and thrown away (buffer
	// full, or unsent at shutdown). PushFailures counts failed push
	// requests, each retried.
	Pushed, Rejected, DroppedProfiles, PushFailures uint64
	// Queued and QueuedBytes are the profiles waiting to be pushed.
	Queued      int
	QueuedBytes int64
	// Processes is the processes tracked now.
	Processes int
	// DrainInterval is the wait between drains now (see
	// Config.DrainInterval).
	DrainInterval time.Duration
}

// LostShare is the share of samples the sampler lost, 0 to 1.
func (s Stats) LostShare() float64 {
	var lost uint64
	for _, n := range s.Lost {
		lost += n
	}
	return share(lost, s.Samples+lost)
}

// UnnamedShare is the share of frames without a function name, 0 to 1.
func (s Stats) UnnamedShare() float64 {
	var n uint64
	for _, v := range s.Unnamed {
		n += v
	}
	return share(n, s.Frames)
}

func share(n, total uint64) float64 {
	if total == 0 {
		return 0
	}
	return float64(n) / float64(total)
}

// maxDrainFailures is how many drains in a row may fail before Run gives
// up: a sampler that keeps failing (its BPF program detached) would
// otherwise leave an agent that runs and profiles nothing.
const maxDrainFailures = 30

// Agent profiles the host. Make one with New; Stats may be called from
// any goroutine, Run from one.
type Agent struct {
	cfg     Config
	sampler Sampler
	sym     Symbolizer
	logger  *slog.Logger
	procs   procReader
	filter  Filter
	host    string
	self    uint32
	period  int64 // nanoseconds per sample
	pusher  *pusher

	// The state of the loop, touched only by Run's goroutine.
	tracked   map[uint32]*procState
	retired   []*procState         // processes whose PID was reused this interval
	kernel    map[frameKey][]Frame // kernel frames of this interval's stacks
	numStacks int
	interval  int // number of the current interval, from 1
	start     time.Time
	keyBuf    []byte
	userBuf   []uint64
	lastDrain SamplerStats // what the last drain read
	// Samples and losses of the drains since the drain interval was last
	// judged; see nextDrainInterval.
	judgeLost, judgeTotal uint64
	rawBuf                bytes.Buffer // a profile before compression
	gz                    *gzip.Writer

	mu    sync.Mutex
	stats Stats
}

// procState is one tracked process and its samples of the interval.
type procState struct {
	info     *Process
	keep     bool
	labels   labels.Labels
	lastSeen int // interval of its last sample
	stacks   map[string]*stack
	frames   map[frameKey][]Frame // user frames of this interval's stacks
}

// idleIntervals is how long a process that takes no CPU stays tracked:
// long enough that a process waking every few intervals keeps its
// metadata, short enough that the symbolizer can drop idle processes'
// symbols.
const idleIntervals = 6

// New checks cfg and returns an agent that reads from sampler and names
// frames with sym.
func New(cfg Config, sampler Sampler, sym Symbolizer, logger *slog.Logger) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	host := cfg.Hostname
	if host == "" {
		var err error
		if host, err = os.Hostname(); err != nil {
			return nil, fmt.Errorf("read hostname: %w", err)
		}
	}
	self := cfg.SelfPID
	if self == 0 {
		self = os.Getpid()
	}
	a := &Agent{
		cfg:     cfg,
		sampler: sampler,
		sym:     sym,
		logger:  logger,
		procs:   procReader{root: cfg.ProcRoot, env: cfg.ServiceNameEnv},
		filter:  Filter{Include: cfg.Include, Exclude: cfg.Exclude},
		host:    host,
		self:    uint32(self),
		period:  int64(time.Second) / int64(cfg.FrequencyHz),
		tracked: map[uint32]*procState{},
		kernel:  map[frameKey][]Frame{},
	}
	a.stats.DrainInterval = cfg.DrainInterval
	a.pusher = newPusher(pusherOptions{
		server:         strings.TrimRight(cfg.Server, "/"),
		tenant:         cfg.Tenant,
		bearerToken:    cfg.BearerToken,
		token:          cfg.Token,
		maxBufferBytes: cfg.MaxBufferBytes,
		timeout:        cfg.PushTimeout,
		retryMin:       cfg.RetryMin,
		retryMax:       cfg.RetryMax,
		httpClient:     cfg.HTTPClient,
	}, logger.With("component", "push"))
	return a, nil
}

// Run profiles the host until ctx ends; see Agent.Run.
func Run(ctx context.Context, cfg Config, sampler Sampler, sym Symbolizer, logger *slog.Logger) error {
	a, err := New(cfg, sampler, sym, logger)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

// Run drains the sampler every DrainInterval and, every Interval, builds
// one profile per process sampled and queues it for the server. When ctx
// ends, it builds the last (shorter) interval's profiles and pushes what
// is queued for up to ShutdownTimeout, then returns nil. It returns an
// error when the sampler fails maxDrainFailures times in a row.
func (a *Agent) Run(ctx context.Context) error {
	pushCtx, stopPush := context.WithCancel(context.Background())
	pushDone := make(chan struct{})
	go func() {
		defer close(pushDone)
		a.pusher.run(pushCtx)
	}()
	a.logger.Info("agent started", "server", a.cfg.Server, "interval", a.cfg.Interval, "frequency_hz", a.cfg.FrequencyHz, "host", a.host)

	err := a.loop(ctx)

	// Push what is left: the last interval and whatever waited for a
	// server that was away. The background pusher stops first, so that
	// the last interval's profiles are sent once, by flush, and not also
	// by a push that the stop would cut off after the server took it.
	stopPush()
	<-pushDone
	a.drain()
	a.endInterval(time.Now())
	flushCtx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	a.pusher.flush(flushCtx)
	st := a.Stats()
	a.logger.Info("agent stopped", "samples", st.Samples, "profiles", st.Profiles, "pushed", st.Pushed, "dropped_profiles", st.DroppedProfiles)
	return err
}

func (a *Agent) loop(ctx context.Context) error {
	drainEvery := a.cfg.DrainInterval
	drainT := time.NewTimer(drainEvery)
	defer drainT.Stop()
	intervalT := time.NewTicker(a.cfg.Interval)
	defer intervalT.Stop()
	var statsC <-chan time.Time
	if a.cfg.StatsInterval > 0 {
		statsT := time.NewTicker(a.cfg.StatsInterval)
		defer statsT.Stop()
		statsC = statsT.C
	}
	a.interval, a.start = 1, time.Now()
	failures := 0
	var lastLogged Stats
	for {
		var ok bool
		select {
		case <-ctx.Done():
			return nil
		case <-drainT.C:
			ok = a.drain()
			drainEvery = a.nextDrainInterval(drainEvery)
			drainT.Reset(drainEvery)
		case now := <-intervalT.C:
			// Drain first, so that the interval's profiles hold the
			// samples taken up to its end.
			ok = a.drain()
			a.endInterval(now)
		case <-statsC:
			lastLogged = a.logStats(lastLogged)
			continue
		}
		if ok {
			failures = 0
		} else if failures++; failures >= maxDrainFailures {
			return fmt.Errorf("the sampler failed %d drains in a row; giving up", failures)
		}
	}
}

// drain reads the sampler once and adds its samples to the interval. It
// says whether the drain worked.
func (a *Agent) drain() bool {
	samples, sst, err := a.sampler.Drain()
	if err != nil {
		a.mu.Lock()
		a.stats.DrainErrors++
		a.mu.Unlock()
		a.logger.Warn("drain the sampler", "err", err)
		return false
	}
	var received, filtered uint64
	var dropped map[string]uint64
	drop := func(why string, n uint64) {
		if dropped == nil {
			dropped = map[string]uint64{}
		}
		dropped[why] += n
	}
	checked := map[uint32]bool{} // processes whose start time this drain checked
	leafChecks := map[leafCheck]bool{}
	type userStack struct {
		ps *procState
		st *stack
	}
	var userPending []userStack
	var kernelPending []*stack
	for i := range samples {
		s := &samples[i]
		received += s.Count
		if s.TGID == a.self {
			filtered += s.Count
			continue
		}
		ps := a.process(s, checked)
		if ps == nil {
			drop("processes", s.Count)
			continue
		}
		ps.lastSeen = a.interval
		if !ps.keep {
			filtered += s.Count
			continue
		}
		user := a.userStack(s, leafChecks)
		key := a.stackKey(s.Kernel, user)
		if st := ps.stacks[key]; st != nil {
			st.count += s.Count
			continue
		}
		if a.numStacks >= a.cfg.MaxStacks {
			drop("stacks", s.Count)
			continue
		}
		// Copied: the sampler may share and reuse its slices.
		st := &stack{user: slices.Clone(user), kernel: slices.Clone(s.Kernel), count: s.Count}
		if ps.stacks == nil {
			ps.stacks = map[string]*stack{}
			ps.frames = map[frameKey][]Frame{}
		}
		ps.stacks[key] = st
		a.numStacks++
		if unknownFrames(ps.frames, st.user) {
			userPending = append(userPending, userStack{ps, st})
		}
		if unknownFrames(a.kernel, st.kernel) {
			kernelPending = append(kernelPending, st)
		}
	}
	// Symbolize now rather than at the end of the interval: a process
	// that exits takes its mappings with it. Only stacks with an address
	// not named yet are asked for; one asked earlier in this drain may
	// have named them all.
	for _, u := range userPending {
		if unknownFrames(u.ps.frames, u.st.user) {
			keepFrames(u.ps.frames, u.st.user, a.sym.User(u.ps.info.PID, u.st.user))
		}
	}
	for _, st := range kernelPending {
		if unknownFrames(a.kernel, st.kernel) {
			keepFrames(a.kernel, st.kernel, a.sym.Kernel(st.kernel))
		}
	}
	a.lastDrain = sst
	a.mu.Lock()
	a.stats.Samples += received
	a.stats.Filtered += filtered
	a.stats.Lost = addCounts(a.stats.Lost, sst.Lost)
	a.stats.Dropped = addCounts(a.stats.Dropped, dropped)
	a.stats.Processes = len(a.tracked)
	a.mu.Unlock()
	if len(dropped) > 0 {
		a.logger.Warn("samples dropped over a cap", "processes", dropped["processes"], "stacks", dropped["stacks"],
			"max_processes", a.cfg.MaxProcesses, "max_stacks", a.cfg.MaxStacks)
	}
	return true
}

// minDrainSamples is how many samples, over one or more drains, the lost
// share is judged on: over fewer, one collision would already be 0.5% or
// more, and the wait would swing with chance.
const minDrainSamples = 1000

// nextDrainInterval returns the wait before the next drain, after the
// last drain's losses. Stack-map collisions, nearly all the losses, grow
// with the distinct stacks a map holds, and so with the wait between
// drains: once drains since the last decision hold minDrainSamples, the
// wait is cut by the lost share's ratio to LostShareTarget (at least by
// half) if they lost more than the target, down to an eighth of
// DrainInterval, and grows back by a quarter if they lost under half the
// target, up to DrainInterval. Draining more often costs syscalls for the
// stacks read again; losing costs samples. (With growth only under a
// fifth of the target, chance losses over 1,000 samples ratcheted the wait
// down to 0.39 s on bench/agent at 99 Hz, and the agent's CPU up to 0.60%
// of a core, for 0.36% lost; with half: 0.5-2 s, 0.35-0.47%, 0.34-0.35%.)
func (a *Agent) nextDrainInterval(cur time.Duration) time.Duration {
	a.judgeLost += sumCounts(a.lastDrain.Lost)
	a.judgeTotal += a.lastDrain.Samples + sumCounts(a.lastDrain.Lost)
	if a.judgeTotal < minDrainSamples {
		return cur
	}
	lost, total := a.judgeLost, a.judgeTotal
	a.judgeLost, a.judgeTotal = 0, 0
	next := cur
	switch {
	case float64(lost) > a.cfg.LostShareTarget*float64(total):
		// Losses go with the wait, so scale it by target/share at once,
		// and by at least half: a load that loses four times the target
		// should not take three judgements to reach its interval.
		share := float64(lost) / float64(total)
		next = min(time.Duration(float64(cur)*a.cfg.LostShareTarget/share), cur/2)
	case float64(lost) < a.cfg.LostShareTarget/2*float64(total):
		next = cur + cur/4
	}
	next = min(max(next, a.cfg.DrainInterval/8), a.cfg.DrainInterval)
	if next != cur {
		a.logger.Debug("drain interval", "from", cur, "to", next, "samples", total-lost, "lost", lost)
		a.mu.Lock()
		a.stats.DrainInterval = next
		a.mu.Unlock()
	}
	return next
}

// process returns the tracked state of the sample's process, reading
// /proc for a process not seen before, or nil when MaxProcesses are
// tracked already. Once per drain per process it checks the start time,
// to notice a PID that now names another process.
func (a *Agent) process(s *Sample, checked map[uint32]bool) *procState {
	ps := a.tracked[s.TGID]
	if ps != nil && !checked[s.TGID] {
		checked[s.TGID] = true
		// A failed read says the process has exited; its samples, taken
		// before, are still its own.
		if st, err := a.procs.stat(s.TGID); err == nil && st.StartTime != ps.info.StartTime {
			a.logger.Debug("pid reused", "pid", s.TGID, "comm", st.Comm)
			a.retire(ps)
			ps = nil
		}
	}
	if ps != nil {
		return ps
	}
	if len(a.tracked) >= a.cfg.MaxProcesses {
		return nil
	}
	checked[s.TGID] = true
	info, err := a.procs.read(s.TGID)
	if err != nil {
		// Gone before it could be read: a short-lived process. Its
		// thread's name is all that is known of it.
		info = &Process{PID: s.TGID, Comm: s.Comm, Gone: true}
	}
	ps = &procState{info: info, keep: a.filter.Match(info)}
	if ps.keep {
		ps.labels = processLabels(info, a.host, a.cfg.ServiceNameEnv, a.cfg.Labels)
	}
	a.tracked[s.TGID] = ps
	return ps
}

// retire stops tracking ps, whose PID now names another process: its
// samples of this interval are still built into its own profile at the end
// of the interval, and the symbolizer drops its mappings now, before the
// new process's addresses reach it.
func (a *Agent) retire(ps *procState) {
	delete(a.tracked, ps.info.PID)
	if len(ps.stacks) > 0 {
		a.retired = append(a.retired, ps)
	}
	a.sym.Forget(ps.info.PID)
}

// leafCheck is one question to Symbolizer.LeafFrameless, whose answers a
// drain keeps: samples of many threads, or with other kernel stacks, share
// a leaf and its return address.
type leafCheck struct {
	pid     uint32
	pc, ret uint64
}

// userStack returns the sample's user stack with the caller that
// frame-pointer unwinding misses in a leaf without a frame put back: when
// the leaf has pushed nothing, LeafReturn is the return address into its
// caller, and the unwound stack goes from the leaf to the caller's caller
// (see Sample.LeafReturn). The result is s.User itself or a buffer reused
// between samples.
func (a *Agent) userStack(s *Sample, checks map[leafCheck]bool) []uint64 {
	if s.LeafReturn == 0 || len(s.User) == 0 || (len(s.User) > 1 && s.User[1] == s.LeafReturn) {
		return s.User
	}
	k := leafCheck{s.TGID, s.User[0], s.LeafReturn}
	frameless, ok := checks[k]
	if !ok {
		frameless = a.sym.LeafFrameless(s.TGID, s.User[0], s.LeafReturn)
		checks[k] = frameless
	}
	if !frameless {
		return s.User
	}
	a.userBuf = append(append(append(a.userBuf[:0], s.User[0]), s.LeafReturn), s.User[1:]...)
	return a.userBuf
}

// stackKey identifies a sample's stack within its process: its addresses,
// as bytes, in a buffer reused between samples (a map lookup with
// string(buf) does not allocate).
func (a *Agent) stackKey(kernel, user []uint64) string {
	b := binary.AppendUvarint(a.keyBuf[:0], uint64(len(kernel)))
	for _, x := range kernel {
		b = binary.LittleEndian.AppendUint64(b, x)
	}
	for _, x := range user {
		b = binary.LittleEndian.AppendUint64(b, x)
	}
	a.keyBuf = b
	return string(b)
}

// unknownFrames says whether an address of stack has no frames in m yet.
func unknownFrames(m map[frameKey][]Frame, stack []uint64) bool {
	for i, a := range stack {
		if _, ok := m[frameKey{a, i == 0}]; !ok {
			return true
		}
	}
	return false
}

// keepFrames stores the frames the symbolizer gave for stack. An address
// it gave none for is stored empty, so that it is not asked for again in
// this interval, and becomes a "not symbolized" frame.
func keepFrames(m map[frameKey][]Frame, stack []uint64, frames [][]Frame) {
	for i, a := range stack {
		k := frameKey{a, i == 0}
		if i < len(frames) {
			m[k] = frames[i]
		} else if _, ok := m[k]; !ok {
			m[k] = nil
		}
	}
}

// endInterval builds the profiles of the interval that ends at now,
// queues them, and forgets processes that exited or stayed idle.
func (a *Agent) endInterval(now time.Time) {
	dur := max(now.Sub(a.start), time.Millisecond)
	var items []*pushItem
	var fs frameStats
	build := func(ps *procState) {
		if len(ps.stacks) == 0 {
			return
		}
		stacks := slices.Collect(maps.Values(ps.stacks))
		// Sorted, so that the same samples give the same profile bytes.
		slices.SortFunc(stacks, compareStacks)
		p := buildProfile(profileInput{
			stacks: stacks, user: ps.frames, kernel: a.kernel,
			start: a.start, duration: dur, periodNanos: a.period,
		}, &fs)
		data, err := a.encode(p)
		if err != nil {
			// Writing to memory does not fail.
			a.logger.Error("encode profile", "pid", ps.info.PID, "err", err)
			return
		}
		items = append(items, newPushItem(ps.labels, data))
	}
	for _, ps := range a.retired {
		build(ps)
	}
	pids := slices.Sorted(maps.Keys(a.tracked))
	for _, pid := range pids {
		build(a.tracked[pid])
	}
	a.pusher.enqueue(items)

	// Forget processes that are gone (or whose PID now names another) and
	// those idle for idleIntervals.
	forgotten := 0
	for _, pid := range pids {
		ps := a.tracked[pid]
		ps.stacks, ps.frames = nil, nil
		st, err := a.procs.stat(pid)
		if err != nil || st.StartTime != ps.info.StartTime || a.interval-ps.lastSeen >= idleIntervals {
			delete(a.tracked, pid)
			a.sym.Forget(pid)
			forgotten++
		}
	}
	a.retired = nil
	clear(a.kernel)
	a.numStacks = 0
	a.interval++
	a.start = now

	a.mu.Lock()
	a.stats.Profiles += uint64(len(items))
	a.stats.Frames += fs.frames
	a.stats.Unnamed = addCounts(a.stats.Unnamed, fs.unnamed)
	a.stats.Processes = len(a.tracked)
	a.mu.Unlock()
	a.logger.Debug("interval done", "profiles", len(items), "forgotten", forgotten, "tracked", len(a.tracked), "dur", dur)
}

// gzipLevel is the compression of pushed profiles. klauspost/compress's
// level 3 against the standard library's default (6), both with the writer
// kept between profiles, on BenchmarkInterval: 99-110 ms against 174-192 ms
// per interval, for 25% more bytes (1.30 MB against 1.04 MB).
const gzipLevel = 3

// encode writes p as gzipped pprof. The gzip writer is kept between
// profiles: pprof's own Write makes a new one each time, which allocates
// some 800 KiB of tables, and that was most of what the agent allocated.
func (a *Agent) encode(p *gpprof.Profile) ([]byte, error) {
	a.rawBuf.Reset()
	if err := p.WriteUncompressed(&a.rawBuf); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.Grow(a.rawBuf.Len() / 3)
	if a.gz == nil {
		var err error
		if a.gz, err = gzip.NewWriterLevel(&out, gzipLevel); err != nil {
			return nil, err
		}
	} else {
		a.gz.Reset(&out)
	}
	if _, err := a.gz.Write(a.rawBuf.Bytes()); err != nil {
		return nil, err
	}
	if err := a.gz.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func compareStacks(x, y *stack) int {
	if c := slices.Compare(x.kernel, y.kernel); c != 0 {
		return c
	}
	return slices.Compare(x.user, y.user)
}

func addCounts(dst, src map[string]uint64) map[string]uint64 {
	for k, v := range src {
		if dst == nil {
			dst = map[string]uint64{}
		}
		dst[k] += v
	}
	return dst
}

// Stats returns what the agent did since it started.
func (a *Agent) Stats() Stats {
	ps, queued, queuedBytes := a.pusher.snapshot()
	a.mu.Lock()
	st := a.stats
	st.Lost, st.Dropped, st.Unnamed = maps.Clone(st.Lost), maps.Clone(st.Dropped), maps.Clone(st.Unnamed)
	a.mu.Unlock()
	st.Pushed, st.Rejected, st.DroppedProfiles, st.PushFailures = ps.pushed, ps.rejected, ps.dropped, ps.failed
	st.Queued, st.QueuedBytes = queued, queuedBytes
	return st
}

// logStats logs what happened since prev, the stats last logged, and
// returns the stats now.
func (a *Agent) logStats(prev Stats) Stats {
	st := a.Stats()
	d := Stats{
		Samples: st.Samples - prev.Samples,
		Lost:    subCounts(st.Lost, prev.Lost),
		Frames:  st.Frames - prev.Frames,
		Unnamed: subCounts(st.Unnamed, prev.Unnamed),
	}
	attrs := []any{
		"samples", d.Samples,
		"lost_share", fmt.Sprintf("%.2f%%", 100*d.LostShare()),
		"filtered", st.Filtered - prev.Filtered,
		"dropped_samples", sumCounts(st.Dropped) - sumCounts(prev.Dropped),
		"profiles", st.Profiles - prev.Profiles,
		"unnamed_share", fmt.Sprintf("%.2f%%", 100*d.UnnamedShare()),
		"pushed", st.Pushed - prev.Pushed,
		"push_failures", st.PushFailures - prev.PushFailures,
		"rejected", st.Rejected - prev.Rejected,
		"dropped_profiles", st.DroppedProfiles - prev.DroppedProfiles,
		"queued_bytes", st.QueuedBytes,
		"processes", st.Processes,
	}
	if len(d.Lost) > 0 {
		attrs = append(attrs, "lost", countsAttr(d.Lost))
	}
	if len(d.Unnamed) > 0 {
		attrs = append(attrs, "unnamed", countsAttr(d.Unnamed))
	}
	a.logger.Info("agent stats", attrs...)
	return st
}

func subCounts(a, b map[string]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for k, v := range a {
		if n := v - b[k]; n > 0 {
			out[k] = n
		}
	}
	return out
}

func sumCounts(m map[string]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}

// countsAttr logs counts by reason as a group, in a stable order.
func countsAttr(m map[string]uint64) slog.Value {
	attrs := make([]slog.Attr, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		attrs = append(attrs, slog.Uint64(k, m[k]))
	}
	return slog.GroupValue(attrs...)
}

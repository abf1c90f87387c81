package scrape

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hearth-profiler/hearth/internal/ingest"
)

// Health of a target or endpoint.
const (
	HealthUnknown = "unknown" // not scraped yet
	HealthUp      = "up"      // the last scrape was stored
	HealthDown    = "down"    // the last scrape failed
)

// loopSpec is everything that decides how a loop scrapes. Two loops with
// equal specs scrape alike, so a reload keeps a running loop whose spec
// did not change.
type loopSpec struct {
	Job         string
	Target      string // target key
	Endpoint    string
	URL         string
	Interval    time.Duration
	Timeout     time.Duration // the whole request: seconds + scrape_timeout
	Tenant      string
	BodyLimit   int64
	Labels      string
	Contention  ingest.Contention
	SampleTypes []string
	Delta       bool
	STC         string
	Client      string // HTTP client configuration fingerprint
}

func (s *loopSpec) key() string {
	b, err := json.Marshal(s)
	if err != nil {
		panic("BUG: marshal loop spec: " + err.Error())
	}
	return string(b)
}

// loop scrapes one endpoint of one target every interval, one scrape at a
// time.
type loop struct {
	key      string
	spec     loopSpec
	target   *target
	endpoint Endpoint
	client   *http.Client
	app      Appender
	logger   *slog.Logger
	stats    *counters
	// storeTimeout bounds storing one profile, which goes on after the
	// loop is stopped so that a profile that was pulled is not lost.
	storeTimeout time.Duration
	stc          []byte
	// manual, when not nil, replaces the interval ticker (benchmarks).
	manual chan struct{}

	cancel context.CancelFunc
	done   chan struct{}

	mu         sync.Mutex
	health     string
	lastErr    string
	lastScrape time.Time
	lastDur    time.Duration
	lastBytes  int64
	scrapes    uint64
	failures   uint64
	sizeHint   int
}

// newLoopSpec describes the loop of endpoint ep of target t in job sc.
func newLoopSpec(sc *ScrapeConfig, t *target, ep Endpoint, clientFP string) loopSpec {
	u := url.URL{Scheme: sc.Scheme, Host: t.address, Path: ep.Path}
	q := url.Values{}
	for k, vs := range sc.Params {
		q[k] = slices.Clone(vs)
	}
	if i := strings.IndexByte(ep.Path, '?'); i >= 0 {
		u.Path = ep.Path[:i]
		pq, _ := url.ParseQuery(ep.Path[i+1:]) // checked by validate
		for k, vs := range pq {
			q[k] = vs
		}
	}
	timeout := time.Duration(sc.ScrapeTimeout)
	if ep.Seconds > 0 {
		q.Set("seconds", strconv.Itoa(ep.Seconds))
		timeout += time.Duration(ep.Seconds) * time.Second
	}
	u.RawQuery = q.Encode()
	return loopSpec{
		Job: sc.JobName, Target: t.key, Endpoint: ep.Name, URL: u.String(),
		Interval: time.Duration(sc.ScrapeInterval), Timeout: timeout,
		Tenant: sc.Tenant, BodyLimit: int64(sc.BodySizeLimit),
		Labels: t.series.String(), Contention: ep.Contention, SampleTypes: ep.SampleTypes,
		Delta: ep.Delta, STC: string(sampleTypeConfig(sc, ep)), Client: clientFP,
	}
}

// cumulativeByDefault are the sample types storage turns into deltas when
// a request says nothing about them.
var cumulativeByDefault = []string{"alloc_objects", "alloc_space", "contentions", "delay"}

// sampleTypeConfig says which sample types are cumulative when the
// defaults of storage would be wrong: a delta endpoint whose kept sample
// types are not the usual cumulative ones, or an endpoint that serves
// alloc_* or contentions as deltas already (as godeltaprof's endpoints
// do). A built-in endpoint as it comes needs none.
func sampleTypeConfig(sc *ScrapeConfig, ep Endpoint) []byte {
	if b := builtin(ep.Name); b != nil && ep.Path == sc.ProfilingConfig.PathPrefix+b.cfg.Path &&
		ep.Delta == (b.cfg.Delta != nil && *b.cfg.Delta) && slices.Equal(ep.SampleTypes, keptTypes(b.cfg.KeepSampleType)) {
		return nil
	}
	cfg := map[string]ingest.SampleTypeConfigEntry{}
	if ep.Delta {
		for _, st := range ep.SampleTypes {
			cfg[st] = ingest.SampleTypeConfigEntry{Cumulative: true}
		}
	} else {
		for _, st := range cumulativeByDefault {
			if len(ep.SampleTypes) == 0 || slices.Contains(ep.SampleTypes, st) {
				cfg[st] = ingest.SampleTypeConfigEntry{}
			}
		}
	}
	if len(cfg) == 0 {
		return nil
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		panic("BUG: marshal sample type config: " + err.Error())
	}
	return b
}

// offset is where in each interval the loop scrapes, from a hash of the
// target and endpoint: stable across restarts and reloads, and spread so
// that many targets do not fire at once.
func (l *loop) offset() time.Duration {
	h := fnv.New64a()
	h.Write([]byte(l.spec.Target))
	h.Write([]byte{0})
	h.Write([]byte(l.spec.Endpoint))
	return time.Duration(h.Sum64() % uint64(l.spec.Interval))
}

// firstDelay is the wait from now until the loop's next slot.
func (l *loop) firstDelay(now time.Time) time.Duration {
	iv := int64(l.spec.Interval)
	return time.Duration((int64(l.offset()) - now.UnixNano()%iv + iv) % iv)
}

func (l *loop) run(ctx context.Context) {
	defer close(l.done)
	var tick <-chan time.Time
	if l.manual == nil {
		t := time.NewTimer(l.firstDelay(time.Now()))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		// A ticker drops ticks while a scrape runs long (a CPU profile of
		// a whole interval), so a slow scrape is followed by at most one
		// immediate one, never by a burst.
		ticker := time.NewTicker(l.spec.Interval)
		defer ticker.Stop()
		tick = ticker.C
		l.scrape(ctx)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
		case <-l.manual:
		}
		l.scrape(ctx)
	}
}

// scrape pulls the endpoint once and stores the profile. A scrape cut
// short because the loop stopped is not reported: the target did nothing
// wrong.
func (l *loop) scrape(ctx context.Context) {
	start := time.Now()
	body, err := l.fetch(ctx)
	if err != nil && ctx.Err() != nil {
		return
	}
	if err == nil {
		err = l.store(ctx, start, time.Now(), body)
	}
	l.report(start, time.Since(start), len(body), err)
}

// fetch GETs the endpoint and returns the body, bounded by the body size
// limit.
func (l *loop) fetch(ctx context.Context) ([]byte, error) {
	rctx, cancel := context.WithTimeout(ctx, l.spec.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, l.spec.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	timedOut := func(err error) error {
		if errors.Is(rctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			return fmt.Errorf("GET %s: timed out after %s", l.spec.URL, l.spec.Timeout)
		}
		return err
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return nil, timedOut(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		msg := strings.TrimSpace(strings.ToValidUTF8(string(snippet), "?"))
		if msg != "" {
			msg = ": " + msg
		}
		return nil, fmt.Errorf("GET %s: HTTP status %s%s", l.spec.URL, resp.Status, msg)
	}
	// One byte over the limit is read to tell a body at the limit from a
	// longer one, so the limit must leave room for it.
	limit := min(l.spec.BodyLimit, math.MaxInt64-1)
	if resp.ContentLength > limit {
		return nil, fmt.Errorf("GET %s: response of %d bytes is over body_size_limit %s", l.spec.URL, resp.ContentLength, ByteSize(limit))
	}
	l.mu.Lock()
	hint := l.sizeHint
	l.mu.Unlock()
	if resp.ContentLength > 0 {
		hint = int(resp.ContentLength)
	}
	// The buffer is the request's profile: the appender may keep it, so
	// it is not reused.
	buf := bytes.NewBuffer(make([]byte, 0, min(int64(hint)+512, limit+1)))
	n, err := buf.ReadFrom(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, timedOut(fmt.Errorf("GET %s: read body: %w", l.spec.URL, err))
	}
	if n > limit {
		return nil, fmt.Errorf("GET %s: response is larger than body_size_limit %s", l.spec.URL, ByteSize(limit))
	}
	if n == 0 {
		return nil, fmt.Errorf("GET %s: empty response", l.spec.URL)
	}
	l.mu.Lock()
	l.sizeHint = int(n)
	l.mu.Unlock()
	return buf.Bytes(), nil
}

// store hands the profile to the appender. It is not cancelled with the
// loop: the profile was pulled and would otherwise be lost.
func (l *loop) store(ctx context.Context, start, end time.Time, body []byte) error {
	r := &ingest.Request{
		Format:           "pprof",
		From:             start.UnixNano(),
		Until:            end.UnixNano(),
		Profile:          body,
		Labels:           l.target.series,
		Contention:       l.spec.Contention,
		SampleTypes:      l.spec.SampleTypes,
		DropFirst:        l.spec.Delta,
		SampleTypeConfig: l.stc,
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.storeTimeout)
	defer cancel()
	err := l.app.Ingest(sctx, l.spec.Tenant, r)
	var ie *ingest.InputError
	switch {
	case errors.As(err, &ie):
		return fmt.Errorf("profile from %s refused: %s", l.spec.URL, ie.Msg)
	case err != nil:
		return fmt.Errorf("store profile from %s: %w", l.spec.URL, err)
	}
	return nil
}

// report records the outcome of one scrape and logs changes of health:
// a target that stays down is logged once, not every interval.
func (l *loop) report(start time.Time, dur time.Duration, n int, err error) {
	l.stats.scrapes.Add(1)
	l.mu.Lock()
	prev := l.health
	l.lastScrape, l.lastDur, l.lastBytes = start, dur, int64(n)
	l.scrapes++
	if err != nil {
		l.health, l.lastErr = HealthDown, err.Error()
		l.failures++
	} else {
		l.health, l.lastErr = HealthUp, ""
	}
	l.mu.Unlock()
	if err != nil {
		l.stats.failures.Add(1)
		if prev != HealthDown {
			l.logger.Warn("scrape failed", "err", err)
		} else {
			l.logger.Debug("scrape failed", "err", err)
		}
		return
	}
	l.stats.bytes.Add(uint64(n))
	if prev == HealthDown {
		l.logger.Info("scrape recovered", "dur", dur)
	}
	l.logger.Debug("scraped", "bytes", n, "dur", dur)
}

// status returns the loop's endpoint status.
func (l *loop) status() EndpointStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	return EndpointStatus{
		Name:               l.endpoint.Name,
		ScrapeURL:          l.spec.URL,
		Health:             l.health,
		LastError:          l.lastErr,
		LastScrape:         l.lastScrape,
		LastScrapeDuration: l.lastDur.Seconds(),
		LastScrapeBytes:    l.lastBytes,
		Scrapes:            l.scrapes,
		Failures:           l.failures,
	}
}

func keptTypes(fs []SampleTypeFilter) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Type)
	}
	return out
}

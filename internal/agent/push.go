package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"connectrpc.com/connect"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"

	"github.com/hearth-profiler/hearth/internal/labels"
)

// The agent pushes over push.v1.PusherService/Push (Connect, protobuf)
// rather than the Pyroscope /ingest API: /ingest carries labels inside the
// name parameter, app{k=v,...}, whose syntax has no escaping, and the
// agent's values (executable paths, cgroup paths such as
// /kubepods.slice/...:cri-containerd:..., comms) may hold any of "{},=".
// Push takes labels as name/value pairs, so any value arrives as it was;
// it carries many series per request, so one request sends a whole
// interval of a busy host; and its errors have codes that tell input the
// server refuses (never worth retrying) from a server that is away.

// profileName is the __name__ label of the agent's series, the profile
// type name the server files CPU profiles under.
const profileName = "process_cpu"

// maxBatchBytes bounds the profiles of one request, well under the
// server's default message limit (16 MiB); a server configured lower
// answers ResourceExhausted, and the pusher then halves its batches.
const maxBatchBytes = 4 << 20

// pushItem is one profile waiting to be pushed.
type pushItem struct {
	seq    uint64 // order of enqueueing, from 1
	labels []*typesv1.LabelPair
	data   []byte // gzipped pprof
	bytes  int64  // what the item counts against the buffer
}

func newPushItem(ls labels.Labels, data []byte) *pushItem {
	it := &pushItem{data: data, bytes: int64(len(data))}
	it.labels = append(it.labels, &typesv1.LabelPair{Name: "__name__", Value: profileName})
	ls.Range(func(l labels.Label) {
		it.labels = append(it.labels, &typesv1.LabelPair{Name: l.Name, Value: l.Value})
		it.bytes += int64(len(l.Name) + len(l.Value))
	})
	return it
}

// pushStats counts profiles by what became of them.
type pushStats struct {
	pushed   uint64 // stored by the server
	failed   uint64 // push attempts that failed and were retried
	rejected uint64 // refused by the server as bad input; not retried
	dropped  uint64 // thrown away: buffer full, or still unsent at shutdown
}

type pusherOptions struct {
	server         string
	tenant         string
	bearerToken    string
	token          func() string // when set, wins over bearerToken
	maxBufferBytes int64
	timeout        time.Duration // per request
	retryMin       time.Duration
	retryMax       time.Duration
	httpClient     *http.Client
}

// pusher sends profiles from a bounded in-memory queue, in the order they
// were made, retrying with exponential backoff while the server is away.
// Enqueueing never blocks: when the queue is full, the oldest profiles go.
//
// A batch being sent stays in the queue until the server answers, so that
// its bytes count against the bound; if the queue overflows meanwhile, the
// batch's items may be dropped from the queue while the request still
// holds them, so memory is bounded by maxBufferBytes plus one batch.
type pusher struct {
	opts   pusherOptions
	client pushv1connect.PusherServiceClient
	logger *slog.Logger
	wake   chan struct{}

	mu          sync.Mutex
	queue       []*pushItem // oldest first
	queuedBytes int64
	seq         uint64
	batchBytes  int64
	stats       pushStats
}

func newPusher(opts pusherOptions, logger *slog.Logger) *pusher {
	hc := opts.httpClient
	if hc == nil {
		hc = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	return &pusher{
		opts:       opts,
		client:     pushv1connect.NewPusherServiceClient(hc, opts.server),
		logger:     logger,
		wake:       make(chan struct{}, 1),
		batchBytes: maxBatchBytes,
	}
}

// enqueue adds items to the queue, dropping the oldest queued profiles
// while the queue holds more than maxBufferBytes. It never blocks.
func (p *pusher) enqueue(items []*pushItem) {
	if len(items) == 0 {
		return
	}
	p.mu.Lock()
	dropped := 0
	for _, it := range items {
		p.seq++
		it.seq = p.seq
		if it.bytes > p.opts.maxBufferBytes {
			dropped++ // could never fit; keeping it would empty the queue
			continue
		}
		p.queue = append(p.queue, it)
		p.queuedBytes += it.bytes
	}
	for p.queuedBytes > p.opts.maxBufferBytes && len(p.queue) > 0 {
		p.popFront()
		dropped++
	}
	p.stats.dropped += uint64(dropped)
	total, queued, queuedBytes := p.stats.dropped, len(p.queue), p.queuedBytes
	p.mu.Unlock()
	if dropped > 0 {
		p.logger.Warn("push buffer full: dropped the oldest profiles",
			"dropped", dropped, "dropped_total", total, "queued", queued, "bytes", queuedBytes, "max_bytes", p.opts.maxBufferBytes)
	}
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// popFront removes the oldest queued item; p.mu is held.
func (p *pusher) popFront() {
	p.queuedBytes -= p.queue[0].bytes
	p.queue[0] = nil
	p.queue = p.queue[1:]
}

// nextBatch returns the oldest queued items, up to batchBytes (at least
// one item), or nil when the queue is empty.
func (p *pusher) nextBatch() []*pushItem {
	p.mu.Lock()
	defer p.mu.Unlock()
	var n int
	var size int64
	for n < len(p.queue) && (n == 0 || size+p.queue[n].bytes <= p.batchBytes) {
		size += p.queue[n].bytes
		n++
	}
	if n == 0 {
		return nil
	}
	return append([]*pushItem(nil), p.queue[:n]...)
}

// done removes what is left of batch from the queue: the items the
// overflow did not drop meanwhile are still its oldest.
func (p *pusher) done(batch []*pushItem, count func(*pushStats, uint64)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	last := batch[len(batch)-1].seq
	n := uint64(0)
	for len(p.queue) > 0 && p.queue[0].seq <= last {
		p.popFront()
		n++
	}
	count(&p.stats, n)
}

func (p *pusher) snapshot() (st pushStats, queued int, queuedBytes int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats, len(p.queue), p.queuedBytes
}

// run pushes queued profiles until ctx ends, waiting for new ones when
// the queue is empty. What is queued when ctx ends stays queued.
func (p *pusher) run(ctx context.Context) {
	p.loop(ctx, false)
}

// flush pushes everything queued, with retries, until the queue is empty
// or ctx ends; what is then left is dropped and counted. It is the last
// call of a pusher.
func (p *pusher) flush(ctx context.Context) {
	p.loop(ctx, true)
	p.mu.Lock()
	left := len(p.queue)
	for len(p.queue) > 0 {
		p.popFront()
	}
	p.stats.dropped += uint64(left)
	p.mu.Unlock()
	if left > 0 {
		p.logger.Error("profiles left unsent at shutdown", "dropped", left)
	}
}

func (p *pusher) loop(ctx context.Context, untilEmpty bool) {
	attempt := 0
	for ctx.Err() == nil {
		batch := p.nextBatch()
		if batch == nil {
			if untilEmpty {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-p.wake:
			}
			continue
		}
		tok := p.token() // the token this push sends: it may change meanwhile
		err := p.send(ctx, batch, tok)
		if err != nil && ctx.Err() != nil {
			return // stopping, not a failure of the server: keep the batch
		}
		switch code := connect.CodeOf(err); {
		case err == nil:
			attempt = 0
			p.done(batch, func(s *pushStats, n uint64) { s.pushed += n })
			p.logger.Debug("pushed profiles", "profiles", len(batch))
		case code == connect.CodeResourceExhausted && len(batch) > 1:
			// The server takes smaller messages than this batch: send
			// half as much at a time from now on.
			var size int64
			for _, it := range batch {
				size += it.bytes
			}
			p.mu.Lock()
			p.batchBytes = max(min(p.batchBytes, size)/2, 1)
			p.mu.Unlock()
			p.logger.Warn("push too large for the server: halving batches", "profiles", len(batch), "err", err)
		case code == connect.CodeInvalidArgument || code == connect.CodeResourceExhausted:
			// The server refused the input itself: sending it again
			// would be refused again. Hearth's server stores the other
			// profiles of the batch and says how many it refused.
			attempt = 0
			refused := refusedCount(err, len(batch))
			p.done(batch, func(s *pushStats, n uint64) {
				r := min(uint64(refused), n)
				s.rejected += r
				s.pushed += n - r
			})
			p.logger.Error("server refused profiles", "profiles", len(batch), "refused", refused, "err", err)
		default:
			attempt++
			p.mu.Lock()
			p.stats.failed++
			queuedBytes := p.queuedBytes
			p.mu.Unlock()
			wait := backoff(attempt, p.opts.retryMin, p.opts.retryMax)
			// A token refused is retried too: the token file may be
			// replaced meanwhile, and the profiles wait in the buffer.
			switch code {
			case connect.CodeUnauthenticated:
				why := "the server did not accept the token: it is unknown, expired or mistyped"
				if tok == "" {
					why = "the server needs a token and none was sent: give it with --token-file FILE or the HEARTH_TOKEN environment variable"
				}
				p.logger.Error("push refused; retrying", "why", why, "err", err, "attempt", attempt, "retry_in", wait, "bytes", queuedBytes)
			case connect.CodePermissionDenied:
				p.logger.Error("push refused; retrying", "why", "the token is not allowed to push to "+tenantName(p.opts.tenant), "err", err, "attempt", attempt, "retry_in", wait, "bytes", queuedBytes)
			default:
				p.logger.Warn("push failed; retrying", "err", err, "attempt", attempt, "retry_in", wait, "bytes", queuedBytes)
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}
}

// send pushes one batch in one request, with the token tok ("" sends
// none).
func (p *pusher) send(ctx context.Context, batch []*pushItem, tok string) error {
	msg := &pushv1.PushRequest{Series: make([]*pushv1.RawProfileSeries, 0, len(batch))}
	for _, it := range batch {
		msg.Series = append(msg.Series, &pushv1.RawProfileSeries{
			Labels:  it.labels,
			Samples: []*pushv1.RawSample{{RawProfile: it.data}},
		})
	}
	req := connect.NewRequest(msg)
	if tok != "" {
		req.Header().Set("Authorization", "Bearer "+tok)
	}
	if p.opts.tenant != "" {
		req.Header().Set("X-Scope-OrgID", p.opts.tenant)
	}
	ctx, cancel := context.WithTimeout(ctx, p.opts.timeout)
	defer cancel()
	_, err := p.client.Push(ctx, req)
	return err
}

// token is the token of the next push; "" sends none.
func (p *pusher) token() string {
	if p.opts.token != nil {
		return p.opts.token()
	}
	return p.opts.bearerToken
}

// refusedCount reads how many profiles of a batch the server refused from
// its answer: Hearth says so in the Hearth-Refused-Profiles metadata (and,
// before that existed, in its message, "N of M profiles refused ...");
// any other answer counts the whole batch.
func refusedCount(err error, batch int) int {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return batch
	}
	if v := ce.Meta().Get(refusedHeader); v != "" {
		if n, perr := strconv.Atoi(v); perr == nil && n >= 0 && n <= batch {
			return n
		}
		return batch
	}
	var n, total int
	if _, serr := fmt.Sscanf(ce.Message(), "%d of %d profiles refused", &n, &total); serr == nil && total == batch && n >= 0 && n <= batch {
		return n
	}
	return batch
}

// refusedHeader is push.RefusedHeader; the agent does not import the
// server's packages.
const refusedHeader = "Hearth-Refused-Profiles"

func tenantName(t string) string {
	if t == "" {
		return "the default tenant"
	}
	return "tenant " + strconv.Quote(t)
}

// backoff is the wait before retry attempt (1, 2, ...): exponential from
// lo up to hi, with the upper half jittered so that the agents of many
// hosts that lost the server together do not come back in step.
func backoff(attempt int, lo, hi time.Duration) time.Duration {
	d := hi
	if attempt < 31 {
		if e := lo << (attempt - 1); e > 0 && e < hi {
			d = e
		}
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

package ingesters

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hearth-profiler/hearth/internal/storage"
	"github.com/hearth-profiler/hearth/internal/tenant"
)

// Path is the ingesters' route that answers a storage.HeadSnapshot of the
// tenant of X-Scope-OrgID, as a tar stream, over ?start=&end= (unix
// nanoseconds).
const Path = "/internal/v1/head"

// Options configure a Client.
type Options struct {
	// Timeout bounds one ingester's answer; past it the query fails,
	// naming the ingester.
	Timeout time.Duration
	// MaxBytes bounds one ingester's answer, read into memory; 0 bounds
	// nothing.
	MaxBytes int64
	// HTTP is the client of the requests; nil is a plain one. Ingesters
	// are asked over http://.
	HTTP *http.Client
	// Registerer takes the client's metrics; nil registers none.
	Registerer prometheus.Registerer
}

// Client asks the ingesters of a Discovery for their heads.
type Client struct {
	d    *Discovery
	opts Options

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	bytes    *prometheus.CounterVec
}

// NewClient returns a client of the ingesters d finds.
func NewClient(d *Discovery, opts Options) *Client {
	if opts.HTTP == nil {
		opts.HTTP = &http.Client{}
	}
	c := &Client{
		d: d, opts: opts,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hearth_querier_ingester_requests_total",
			Help: "Requests of a querier to an ingester for what it holds that is not in the bucket yet, by ingester address and result (success, failure).",
		}, []string{"ingester", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hearth_querier_ingester_request_duration_seconds",
			Help:    "Time an ingester took to answer a querier's request for its heads, body read, by ingester address.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"ingester"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hearth_querier_ingester_received_bytes_total",
			Help: "Bytes of the heads' blocks that ingesters sent to a querier, by ingester address.",
		}, []string{"ingester"}),
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(c.requests, c.duration, c.bytes)
	}
	return c
}

// Fetch asks every ingester, at once, for its snapshot of tenantID over
// [start, end), with the caller's Authorization header (the ingester
// checks it as it would the querier's request). Any ingester that does
// not answer in time, or answers with an error, fails it with a
// *storage.IngesterError naming the ingester.
func (c *Client) Fetch(ctx context.Context, authorization []string, tenantID string, start, end int64) ([]*storage.HeadSnapshot, error) {
	addrs, err := c.d.Addrs()
	if err != nil {
		return nil, &storage.IngesterError{Addr: "(unresolved)", Err: err}
	}
	out := make([]*storage.HeadSnapshot, len(addrs))
	errs := make([]error, len(addrs))
	var wg sync.WaitGroup
	for i, addr := range addrs {
		wg.Go(func() {
			began := time.Now()
			s, err := c.fetchOne(ctx, addr, authorization, tenantID, start, end)
			c.duration.WithLabelValues(addr).Observe(time.Since(began).Seconds())
			if err != nil {
				c.requests.WithLabelValues(addr, "failure").Inc()
				errs[i] = &storage.IngesterError{Addr: addr, Err: err}
				return
			}
			c.requests.WithLabelValues(addr, "success").Inc()
			c.bytes.WithLabelValues(addr).Add(float64(s.Size()))
			out[i] = s
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

func (c *Client) fetchOne(ctx context.Context, addr string, authorization []string, tenantID string, start, end int64) (*storage.HeadSnapshot, error) {
	if c.opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.Timeout)
		defer cancel()
	}
	q := url.Values{"start": {strconv.FormatInt(start, 10)}, "end": {strconv.FormatInt(end, 10)}}
	u := "http://" + addr + Path + "?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	for _, a := range authorization {
		req.Header.Add("Authorization", a)
	}
	req.Header.Set(tenant.Header, tenantID)
	resp, err := c.opts.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(msg)))
	}
	return storage.ReadHeadSnapshot(resp.Body, c.opts.MaxBytes)
}

// TenantsPath is the ingesters' route that lists the tenants they hold
// data of, as a JSON array, for a caller whose token may read every
// tenant (or when tokens are off).
const TenantsPath = "/internal/v1/tenants"

// Tenants returns the tenants the ingesters hold data of, sorted, asked
// with the caller's Authorization header. Unlike Fetch, it is for
// listings (the UI's choice of tenant): the caller may go on without it.
func (c *Client) Tenants(ctx context.Context, authorization []string) ([]string, error) {
	addrs, err := c.d.Addrs()
	if err != nil {
		return nil, &storage.IngesterError{Addr: "(unresolved)", Err: err}
	}
	lists := make([][]string, len(addrs))
	errs := make([]error, len(addrs))
	var wg sync.WaitGroup
	for i, addr := range addrs {
		wg.Go(func() {
			if c.opts.Timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, c.opts.Timeout)
				defer cancel()
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+TenantsPath, nil)
			if err != nil {
				errs[i] = err
				return
			}
			for _, a := range authorization {
				req.Header.Add("Authorization", a)
			}
			resp, err := c.opts.HTTP.Do(req)
			if err != nil {
				errs[i] = &storage.IngesterError{Addr: addr, Err: err}
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
				errs[i] = &storage.IngesterError{Addr: addr, Err: fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(msg)))}
				return
			}
			if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&lists[i]); err != nil {
				errs[i] = &storage.IngesterError{Addr: addr, Err: fmt.Errorf("tenants: %w", err)}
			}
		})
	}
	wg.Wait()
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	slices.Sort(out)
	return slices.Compact(out), errors.Join(errs...)
}

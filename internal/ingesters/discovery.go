// Package ingesters is a querier's side of the ingesters (issue 14):
// where they are (a static list of host:port, or dns+NAME:PORT resolved
// on an interval into every A and AAAA record, the Kubernetes
// headless-service convention), and a client that asks each of them for
// what of a tenant it holds that queriers may not see in the bucket yet
// (storage.HeadSnapshot).
package ingesters

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"
)

// dnsPrefix marks a name to resolve on an interval.
const dnsPrefix = "dns+"

// LookupIP returns the addresses of host: net.Resolver's LookupIP with
// network "ip" (A and AAAA records), or a fake in tests.
type LookupIP func(ctx context.Context, host string) ([]net.IP, error)

// DefaultLookupIP resolves with Go's resolver.
func DefaultLookupIP(ctx context.Context, host string) ([]net.IP, error) {
	return net.DefaultResolver.LookupIP(ctx, "ip", host)
}

// target is one entry of --ingesters.
type target struct {
	spec string // as given
	// addr is a host:port to use as it is; host and port, for a dns+
	// entry, the name to resolve and the port of every address.
	addr       string
	host, port string
}

// Discovery keeps the addresses of the ingesters of a --ingesters
// value. It is safe for concurrent use.
type Discovery struct {
	targets []target
	lookup  LookupIP
	logger  *slog.Logger

	mu sync.Mutex
	// resolved are each dns+ entry's addresses at the last resolution
	// that succeeded; an entry never resolved has none.
	resolved map[string][]string
	// failed are the dns+ entries whose last resolution failed, with the
	// error.
	failed map[string]error
}

// Parse reads a --ingesters value: comma-separated host:port or
// dns+NAME:PORT entries. An empty value has no ingesters.
func Parse(spec string, lookup LookupIP, logger *slog.Logger) (*Discovery, error) {
	if lookup == nil {
		lookup = DefaultLookupIP
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	d := &Discovery{lookup: lookup, logger: logger, resolved: map[string][]string{}, failed: map[string]error{}}
	for e := range strings.SplitSeq(spec, ",") {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		name, isDNS := strings.CutPrefix(e, dnsPrefix)
		host, port, err := net.SplitHostPort(name)
		if err != nil || host == "" || port == "" {
			return nil, fmt.Errorf("--ingesters: %q: want host:port or dns+NAME:PORT", e)
		}
		t := target{spec: e}
		if isDNS {
			t.host, t.port = host, port
		} else {
			t.addr = name
		}
		d.targets = append(d.targets, t)
	}
	return d, nil
}

// Empty says whether the value named no ingester.
func (d *Discovery) Empty() bool { return len(d.targets) == 0 }

// Refresh resolves the dns+ entries. An entry that fails keeps the
// addresses of its last resolution that succeeded: a blip of the DNS
// server must not hide running ingesters (and their heads) from
// queries. The errors are returned joined.
func (d *Discovery) Refresh(ctx context.Context) error {
	var errs []error
	for _, t := range d.targets {
		if t.host == "" {
			continue
		}
		ips, err := d.lookup(ctx, t.host)
		d.mu.Lock()
		if err != nil {
			err = fmt.Errorf("resolve ingesters %s: %w", t.spec, err)
			d.failed[t.spec] = err
			errs = append(errs, err)
			d.mu.Unlock()
			continue
		}
		delete(d.failed, t.spec)
		addrs := make([]string, 0, len(ips))
		for _, ip := range ips {
			addrs = append(addrs, net.JoinHostPort(ip.String(), t.port))
		}
		slices.Sort(addrs)
		addrs = slices.Compact(addrs)
		if !slices.Equal(addrs, d.resolved[t.spec]) {
			d.logger.Info("ingesters resolved", "name", t.spec, "addrs", addrs)
		}
		d.resolved[t.spec] = addrs
		d.mu.Unlock()
	}
	return errors.Join(errs...)
}

// Addrs returns the ingesters' addresses, sorted, without duplicates. It
// fails for a dns+ entry that has never resolved: the querier cannot
// tell which ingesters hold data, and an answer without them would be
// short without saying so.
func (d *Discovery) Addrs() ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, t := range d.targets {
		if t.host == "" {
			out = append(out, t.addr)
			continue
		}
		addrs, ok := d.resolved[t.spec]
		if !ok {
			err := d.failed[t.spec]
			if err == nil {
				err = fmt.Errorf("ingesters %s: not resolved yet", t.spec)
			}
			return nil, err
		}
		out = append(out, addrs...)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// Run calls Refresh every interval until ctx is done, logging failures.
func (d *Discovery) Run(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := d.Refresh(ctx); err != nil && ctx.Err() == nil {
			d.logger.Warn("resolve ingesters; keeping the last addresses", "err", err)
		}
	}
}

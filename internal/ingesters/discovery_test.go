package ingesters

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
)

// fakeDNS answers lookups from a table that the test changes.
type fakeDNS struct {
	mu      sync.Mutex
	records map[string][]string
	fail    error
	asked   []string
}

func (f *fakeDNS) lookup(ctx context.Context, host string) ([]net.IP, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, host)
	if f.fail != nil {
		return nil, f.fail
	}
	var out []net.IP
	for _, r := range f.records[host] {
		out = append(out, net.ParseIP(r))
	}
	return out, nil
}

func TestParseRejects(t *testing.T) {
	for _, spec := range []string{"host", "dns+name", ":4040", "dns+:4040", "a:1,b"} {
		if _, err := Parse(spec, nil, nil); err == nil {
			t.Errorf("Parse(%q) succeeded", spec)
		}
	}
	d, err := Parse(" , ", nil, nil)
	if err != nil || !d.Empty() {
		t.Errorf("Parse of no entries: %v, empty %v", err, d.Empty())
	}
}

// TestDiscoveryDNS: dns+ entries resolve into every A and AAAA record,
// beside static ones; a failed resolution keeps the last addresses, and
// one that never succeeded fails Addrs, naming the entry.
func TestDiscoveryDNS(t *testing.T) {
	dns := &fakeDNS{records: map[string][]string{
		"ingesters.hearth.svc": {"10.0.0.2", "10.0.0.1", "fd00::7", "10.0.0.1"},
	}}
	d, err := Parse("dns+ingesters.hearth.svc:4040,static-1:4041", dns.lookup, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Addrs(); err == nil {
		t.Error("Addrs before the first resolution succeeded")
	}
	ctx := context.Background()
	if err := d.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.1:4040", "10.0.0.2:4040", "[fd00::7]:4040", "static-1:4041"}
	got, err := d.Addrs()
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("Addrs = %q, %v; want %q", got, err, want)
	}
	if !slices.Equal(dns.asked, []string{"ingesters.hearth.svc"}) {
		t.Errorf("looked up %q; want the dns+ name alone", dns.asked)
	}

	// A pod goes, another comes.
	dns.mu.Lock()
	dns.records["ingesters.hearth.svc"] = []string{"10.0.0.3"}
	dns.mu.Unlock()
	if err := d.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	want = []string{"10.0.0.3:4040", "static-1:4041"}
	if got, _ := d.Addrs(); !slices.Equal(got, want) {
		t.Errorf("Addrs after a change = %q; want %q", got, want)
	}

	// The DNS server fails: the last addresses stay.
	dns.mu.Lock()
	dns.fail = errors.New("server misbehaving")
	dns.mu.Unlock()
	if err := d.Refresh(ctx); err == nil {
		t.Error("Refresh with the DNS server failing succeeded")
	}
	if got, err := d.Addrs(); err != nil || !slices.Equal(got, want) {
		t.Errorf("Addrs after a failed refresh = %q, %v; want %q", got, err, want)
	}

	// Never resolved: fails, naming the entry.
	d2, _ := Parse("dns+other:4040", dns.lookup, nil)
	_ = d2.Refresh(ctx)
	if _, err := d2.Addrs(); err == nil || !strings.Contains(err.Error(), "dns+other:4040") {
		t.Errorf("Addrs of a name never resolved: %v; want an error naming it", err)
	}
}

package traceql

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/hearth-profiler/hearth/internal/events"
)

// benchBatch is a 64k-row batch shaped like a service's spans: a few
// services and hosts, some dozens of routes, one user ID per request, a
// long-tailed duration, an error now and then. Values repeat through
// shared strings, as they do in a batch decoded from storage's interned
// string tables.
func benchBatch(n int) *events.Batch {
	r := rand.New(rand.NewPCG(1, 2))
	services := []string{"checkout", "cart", "payment", "frontend", "search", "catalog", "shipping", "auth"}
	var routes, hosts []string
	for i := range 40 {
		routes = append(routes, fmt.Sprintf("/api/v%d/%s/items", i%3+1, services[i%len(services)]))
	}
	for i := range 20 {
		hosts = append(hosts, fmt.Sprintf("host-%d.eu-west-3", i))
	}
	b := &events.Batch{
		Len: n, Duration: make([]int64, n), Service: make([]string, n), Name: make([]string, n),
		Status: make([]events.Status, n), Kind: make([]events.Kind, n),
		Attrs: map[string]*events.Column{},
	}
	route, code, host, user := &events.Column{}, &events.Column{}, &events.Column{}, &events.Column{}
	b.Attrs["span.http.route"], b.Attrs["span.http.response.status_code"] = route, code
	b.Attrs["resource.host.name"], b.Attrs["span.user.id"] = host, user
	for i := range n {
		svc := r.IntN(len(services))
		b.Service[i] = services[svc]
		rt := routes[r.IntN(len(routes))]
		b.Name[i] = "GET " + rt
		b.Duration[i] = int64(r.ExpFloat64() * 150e6)
		b.Kind[i] = events.KindServer
		status := 200
		if r.IntN(20) == 0 {
			b.Status[i] = events.StatusError
			status = 500 + r.IntN(4)
		}
		route.Set(n, i, events.String(rt))
		code.Set(n, i, events.Int(int64(status)))
		host.Set(n, i, events.String(hosts[r.IntN(len(hosts))]))
		user.Set(n, i, events.String(fmt.Sprintf("user-%d", r.IntN(50000))))
	}
	return b
}

func BenchmarkMatch(b *testing.B) {
	const rows = 64 << 10
	batch := benchBatch(rows)
	for _, bc := range []struct{ name, filter string }{
		{"everything", `{ }`},
		{"service-route-duration-status", `{ resource.service.name = "checkout" && span.http.route = "/api/v1/checkout/items" && duration > 100ms && status = error }`},
		{"duration", `{ duration > 200ms }`},
		{"regex-memo", `{ span.http.route =~ "/api/v[12]/(cart|checkout)/.*" && span.http.response.status_code >= 500 }`},
		{"regex-prefix", `{ resource.host.name =~ "host-1.*" }`},
		{"regex-high-cardinality", `{ span.user.id =~ "user-[0-9]*7" }`},
		{"or", `{ status = error || duration > 1s || span.http.response.status_code >= 500 }`},
		{"unscoped-not", `{ .host.name != "host-3.eu-west-3" && !(name = "GET /api/v1/cart/items") }`},
	} {
		f, err := Parse(bc.filter)
		if err != nil {
			b.Fatal(err)
		}
		sel := make([]bool, rows)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				f.Match(batch, sel)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/rows, "ns/row")
		})
	}
}

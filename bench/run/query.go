package main

import (
	"fmt"
	"net/url"
	"strconv"
	"time"

	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/hearth-profiler/hearth/bench/internal/hearthproc"
)

func queryCases(w workload, long, svcs []*request, maxNodes int) []hearthproc.Query {
	rng := func(from, until int64) url.Values {
		return url.Values{"from": {strconv.FormatInt(from, 10)}, "until": {strconv.FormatInt(until, 10)}}
	}
	var cases []hearthproc.Query
	if w.longTicks > 0 {
		p := rng(w.longFrom(), w.end)
		p.Set("query", `cpu{service_name="svc-long"}`)
		p.Set("max_nodes", strconv.Itoa(maxNodes))
		var want int64
		for _, r := range long {
			want += r.file.cpuNanos
		}
		cases = append(cases, hearthproc.Query{Name: fmt.Sprintf("flame graph, 1 service, %s (%d profiles)", span(w.longTicks, w.window), w.longTicks),
			Path: "/api/v1/query/flamegraph", Params: p, Profiles: w.longTicks, Want: want})
	}
	var wantAll int64
	for _, r := range svcs {
		wantAll += r.file.cpuNanos
	}
	hour := span(w.ticks, w.window)
	p := rng(w.servicesFrom(), w.end)
	p.Set("query", `cpu{env="bench"}`)
	p.Set("max_nodes", strconv.Itoa(maxNodes))
	cases = append(cases, hearthproc.Query{Name: fmt.Sprintf("flame graph, %d services, %s (%d profiles)", w.services, hour, w.services*w.ticks),
		Path: "/api/v1/query/flamegraph", Params: p, Profiles: w.services * w.ticks, Want: wantAll})
	// The same through Pyroscope's query API, as Grafana's data source
	// asks it (Connect, protobuf) and as a script might (Connect, JSON).
	// Its max_nodes does not count the root, Hearth's does.
	req := &querierv1.SelectMergeStacktracesRequest{ProfileTypeID: "process_cpu:cpu:nanoseconds:cpu:nanoseconds",
		LabelSelector: `{env="bench"}`, Start: w.servicesFrom() * 1000, End: w.end * 1000, MaxNodes: proto.Int64(int64(maxNodes - 1))}
	read := func(unmarshal func([]byte, proto.Message) error) func([]byte) (int64, int, error) {
		return func(body []byte) (int64, int, error) {
			var res querierv1.SelectMergeStacktracesResponse
			if err := unmarshal(body, &res); err != nil {
				return 0, 0, fmt.Errorf("decode answer: %w", err)
			}
			return res.Flamegraph.GetTotal(), len(res.Flamegraph.GetNames()), nil
		}
	}
	for _, enc := range []struct {
		name, contentType string
		marshal           func(proto.Message) ([]byte, error)
		unmarshal         func([]byte, proto.Message) error
	}{
		{"protobuf", "application/proto", proto.Marshal, proto.Unmarshal},
		{"JSON", "application/json", protojson.Marshal, protojson.Unmarshal},
	} {
		body, err := enc.marshal(req)
		if err != nil {
			panic(err) // a message of known fields always encodes
		}
		cases = append(cases, hearthproc.Query{Name: fmt.Sprintf("SelectMergeStacktraces (%s), %d services, %s (%d profiles)", enc.name, w.services, hour, w.services*w.ticks),
			Path: "/querier.v1.QuerierService/SelectMergeStacktraces", Body: body, ContentType: enc.contentType, Read: read(enc.unmarshal),
			Profiles: w.services * w.ticks, Want: wantAll})
	}
	p = rng(w.servicesFrom(), w.end)
	p.Set("query", `alloc_space{service_name="svc0"}`)
	p.Set("max_nodes", strconv.Itoa(maxNodes))
	cases = append(cases, hearthproc.Query{Name: fmt.Sprintf("flame graph alloc_space, 1 service, %s (%d profiles)", hour, w.ticks),
		Path: "/api/v1/query/flamegraph", Params: p, Profiles: w.ticks})
	p = rng(w.servicesFrom(), w.end)
	p.Set("query", `cpu{env="bench"}`)
	p.Set("group_by", "service_name")
	cases = append(cases, hearthproc.Query{Name: fmt.Sprintf("series by service_name, %d services, %s (%d profiles)", w.services, hour, w.services*w.ticks),
		Path: "/api/v1/query/series", Params: p, Profiles: w.services * w.ticks})
	return cases
}

// span prints ticks windows as a duration: 360 × 10 s is "1h0m0s".
func span(ticks int, window int64) string {
	return (time.Duration(ticks) * time.Duration(window) * time.Second).String()
}

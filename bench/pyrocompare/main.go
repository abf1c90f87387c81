// Command pyrocompare sends the same profiles to Hearth and to Grafana
// Pyroscope and asks both the same questions through Pyroscope's query
// API (querier.v1 over Connect, with its generated client) and its legacy
// render API, and says where the answers differ. It is how Hearth's
// answers are checked against the server whose API it speaks, not only
// against its own tests' expectations.
//
//	go build -o /tmp/hearth ./cmd/hearth
//	go run ./bench/pyrocompare -hearth /tmp/hearth -pyroscope /tmp/pyroscope
//
// Pyroscope builds from its repository (bench/README.md, "Running the
// peer yourself"). Each server gets services × windows CPU profiles of the
// corpus, re-stamped 10 s apart, through POST /ingest.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	gpprof "github.com/google/pprof/profile"
	googlev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"google.golang.org/protobuf/proto"

	"github.com/hearth-profiler/hearth/bench/internal/hearthproc"
)

const cpuType = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"

func main() {
	hearthBin := flag.String("hearth", "", "hearth binary (required)")
	pyroBin := flag.String("pyroscope", "", "pyroscope binary (required)")
	corpus := flag.String("corpus", "bench/corpus", "directory of cpu-NN.pb.gz")
	services := flag.Int("services", 5, "services, each sending a profile per window")
	windows := flag.Int("windows", 12, "10 s windows per service")
	keep := flag.Bool("keep", false, "keep the work directory and the servers' logs")
	flag.Parse()
	if *hearthBin == "" || *pyroBin == "" {
		fmt.Fprintln(os.Stderr, "usage: go run ./bench/pyrocompare -hearth /tmp/hearth -pyroscope /tmp/pyroscope")
		os.Exit(2)
	}
	log.SetFlags(log.Ltime)
	log.SetPrefix("pyrocompare: ")
	diffs, err := run(*hearthBin, *pyroBin, *corpus, *services, *windows, *keep)
	if err != nil {
		log.Fatal(err)
	}
	if diffs > 0 {
		log.Fatalf("%d answers differ", diffs)
	}
	log.Print("every answer compared is the same")
}

func run(hearthBin, pyroBin, corpus string, services, windows int, keep bool) (int, error) {
	work, err := os.MkdirTemp("", "pyrocompare-")
	if err != nil {
		return 0, err
	}
	if keep {
		log.Printf("work directory %s", work)
	} else {
		defer os.RemoveAll(work)
	}
	haddr, err := hearthproc.FreeAddr()
	if err != nil {
		return 0, err
	}
	h, _, err := hearthproc.Start(hearthproc.Config{Binary: hearthBin, Addr: haddr, DataDir: filepath.Join(work, "hearth"),
		LogPath: filepath.Join(work, "hearth.log"), ReadyTimeout: time.Minute})
	if err != nil {
		return 0, err
	}
	defer h.Stop(30 * time.Second)
	paddr, stopPyro, err := startPyroscope(pyroBin, work)
	if err != nil {
		return 0, err
	}
	defer stopPyro()

	bodies, err := hearthproc.ReadCorpusCPU(corpus)
	if err != nil {
		return 0, err
	}
	end := time.Now().Truncate(10 * time.Second).Add(-time.Minute)
	start := end.Add(-time.Duration(windows) * 10 * time.Second)
	var wantTotal int64
	for s := range services {
		for w := range windows {
			from := start.Add(time.Duration(w) * 10 * time.Second)
			body, total, err := stamp(bodies[(s+w)%len(bodies)].Data, from)
			if err != nil {
				return 0, err
			}
			wantTotal += total
			// No kind suffix (svcN.cpu): for pprof uploads Pyroscope keeps
			// it in service_name and Hearth does not (README, "Pyroscope
			// SDKs"), which would make every per-service answer differ.
			q := url.Values{"name": {fmt.Sprintf("svc%d{env=cmp}", s)}, "format": {"pprof"},
				"from": {strconv.FormatInt(from.Unix(), 10)}, "until": {strconv.FormatInt(from.Add(10*time.Second).Unix(), 10)}}
			for _, addr := range []string{haddr, paddr} {
				if err := post("http://"+addr+"/ingest?"+q.Encode(), body); err != nil {
					return 0, fmt.Errorf("ingest to %s: %w", addr, err)
				}
			}
		}
	}
	log.Printf("sent %d profiles to each, %d ns of CPU", services*windows, wantTotal)

	hc := querierv1connect.NewQuerierServiceClient(http.DefaultClient, "http://"+haddr)
	pc := querierv1connect.NewQuerierServiceClient(http.DefaultClient, "http://"+paddr)
	ctx := context.Background()
	rangeMs := [2]int64{start.UnixMilli(), end.UnixMilli()}
	all := &querierv1.SelectMergeStacktracesRequest{ProfileTypeID: cpuType, LabelSelector: `{env="cmp"}`, Start: rangeMs[0], End: rangeMs[1]}
	// Pyroscope answers once its segments are flushed and its metastore
	// knows them, and its time series once its ingester has been ready a
	// while: wait until it holds everything sent and answers both.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		res, err := pc.SelectMergeStacktraces(ctx, connect.NewRequest(all))
		var got int64
		if err == nil {
			got = res.Msg.Flamegraph.GetTotal()
			_, err = pc.SelectSeries(ctx, connect.NewRequest(&querierv1.SelectSeriesRequest{ProfileTypeID: cpuType,
				LabelSelector: "{}", Start: all.Start, End: all.End, Step: 10}))
		}
		if err == nil && got == wantTotal {
			break
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("pyroscope holds %d of %d ns after 3 minutes (last error %v)", got, wantTotal, err)
		}
		time.Sleep(2 * time.Second)
	}

	c := &comparison{}
	// A flame graph cut at max_nodes is compared as a note: Pyroscope
	// cuts each stored segment's tree before it merges them, so which
	// small nodes it keeps depends on how its data is split; Hearth cuts
	// the merged tree once, by the same rule. Uncut graphs must match.
	flame := func(name string, req *querierv1.SelectMergeStacktracesRequest, cut bool) {
		hr, herr := hc.SelectMergeStacktraces(ctx, connect.NewRequest(req))
		pr, perr := pc.SelectMergeStacktraces(ctx, connect.NewRequest(req))
		if c.errs(name, herr, perr) {
			return
		}
		c.same(name+": total", hr.Msg.Flamegraph.Total, pr.Msg.Flamegraph.Total)
		hs, ps := selfs(hr.Msg.Flamegraph.Names, hr.Msg.Flamegraph.Levels), selfs(pr.Msg.Flamegraph.Names, pr.Msg.Flamegraph.Levels)
		if cut {
			c.note(name+": nodes (cut)", strconv.Itoa(nodes(hr.Msg.Flamegraph.Levels)), strconv.Itoa(nodes(pr.Msg.Flamegraph.Levels)))
		} else {
			c.same(name+": nodes", nodes(hr.Msg.Flamegraph.Levels), nodes(pr.Msg.Flamegraph.Levels))
			c.stacks(name+": self per stack", hs, ps)
		}
		if keep {
			for who, m := range map[string]map[string]int64{"hearth": hs, "pyroscope": ps} {
				var b strings.Builder
				for _, k := range slices.Sorted(maps.Keys(m)) {
					fmt.Fprintf(&b, "%s %d\n", k, m[k])
				}
				os.WriteFile(filepath.Join(work, strings.NewReplacer(" ", "_", ",", "").Replace(name)+"."+who+".txt"), []byte(b.String()), 0o644)
			}
		}
	}
	whole := func(sel string) *querierv1.SelectMergeStacktracesRequest {
		req := proto.Clone(all).(*querierv1.SelectMergeStacktracesRequest)
		req.LabelSelector, req.MaxNodes = sel, proto.Int64(1<<20)
		return req
	}
	flame("SelectMergeStacktraces, every service", whole(all.LabelSelector), false)
	for s := range min(services, 3) {
		flame("SelectMergeStacktraces, svc"+strconv.Itoa(s), whole(fmt.Sprintf(`{service_name="svc%d"}`, s)), false)
	}
	flame("SelectMergeStacktraces, default max_nodes", all, true)
	cut := proto.Clone(all).(*querierv1.SelectMergeStacktracesRequest)
	cut.MaxNodes = proto.Int64(64)
	flame("SelectMergeStacktraces, max_nodes 64", cut, true)

	pt := func(res *connect.Response[querierv1.ProfileTypesResponse]) []string {
		var ids []string
		for _, t := range res.Msg.ProfileTypes {
			ids = append(ids, t.ID)
		}
		slices.Sort(ids)
		return ids
	}
	htypes, herr := hc.ProfileTypes(ctx, connect.NewRequest(&querierv1.ProfileTypesRequest{Start: rangeMs[0], End: rangeMs[1]}))
	ptypes, perr := pc.ProfileTypes(ctx, connect.NewRequest(&querierv1.ProfileTypesRequest{Start: rangeMs[0], End: rangeMs[1]}))
	if !c.errs("ProfileTypes", herr, perr) {
		c.same("ProfileTypes", strings.Join(pt(htypes), " "), strings.Join(pt(ptypes), " "))
	}
	lv := &typesv1.LabelValuesRequest{Name: "service_name", Start: rangeMs[0], End: rangeMs[1]}
	hv, herr := hc.LabelValues(ctx, connect.NewRequest(lv))
	pv, perr := pc.LabelValues(ctx, connect.NewRequest(lv))
	if !c.errs("LabelValues service_name", herr, perr) {
		c.same("LabelValues service_name", strings.Join(hv.Msg.Names, " "), strings.Join(pv.Msg.Names, " "))
	}
	ln := &typesv1.LabelNamesRequest{Matchers: []string{`{service_name="svc0"}`}, Start: rangeMs[0], End: rangeMs[1]}
	hn, herr := hc.LabelNames(ctx, connect.NewRequest(ln))
	pn, perr := pc.LabelNames(ctx, connect.NewRequest(ln))
	if !c.errs("LabelNames", herr, perr) {
		c.note("LabelNames", strings.Join(hn.Msg.Names, " "), strings.Join(pn.Msg.Names, " "))
	}

	ss := &querierv1.SelectSeriesRequest{ProfileTypeID: cpuType, LabelSelector: `{env="cmp"}`, Start: start.UnixMilli(), End: end.UnixMilli(),
		Step: 10, GroupBy: []string{"service_name"}}
	hs, herr := hc.SelectSeries(ctx, connect.NewRequest(ss))
	ps, perr := pc.SelectSeries(ctx, connect.NewRequest(ss))
	if !c.errs("SelectSeries", herr, perr) {
		c.stacks("SelectSeries by service_name, 10 s steps", seriesPoints(hs.Msg.Series), seriesPoints(ps.Msg.Series))
	}

	diff := &querierv1.DiffRequest{Left: proto.Clone(all).(*querierv1.SelectMergeStacktracesRequest), Right: proto.Clone(all).(*querierv1.SelectMergeStacktracesRequest)}
	diff.Left.LabelSelector, diff.Right.LabelSelector = `{service_name="svc0"}`, `{service_name="svc1"}`
	hd, herr := hc.Diff(ctx, connect.NewRequest(diff))
	pd, perr := pc.Diff(ctx, connect.NewRequest(diff))
	if !c.errs("Diff", herr, perr) {
		c.same("Diff: left / right ticks", fmt.Sprint(hd.Msg.Flamegraph.LeftTicks, " / ", hd.Msg.Flamegraph.RightTicks),
			fmt.Sprint(pd.Msg.Flamegraph.LeftTicks, " / ", pd.Msg.Flamegraph.RightTicks))
	}

	q := url.Values{"query": {cpuType + `{env="cmp"}`}, "from": {strconv.FormatInt(start.Unix(), 10)}, "until": {strconv.FormatInt(end.Unix(), 10)}}
	hb, herr := get("http://" + haddr + "/pyroscope/render?" + q.Encode())
	pb, perr := get("http://" + paddr + "/pyroscope/render?" + q.Encode())
	if !c.errs("/pyroscope/render", herr, perr) {
		c.same("/pyroscope/render: numTicks", jsonField(hb, `"numTicks":`), jsonField(pb, `"numTicks":`))
		c.same("/pyroscope/render: durationDelta", jsonField(hb, `"durationDelta":`), jsonField(pb, `"durationDelta":`))
		c.same("/pyroscope/render: startTime", jsonField(hb, `"startTime":`), jsonField(pb, `"startTime":`))
	}
	compareNewer(ctx, c, hc, pc, start, end)
	c.print()
	return c.differ, nil
}

// compareNewer compares exemplars, heatmaps and merged pprof profiles
// (whole, cut at max_nodes, and trimmed for Go PGO). Profile IDs differ
// by design, so exemplars are compared by time and value, and each
// server's IDs are checked to open a profile of the exemplar's value.
func compareNewer(ctx context.Context, c *comparison, hc, pc querierv1connect.QuerierServiceClient, start, end time.Time) {
	// Steps longer than the profiles' spacing, and one over the whole
	// range: which profiles each point sums.
	for _, step := range []float64{30, end.Sub(start).Seconds()} {
		ss := &querierv1.SelectSeriesRequest{ProfileTypeID: cpuType, LabelSelector: `{env="cmp"}`, Start: start.UnixMilli(), End: end.UnixMilli(),
			Step: step, GroupBy: []string{"service_name"}}
		hs, herr := hc.SelectSeries(ctx, connect.NewRequest(ss))
		ps, perr := pc.SelectSeries(ctx, connect.NewRequest(ss))
		if !c.errs("SelectSeries", herr, perr) {
			c.stacks(fmt.Sprintf("SelectSeries by service_name, %g s steps", step), seriesPoints(hs.Msg.Series), seriesPoints(ps.Msg.Series))
		}
	}
	ss := &querierv1.SelectSeriesRequest{ProfileTypeID: cpuType, LabelSelector: `{env="cmp"}`, Start: start.UnixMilli(), End: end.UnixMilli(),
		Step: 30, GroupBy: []string{"service_name"}, ExemplarType: typesv1.ExemplarType_EXEMPLAR_TYPE_INDIVIDUAL}
	hs, herr := hc.SelectSeries(ctx, connect.NewRequest(ss))
	ps, perr := pc.SelectSeries(ctx, connect.NewRequest(ss))
	if !c.errs("SelectSeries exemplars", herr, perr) {
		c.stacks("SelectSeries exemplars: value per point", exemplarValues(hs.Msg.Series), exemplarValues(ps.Msg.Series))
		for who, x := range map[string]struct {
			cl querierv1connect.QuerierServiceClient
			ss []*typesv1.Series
		}{"hearth": {hc, hs.Msg.Series}, "pyroscope": {pc, ps.Msg.Series}} {
			opened, bad := 0, 0
			for _, s := range x.ss {
				for _, pt := range s.Points {
					for _, e := range pt.Exemplars {
						r, err := x.cl.SelectMergeStacktraces(ctx, connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{ProfileTypeID: cpuType,
							LabelSelector: `{env="cmp"}`, Start: start.UnixMilli(), End: end.UnixMilli(), ProfileIdSelector: []string{e.ProfileId}}))
						opened++
						if err != nil || r.Msg.Flamegraph.GetTotal() != e.Value {
							bad++
						}
					}
				}
			}
			c.same("SelectSeries exemplars: "+who+"'s IDs open profiles of their value ("+strconv.Itoa(opened)+")", 0, bad)
		}
	}

	hm := &querierv1.SelectHeatmapRequest{ProfileTypeID: cpuType, LabelSelector: `{env="cmp"}`, Start: start.UnixMilli(), End: end.UnixMilli(),
		Step: 20, GroupBy: []string{"service_name"}, QueryType: querierv1.HeatmapQueryType_HEATMAP_QUERY_TYPE_INDIVIDUAL,
		ExemplarType: typesv1.ExemplarType_EXEMPLAR_TYPE_INDIVIDUAL}
	hh, herr := hc.SelectHeatmap(ctx, connect.NewRequest(hm))
	ph, perr := pc.SelectHeatmap(ctx, connect.NewRequest(hm))
	if !c.errs("SelectHeatmap", herr, perr) {
		hcells, hy, hex := heatCells(hh.Msg.Series)
		pcells, py, pex := heatCells(ph.Msg.Series)
		c.same("SelectHeatmap: y ranges", hy, py)
		c.stacks("SelectHeatmap: profiles per cell", hcells, pcells)
		c.stacks("SelectHeatmap: exemplar value per cell", hex, pex)
	}

	pr := &querierv1.SelectMergeProfileRequest{ProfileTypeID: cpuType, LabelSelector: `{service_name="svc0"}`, Start: start.UnixMilli(), End: end.UnixMilli()}
	//lint:ignore SA1019 Grafana and profilecli call it: compared as they call it.
	hp, herr := hc.SelectMergeProfile(ctx, connect.NewRequest(pr))
	//lint:ignore SA1019 as above.
	pp, perr := pc.SelectMergeProfile(ctx, connect.NewRequest(pr))
	if !c.errs("SelectMergeProfile", herr, perr) {
		c.stacks("SelectMergeProfile svc0: value per stack", pprofStacks(hp.Msg, false), pprofStacks(pp.Msg, false))
	}
	pr.MaxNodes = proto.Int64(64)
	//lint:ignore SA1019 as above.
	hp, herr = hc.SelectMergeProfile(ctx, connect.NewRequest(pr))
	//lint:ignore SA1019 as above.
	pp, perr = pc.SelectMergeProfile(ctx, connect.NewRequest(pr))
	if !c.errs("SelectMergeProfile max_nodes 64", herr, perr) {
		hst, pst := pprofStacks(hp.Msg, false), pprofStacks(pp.Msg, false)
		c.same("SelectMergeProfile svc0, max_nodes 64: total", sum(hst), sum(pst))
		c.note("SelectMergeProfile svc0, max_nodes 64: stacks (cut)", strconv.Itoa(len(hst)), strconv.Itoa(len(pst)))
	}
	pr.MaxNodes = nil
	pr.StackTraceSelector = &typesv1.StackTraceSelector{GoPgo: &typesv1.GoPGO{KeepLocations: 5, AggregateCallees: true}}
	//lint:ignore SA1019 as above.
	hp, herr = hc.SelectMergeProfile(ctx, connect.NewRequest(pr))
	//lint:ignore SA1019 as above.
	pp, perr = pc.SelectMergeProfile(ctx, connect.NewRequest(pr))
	if !c.errs("SelectMergeProfile go_pgo", herr, perr) {
		c.stacks("SelectMergeProfile svc0, go_pgo keep 5 aggregate callees: value per stack of functions", pprofStacks(hp.Msg, false), pprofStacks(pp.Msg, false))
		// Pyroscope drops the line of the leaf's location, which other
		// stacks share as a caller, so callers lose their lines too;
		// Hearth keeps callers' lines.
		hl, pl := pprofStacks(hp.Msg, true), pprofStacks(pp.Msg, true)
		c.note("SelectMergeProfile svc0, go_pgo: stacks with line numbers", strconv.Itoa(len(hl)), strconv.Itoa(len(pl)))
	}

	aq := &querierv1.AnalyzeQueryRequest{Query: cpuType + `{service_name="svc0"}`, Start: start.UnixMilli(), End: end.UnixMilli()}
	ha, herr := hc.AnalyzeQuery(ctx, connect.NewRequest(aq))
	pa, perr := pc.AnalyzeQuery(ctx, connect.NewRequest(aq))
	if !c.errs("AnalyzeQuery", herr, perr) {
		c.note("AnalyzeQuery: scopes", fmt.Sprint(ha.Msg.QueryScopes), fmt.Sprint(pa.Msg.QueryScopes))
	}
}

// exemplarValues are each point's exemplars as "labels time: value".
func exemplarValues(ss []*typesv1.Series) map[string]int64 {
	out := map[string]int64{}
	for _, s := range ss {
		var ls []string
		for _, l := range s.Labels {
			ls = append(ls, l.Name+"="+l.Value)
		}
		for _, pt := range s.Points {
			for _, e := range pt.Exemplars {
				out[fmt.Sprintf("%s %d @%d", strings.Join(ls, ","), pt.Timestamp, e.Timestamp)] = e.Value
			}
		}
	}
	return out
}

// heatCells are a heatmap's counts per "labels slot y", its y ranges, and
// its exemplars' values per "labels slot value".
func heatCells(ss []*typesv1.HeatmapSeries) (cells map[string]int64, ys string, exemplars map[string]int64) {
	cells, exemplars = map[string]int64{}, map[string]int64{}
	for _, s := range ss {
		var ls []string
		for _, l := range s.Labels {
			ls = append(ls, l.Name+"="+l.Value)
		}
		for _, sl := range s.Slots {
			ys = fmt.Sprint(sl.YMin)
			for y, n := range sl.Counts {
				if n > 0 {
					cells[fmt.Sprintf("%s %d y%d", strings.Join(ls, ","), sl.Timestamp, y)] = int64(n)
				}
			}
			for _, e := range sl.Exemplars {
				exemplars[fmt.Sprintf("%s %d @%d", strings.Join(ls, ","), sl.Timestamp, e.Timestamp)] = e.Value
			}
		}
	}
	return cells, ys, exemplars
}

// pprofStacks sums a pprof message's first values per stack of function
// names, root first; with lines, each frame's line number too.
func pprofStacks(p *googlev1.Profile, lines bool) map[string]int64 {
	fns := map[uint64]string{}
	for _, f := range p.Function {
		fns[f.Id] = p.StringTable[f.Name]
	}
	locs := map[uint64]*googlev1.Location{}
	for _, l := range p.Location {
		locs[l.Id] = l
	}
	out := map[string]int64{}
	for _, s := range p.Sample {
		var fr []string
		for i := len(s.LocationId) - 1; i >= 0; i-- {
			l := locs[s.LocationId[i]]
			for j := len(l.Line) - 1; j >= 0; j-- {
				f := fns[l.Line[j].FunctionId]
				if lines {
					f += ":" + strconv.FormatInt(l.Line[j].Line, 10)
				}
				fr = append(fr, f)
			}
		}
		out[strings.Join(fr, ";")] += s.Value[0]
	}
	return out
}

func sum(m map[string]int64) (n int64) {
	for _, v := range m {
		n += v
	}
	return n
}

// comparison collects what was compared and how it came out.
type comparison struct {
	lines  []string
	differ int
}

func (c *comparison) errs(name string, h, p error) bool {
	if h == nil && p == nil {
		return false
	}
	c.differ++
	c.lines = append(c.lines, fmt.Sprintf("DIFFER  %s: hearth error %v, pyroscope error %v", name, h, p))
	return true
}

func (c *comparison) same(name string, h, p any) {
	if fmt.Sprint(h) == fmt.Sprint(p) {
		c.lines = append(c.lines, fmt.Sprintf("same    %s: %v", name, h))
		return
	}
	c.differ++
	c.lines = append(c.lines, fmt.Sprintf("DIFFER  %s: hearth %v, pyroscope %v", name, h, p))
}

// note records an answer that is expected to differ, without counting it.
func (c *comparison) note(name string, h, p string) {
	mark := "same   "
	if h != p {
		mark = "note   "
	}
	c.lines = append(c.lines, fmt.Sprintf("%s %s: hearth [%s], pyroscope [%s]", mark, name, h, p))
}

func (c *comparison) stacks(name string, h, p map[string]int64) {
	if maps.Equal(h, p) {
		c.lines = append(c.lines, fmt.Sprintf("same    %s: %d entries", name, len(h)))
		return
	}
	c.differ++
	var only []string
	for k, v := range h {
		if p[k] != v {
			only = append(only, fmt.Sprintf("%s: hearth %d pyroscope %d", k, v, p[k]))
		}
	}
	for k, v := range p {
		if _, ok := h[k]; !ok {
			only = append(only, fmt.Sprintf("%s: hearth 0 pyroscope %d", k, v))
		}
	}
	sort.Strings(only)
	c.lines = append(c.lines, fmt.Sprintf("DIFFER  %s: %d entries differ, e.g. %s", name, len(only), strings.Join(only[:min(3, len(only))], "; ")))
}

func (c *comparison) print() {
	for _, l := range c.lines {
		fmt.Println(l)
	}
}

// selfs reads a flame graph into self values per stack, a node's parent
// being the node of the row above whose span holds it.
func selfs(names []string, levels []*querierv1.Level) map[string]int64 {
	type node struct {
		x, total int64
		stack    string
	}
	out := map[string]int64{}
	var prev []node
	for li, l := range levels {
		var row []node
		var end int64
		for i := 0; i+3 < len(l.Values); i += 4 {
			n := node{x: end + l.Values[i], total: l.Values[i+1]}
			end = n.x + n.total
			if li > 0 {
				for _, p := range prev {
					if p.x <= n.x && n.x+n.total <= p.x+p.total {
						n.stack = strings.TrimPrefix(p.stack+";"+names[l.Values[i+3]], ";")
					}
				}
			}
			if self := l.Values[i+2]; self != 0 && li > 0 {
				out[n.stack] += self
			}
			row = append(row, n)
		}
		prev = row
	}
	return out
}

func nodes(levels []*querierv1.Level) int {
	n := 0
	for _, l := range levels {
		n += len(l.Values) / 4
	}
	return n
}

func seriesPoints(ss []*typesv1.Series) map[string]int64 {
	out := map[string]int64{}
	for _, s := range ss {
		var key []string
		for _, l := range s.Labels {
			key = append(key, l.Name+"="+l.Value)
		}
		for _, p := range s.Points {
			out[strings.Join(key, ",")+"@"+strconv.FormatInt(p.Timestamp, 10)] += int64(p.Value)
		}
	}
	return out
}

// stamp re-dates a profile to the window starting at from, and returns
// it with its CPU total.
func stamp(raw []byte, from time.Time) ([]byte, int64, error) {
	p, err := gpprof.ParseData(raw)
	if err != nil {
		return nil, 0, err
	}
	p.TimeNanos, p.DurationNanos = from.UnixNano(), int64(10*time.Second)
	col := -1
	for i, st := range p.SampleType {
		if st.Type == "cpu" {
			col = i
		}
	}
	var total int64
	for _, s := range p.Sample {
		if col >= 0 {
			total += s.Value[col]
		}
	}
	var buf bytes.Buffer
	if err := p.Write(&buf); err != nil {
		return nil, 0, err
	}
	return buf.Bytes(), total, nil
}

func post(u string, body []byte) error {
	resp, err := http.Post(u, "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s: %.200s", resp.Status, b)
	}
	return nil
}

func get(u string) ([]byte, error) {
	resp, err := http.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != 200 {
		err = fmt.Errorf("%s: %.200s", resp.Status, b)
	}
	return b, err
}

// jsonField is the number after key in a JSON body, "" when absent.
func jsonField(b []byte, key string) string {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return ""
	}
	rest := b[i+len(key):]
	j := bytes.IndexAny(rest, ",}")
	if j < 0 {
		return ""
	}
	return string(bytes.TrimSpace(rest[:j]))
}

// startPyroscope runs Pyroscope's single binary on loopback, as
// bench/README.md says, and waits for /ready.
func startPyroscope(bin, work string) (string, func(), error) {
	addr, err := hearthproc.FreeAddr()
	if err != nil {
		return "", nil, err
	}
	host, port, _ := strings.Cut(addr, ":")
	dir := filepath.Join(work, "pyroscope")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, err
	}
	logf, err := os.Create(filepath.Join(work, "pyroscope.log"))
	if err != nil {
		return "", nil, err
	}
	L := host
	cmd := exec.Command(bin, "-target=all", "-server.http-listen-address="+L, "-server.http-listen-port="+port,
		"-server.grpc-listen-address="+L, "-memberlist.bind-addr="+L, "-memberlist.advertise-addr="+L,
		"-metastore.address="+L+":9095", "-metastore.raft.bind-address="+L+":9099",
		"-metastore.raft.advertise-address="+L+":9099", "-metastore.raft.server-id="+L+":9099",
		"-distributor.ring.instance-addr="+L, "-query-scheduler.ring.instance-addr="+L,
		"-overrides-exporter.ring.instance-addr="+L, "-query-frontend.instance-addr="+L,
		"-segment-writer.lifecycler.addr="+L, "-ingester.lifecycler.addr="+L,
		"-compactor.ring.instance-addr="+L, "-store-gateway.sharding-ring.instance-addr="+L,
		"-self-profiling.disable-push=true", "-usage-stats.enabled=false", "-tracing.enabled=false",
		"-distributor.ingestion-rate-limit-mb=1000", "-distributor.ingestion-burst-size-mb=1000",
		// Every query to the storage the profiles are written to. By
		// default Pyroscope splits a query at its tenant's oldest profile
		// and sends the part before to a read path that holds nothing
		// here, which refuses time series ("query start time is after
		// end time").
		"-enable-query-backend-from=2000-01-01T00:00:00Z")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
		}
		logf.Close()
	}
	t0 := time.Now()
	for {
		resp, err := http.Get("http://" + addr + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				log.Printf("pyroscope ready in %.0f s", time.Since(t0).Seconds())
				return addr, stop, nil
			}
		}
		if time.Since(t0) > 5*time.Minute {
			stop()
			return "", nil, fmt.Errorf("pyroscope not ready after 5 minutes; see %s", logf.Name())
		}
		time.Sleep(time.Second)
	}
}

// Package query answers questions over stored profiles: merged flame
// graphs, top tables, diffs, time series of totals, and merged pprof.
//
// An Engine is safe for concurrent use. Every answer is computed from the
// storage at the time of the call; nothing is cached between calls.
package query

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hearth-profiler/hearth/internal/labels"
	"github.com/hearth-profiler/hearth/internal/profile"
	"github.com/hearth-profiler/hearth/internal/query/parser"
	"github.com/hearth-profiler/hearth/internal/storage"
)

// Storage is what the engine reads. *storage.DB implements it.
type Storage interface {
	SelectStacks(ctx context.Context, tenant string, p storage.SelectParams) ([]*storage.StackValues, error)
	SelectSeries(ctx context.Context, tenant string, p storage.SelectParams) ([]storage.SeriesPoints, error)
	Series(ctx context.Context, tenant string, start, end int64, ms []*labels.Matcher) ([]labels.Labels, error)
	LabelNames(ctx context.Context, tenant string, start, end int64, ms []*labels.Matcher) ([]string, error)
	LabelValues(ctx context.Context, tenant, name string, start, end int64, ms []*labels.Matcher) ([]string, error)
	Analyze(ctx context.Context, tenant string, p storage.SelectParams) (heads, blocks storage.Scope, err error)
}

// BadRequestError is a query that cannot be answered as asked; its message
// says why, for the user.
type BadRequestError struct{ Msg string }

func (e *BadRequestError) Error() string { return e.Msg }

func badRequest(format string, args ...any) error {
	return &BadRequestError{Msg: fmt.Sprintf(format, args...)}
}

// Engine runs queries against a Storage.
type Engine struct {
	st Storage
}

// NewEngine returns an engine reading st.
func NewEngine(st Storage) *Engine { return &Engine{st: st} }

// Request is one selection: a selector, a time range and stack filters.
type Request struct {
	Tenant string
	// Query is a selector such as cpu{service_name="api"}.
	Query      string
	Start, End time.Time
	Filter     StackFilter
	// Spans, when set, keeps the samples of the spans it selected (by
	// their span or local root span), and no others.
	Spans *SpanSelection
	// Profiles, when set, keeps the samples of these profiles only.
	Profiles *storage.ProfileSet
	// CutAbove, for a flame graph or diff past its node limit, keeps every
	// node at least as large as the maxNodes-th, not counting the root, as
	// Pyroscope's answers do; otherwise exactly maxNodes nodes are kept,
	// the largest first.
	CutAbove bool
	// Limits bound what the query reads; past them it stops with a
	// *LimitError.
	Limits Limits
}

// params returns the storage parameters of r, whose reads count against
// its own limits.
func (r Request) params() (storage.SelectParams, *parser.Selector, error) {
	return r.paramsWithin(newBudget(r.Limits))
}

// paramsWithin returns the storage parameters of r, whose reads count
// against b (nil: nothing), which a diff's two sides share.
func (r Request) paramsWithin(b *budget) (storage.SelectParams, *parser.Selector, error) {
	sel, err := parser.Parse(r.Query)
	if err != nil {
		return storage.SelectParams{}, nil, err
	}
	if !r.End.After(r.Start) {
		return storage.SelectParams{}, nil, badRequest("empty time range: until (%s) must be after from (%s)", r.End.Format(time.RFC3339), r.Start.Format(time.RFC3339))
	}
	ms := slices.Clone(sel.Matchers)
	if sel.ProfileType != "" {
		ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, labels.ProfileType, sel.ProfileType))
	}
	p := storage.SelectParams{
		Start: r.Start.UnixNano(), End: r.End.UnixNano(),
		Matchers: ms, Keep: r.Filter.keep(),
	}
	if r.Spans != nil {
		p.Spans = r.Spans.keep
	}
	if r.Profiles != nil {
		// Read only the time the profiles were taken in.
		lo, hi, ok := r.Profiles.Bounds()
		if !ok {
			lo, hi = p.Start, p.Start-1
		}
		p.Start, p.End = max(p.Start, lo), min(p.End, hi+1)
		p.Profiles = r.Profiles
	}
	if b != nil {
		p.Scan = b.scan
	}
	return p, sel, nil
}

// selectOneType selects stacks and checks that they hold one profile type,
// which every answer but pprof needs.
func (e *Engine) selectOneType(ctx context.Context, r Request, b *budget, apart storage.Apart) ([]*storage.StackValues, string, error) {
	p, sel, err := r.paramsWithin(b)
	if err != nil {
		return nil, "", err
	}
	p.Apart = apart
	svs, err := e.st.SelectStacks(ctx, r.Tenant, p)
	if err != nil {
		return nil, "", err
	}
	typ := sel.ProfileType
	for _, sv := range svs {
		if typ == "" {
			typ = sv.Type
		} else if sv.Type != typ {
			var types []string
			for _, sv := range svs {
				if !slices.Contains(types, sv.Type) {
					types = append(types, sv.Type)
				}
			}
			return nil, "", badRequest("selector %s matches several profile types (%s): name one, e.g. cpu{...}", r.Query, strings.Join(types, ", "))
		}
	}
	return svs, typ, nil
}

// unitOf returns the sample unit of a full profile type name.
func unitOf(typ string) string {
	t, err := profile.ParseType(typ)
	if err != nil {
		return ""
	}
	return t.SampleUnit
}

// FlameGraph is a merged call tree.
type FlameGraph struct {
	ProfileType string `json:"profileType"`
	Unit        string `json:"unit"`
	Total       int64  `json:"total"`
	// NumNodes is the size of the whole tree; Truncated says that fewer
	// were returned and the rest folded into "other" nodes.
	NumNodes  int   `json:"numNodes"`
	MaxNodes  int   `json:"maxNodes"`
	Truncated bool  `json:"truncated"`
	Root      *Node `json:"root"`
	// Spans says what span filter the samples were kept by, and how many
	// spans it matched.
	Spans *SpanSelection `json:"spans,omitempty"`
}

// Node is one frame of a call tree.
type Node struct {
	Name     string  `json:"name"`
	Self     int64   `json:"self"`
	Total    int64   `json:"total"`
	Children []*Node `json:"children,omitempty"`
}

// DefaultMaxNodes bounds a flame graph when the request does not.
const DefaultMaxNodes = 2048

func (e *Engine) buildTree(ctx context.Context, r Request, b *budget, col int, t *tree) (string, error) {
	svs, typ, err := e.selectOneType(ctx, r, b, 0)
	if err != nil {
		return "", err
	}
	var hide *regexpMatcher
	if r.Filter.Hide != nil {
		hide = &regexpMatcher{r.Filter.Hide}
	}
	for _, sv := range svs {
		if err := t.add(ctx, col, sv, hide); err != nil {
			return "", err
		}
	}
	return typ, nil
}

// FlameGraph merges the selected profiles into a call tree of at most
// maxNodes nodes (DefaultMaxNodes when <= 0).
func (e *Engine) FlameGraph(ctx context.Context, r Request, maxNodes int) (*FlameGraph, error) {
	if maxNodes <= 0 {
		maxNodes = DefaultMaxNodes
	}
	t := newTree(1)
	typ, err := e.buildTree(ctx, r, newBudget(r.Limits), 0, t)
	if err != nil {
		return nil, err
	}
	t.finish()
	ch := t.children()
	var keep []bool
	if r.CutAbove {
		keep = t.keepAbove(maxNodes)
	} else {
		keep = t.keepNodes(maxNodes, ch)
	}
	fg := &FlameGraph{ProfileType: typ, Unit: unitOf(typ), Total: t.total[0], NumNodes: len(t.parent), MaxNodes: maxNodes, Spans: r.Spans}
	var build func(i uint32) *Node
	build = func(i uint32) *Node {
		n := &Node{Name: t.names[t.name[i]], Self: t.self[i], Total: t.total[i]}
		var other int64
		for _, c := range ch[i] {
			if keep[c] {
				n.Children = append(n.Children, build(c))
			} else {
				other += t.total[c]
			}
		}
		if other != 0 {
			fg.Truncated = true
			n.Children = append(n.Children, &Node{Name: OtherName, Self: other, Total: other})
		}
		return n
	}
	fg.Root = build(0)
	return fg, nil
}

// TopEntry is one function's share of a profile.
type TopEntry struct {
	Name       string  `json:"name"`
	Self       int64   `json:"self"`
	Total      int64   `json:"total"`
	SelfShare  float64 `json:"selfShare"`  // of the profile total, 0..1
	TotalShare float64 `json:"totalShare"` // of the profile total, 0..1
}

// Top is a table of functions.
type Top struct {
	ProfileType string     `json:"profileType"`
	Unit        string     `json:"unit"`
	Total       int64      `json:"total"`
	Entries     []TopEntry `json:"entries"`
	// Spans is as FlameGraph's.
	Spans *SpanSelection `json:"spans,omitempty"`
}

// Top ranks functions by self (sortBy "self", the default) or total value.
// A function's total counts each stack once, however often the function
// recurses in it. limit <= 0 returns every function.
func (e *Engine) Top(ctx context.Context, r Request, sortBy string, limit int) (*Top, error) {
	switch sortBy {
	case "", "self", "total", "name":
	default:
		return nil, badRequest("sort: unknown column %q, want self, total or name", sortBy)
	}
	t := newTree(1)
	typ, err := e.buildTree(ctx, r, newBudget(r.Limits), 0, t)
	if err != nil {
		return nil, err
	}
	t.finish()
	self := make([]int64, len(t.names))
	total := make([]int64, len(t.names))
	onPath := make([]int32, len(t.names))
	ch := t.children()
	// Depth-first, adding a node's total to its function only where the
	// function is not already on the path above.
	type frame struct {
		node uint32
		next int
	}
	stack := []frame{{0, 0}}
	for len(stack) > 0 {
		f := &stack[len(stack)-1]
		if f.next == 0 && f.node != 0 {
			nm := t.name[f.node]
			self[nm] += t.self[f.node]
			if onPath[nm] == 0 {
				total[nm] += t.total[f.node]
			}
			onPath[nm]++
		}
		if f.next < len(ch[f.node]) {
			c := ch[f.node][f.next]
			f.next++
			stack = append(stack, frame{c, 0})
			continue
		}
		if f.node != 0 {
			onPath[t.name[f.node]]--
		}
		stack = stack[:len(stack)-1]
	}
	res := &Top{ProfileType: typ, Unit: unitOf(typ), Total: t.total[0], Entries: []TopEntry{}, Spans: r.Spans}
	for id := 1; id < len(t.names); id++ {
		if self[id] == 0 && total[id] == 0 {
			continue
		}
		e := TopEntry{Name: t.names[id], Self: self[id], Total: total[id]}
		if res.Total != 0 {
			e.SelfShare = float64(e.Self) / float64(res.Total)
			e.TotalShare = float64(e.Total) / float64(res.Total)
		}
		res.Entries = append(res.Entries, e)
	}
	slices.SortFunc(res.Entries, func(a, b TopEntry) int {
		switch sortBy {
		case "total":
			if a.Total != b.Total {
				return cmp.Compare(b.Total, a.Total)
			}
		case "name":
			return cmp.Compare(a.Name, b.Name)
		default:
			if a.Self != b.Self {
				return cmp.Compare(b.Self, a.Self)
			}
			if a.Total != b.Total {
				return cmp.Compare(b.Total, a.Total)
			}
		}
		return cmp.Compare(a.Name, b.Name)
	})
	if limit > 0 && len(res.Entries) > limit {
		res.Entries = res.Entries[:limit]
	}
	return res, nil
}

// DiffGraph is a call tree of two selections, node by node.
type DiffGraph struct {
	ProfileType     string    `json:"profileType"`
	Unit            string    `json:"unit"`
	BaselineTotal   int64     `json:"baselineTotal"`
	ComparisonTotal int64     `json:"comparisonTotal"`
	NumNodes        int       `json:"numNodes"`
	MaxNodes        int       `json:"maxNodes"`
	Truncated       bool      `json:"truncated"`
	Root            *DiffNode `json:"root"`
	// BaselineSpans and ComparisonSpans are each side's span filter, as
	// FlameGraph's: slow and fast requests of one route, say.
	BaselineSpans   *SpanSelection `json:"baselineSpans,omitempty"`
	ComparisonSpans *SpanSelection `json:"comparisonSpans,omitempty"`
}

// DiffNode is one frame with its values on both sides.
type DiffNode struct {
	Name            string      `json:"name"`
	BaselineSelf    int64       `json:"baselineSelf"`
	BaselineTotal   int64       `json:"baselineTotal"`
	ComparisonSelf  int64       `json:"comparisonSelf"`
	ComparisonTotal int64       `json:"comparisonTotal"`
	Children        []*DiffNode `json:"children,omitempty"`
}

// Diff merges a baseline and a comparison selection into one tree.
func (e *Engine) Diff(ctx context.Context, baseline, comparison Request, maxNodes int) (*DiffGraph, error) {
	if maxNodes <= 0 {
		maxNodes = DefaultMaxNodes
	}
	t := newTree(2)
	// One query: both sides count against the baseline's limits.
	b := newBudget(baseline.Limits)
	bt, err := e.buildTree(ctx, baseline, b, 0, t)
	if err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	ct, err := e.buildTree(ctx, comparison, b, 1, t)
	if err != nil {
		return nil, fmt.Errorf("comparison: %w", err)
	}
	if bt != "" && ct != "" && bt != ct {
		return nil, badRequest("baseline is %s but comparison is %s: a diff compares one profile type", bt, ct)
	}
	typ := bt
	if typ == "" {
		typ = ct
	}
	t.finish()
	ch := t.children()
	var keep []bool
	if baseline.CutAbove {
		keep = t.keepAbove(maxNodes)
	} else {
		keep = t.keepNodes(maxNodes, ch)
	}
	d := &DiffGraph{ProfileType: typ, Unit: unitOf(typ), BaselineTotal: t.total[0], ComparisonTotal: t.total[1], NumNodes: len(t.parent), MaxNodes: maxNodes,
		BaselineSpans: baseline.Spans, ComparisonSpans: comparison.Spans}
	var build func(i uint32) *DiffNode
	build = func(i uint32) *DiffNode {
		n := &DiffNode{Name: t.names[t.name[i]],
			BaselineSelf: t.self[2*i], ComparisonSelf: t.self[2*i+1],
			BaselineTotal: t.total[2*i], ComparisonTotal: t.total[2*i+1]}
		var ob, oc int64
		for _, c := range ch[i] {
			if keep[c] {
				n.Children = append(n.Children, build(c))
			} else {
				ob += t.total[2*c]
				oc += t.total[2*c+1]
			}
		}
		if ob != 0 || oc != 0 {
			d.Truncated = true
			n.Children = append(n.Children, &DiffNode{Name: OtherName, BaselineSelf: ob, BaselineTotal: ob, ComparisonSelf: oc, ComparisonTotal: oc})
		}
		return n
	}
	d.Root = build(0)
	return d, nil
}

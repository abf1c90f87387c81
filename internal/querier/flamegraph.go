package querier

import (
	"bytes"
	"cmp"
	"slices"

	gpprof "github.com/google/pprof/profile"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"

	"github.com/hearth-profiler/hearth/internal/query"
)

// names interns frame names; names[0] is the root, "total".
type names struct {
	list []string
	idx  map[string]int64
}

func newNames() *names { return &names{list: []string{"total"}, idx: map[string]int64{"total": 0}} }

func (n *names) id(s string) int64 {
	if i, ok := n.idx[s]; ok {
		return i
	}
	i := int64(len(n.list))
	n.list = append(n.list, s)
	n.idx[s] = i
	return i
}

// byName orders children as Pyroscope does: by name, with the "other"
// that folds what max_nodes cut last.
func byName[T any](children []T, name func(T) string) []T {
	out := slices.Clone(children)
	slices.SortStableFunc(out, func(a, b T) int {
		na, nb := name(a), name(b)
		if oa, ob := na == query.OtherName, nb == query.OtherName; oa != ob {
			if oa {
				return 1
			}
			return -1
		}
		return cmp.Compare(na, nb)
	})
	return out
}

// flameGraph writes a call tree in Pyroscope's flame graph format: per
// depth a row of (x offset from the end of the row's previous node,
// total, self, name index), a node's self to the left of its children.
func flameGraph(fg *query.FlameGraph) *querierv1.FlameGraph {
	out := &querierv1.FlameGraph{Total: fg.Total}
	nm := newNames()
	type at struct {
		n *query.Node
		x int64
	}
	row := []at{{fg.Root, 0}}
	for len(row) > 0 {
		lvl := &querierv1.Level{Values: make([]int64, 0, 4*len(row))}
		var end int64
		var next []at
		for i, a := range row {
			name := int64(0)
			if i > 0 || a.n != fg.Root {
				name = nm.id(a.n.Name)
			}
			lvl.Values = append(lvl.Values, a.x-end, a.n.Total, a.n.Self, name)
			end = a.x + a.n.Total
			out.MaxSelf = max(out.MaxSelf, a.n.Self)
			x := a.x + a.n.Self
			for _, c := range byName(a.n.Children, func(c *query.Node) string { return c.Name }) {
				next = append(next, at{c, x})
				x += c.Total
			}
		}
		out.Levels = append(out.Levels, lvl)
		row = next
	}
	out.Names = nm.list
	return out
}

// diffGraph writes a diff tree in Pyroscope's diff format: per node the
// left (baseline) x offset, total and self, the right (comparison) ones,
// and the name index, each side's offsets from the end of the row's
// previous node on that side.
func diffGraph(d *query.DiffGraph) *querierv1.FlameGraphDiff {
	out := &querierv1.FlameGraphDiff{LeftTicks: d.BaselineTotal, RightTicks: d.ComparisonTotal,
		Total: d.BaselineTotal + d.ComparisonTotal}
	nm := newNames()
	type at struct {
		n    *query.DiffNode
		l, r int64
	}
	row := []at{{d.Root, 0, 0}}
	for len(row) > 0 {
		lvl := &querierv1.Level{Values: make([]int64, 0, 7*len(row))}
		var lend, rend int64
		var next []at
		for i, a := range row {
			name := int64(0)
			if i > 0 || a.n != d.Root {
				name = nm.id(a.n.Name)
			}
			n := a.n
			lvl.Values = append(lvl.Values, a.l-lend, n.BaselineTotal, n.BaselineSelf, a.r-rend, n.ComparisonTotal, n.ComparisonSelf, name)
			lend, rend = a.l+n.BaselineTotal, a.r+n.ComparisonTotal
			out.MaxSelf = max(out.MaxSelf, n.BaselineSelf, n.ComparisonSelf)
			l, r := a.l+n.BaselineSelf, a.r+n.ComparisonSelf
			for _, c := range byName(n.Children, func(c *query.DiffNode) string { return c.Name }) {
				next = append(next, at{c, l, r})
				l += c.BaselineTotal
				r += c.ComparisonTotal
			}
		}
		out.Levels = append(out.Levels, lvl)
		row = next
	}
	out.Names = nm.list
	return out
}

// encodePprof writes p as an uncompressed pprof message.
func encodePprof(p *gpprof.Profile) ([]byte, error) {
	var buf bytes.Buffer
	if err := p.WriteUncompressed(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

package query

import (
	"cmp"
	"container/heap"
	"context"
	"path"
	"slices"
	"strconv"

	"github.com/hearth-profiler/hearth/internal/priority"
	"github.com/hearth-profiler/hearth/internal/storage"
)

// OtherName is the name of the node that stands for the children a
// truncated tree left out.
const OtherName = "other"

// frameName is the name shown for one line of a location: its function,
// else the binary and offset, else the bare address.
func frameName(s *storage.Symbols, loc uint32, line storage.Line) string {
	if line.Function != 0 {
		if n := s.Strings[s.Functions[line.Function].Name]; n != "" {
			return n
		}
	}
	l := s.Locations[loc]
	if l.Mapping != 0 {
		m := s.Mappings[l.Mapping]
		if f := s.Strings[m.File]; f != "" {
			return path.Base(f) + "+0x" + strconv.FormatUint(l.Address-m.Start+m.Offset, 16)
		}
	}
	return "0x" + strconv.FormatUint(l.Address, 16)
}

// tree is a call tree by function name with cols value columns per node
// (one for a flame graph, two for a diff). Node 0 is the root; a node's
// parent has a smaller ID.
type tree struct {
	cols   int
	names  []string
	nameID map[string]uint32
	parent []uint32
	name   []uint32
	self   []int64 // cols per node
	total  []int64 // cols per node, filled by finish
	child  map[uint64]uint32
}

func newTree(cols int) *tree {
	t := &tree{cols: cols, nameID: map[string]uint32{}, child: map[uint64]uint32{}}
	t.intern("total")
	t.parent = append(t.parent, 0)
	t.name = append(t.name, 0)
	t.self = append(t.self, make([]int64, cols)...)
	return t
}

func (t *tree) intern(s string) uint32 {
	if id, ok := t.nameID[s]; ok {
		return id
	}
	id := uint32(len(t.names))
	t.names = append(t.names, s)
	t.nameID[s] = id
	return id
}

func (t *tree) childOf(parent, name uint32) uint32 {
	k := uint64(parent)<<32 | uint64(name)
	if id, ok := t.child[k]; ok {
		return id
	}
	id := uint32(len(t.parent))
	t.parent = append(t.parent, parent)
	t.name = append(t.name, name)
	t.self = append(t.self, make([]int64, t.cols)...)
	t.child[k] = id
	return id
}

// add merges one symbol table's values per stack into column col.
func (t *tree) add(ctx context.Context, col int, sv *storage.StackValues, hide *regexpMatcher) error {
	s := sv.Syms
	n := len(sv.Values)
	vals := sv.Values
	if len(sv.Labeled) > 0 {
		vals = slices.Clone(sv.Values)
		for k, v := range sv.Labeled {
			vals[k.Stack] += v
		}
	}
	// A node is needed when it or a descendant has a value.
	need := make([]bool, n)
	for i := n - 1; i > 0; i-- {
		if vals[i] != 0 || need[i] {
			need[i] = true
			need[s.StackParent[i]] = true
		}
	}
	if n > 0 {
		t.self[col] += vals[0] // samples without a stack
	}
	fnode := make([]uint32, n)
	nameCache := make(map[uint64]uint32)
	meter := priority.NewMeter(ctx, stepStacks)
	for i := 1; i < n; i++ {
		if !need[i] {
			continue
		}
		if err := meter.Add(1); err != nil {
			return err
		}
		cur := fnode[s.StackParent[i]]
		loc := s.StackLoc[i]
		lines := s.LocationLines(loc)
		if len(lines) == 0 {
			cur = t.frame(cur, s, loc, storage.Line{}, hide, nameCache)
		}
		// pprof lists a location's lines innermost first; the tree runs
		// from the root, so the outermost caller comes first.
		for j := len(lines) - 1; j >= 0; j-- {
			cur = t.frame(cur, s, loc, lines[j], hide, nameCache)
		}
		fnode[i] = cur
		if v := vals[i]; v != 0 {
			t.self[int(cur)*t.cols+col] += v
		}
	}
	return nil
}

// stepStacks is how many stacks a tree takes in between two accounts of
// its work to the priority governor.
const stepStacks = 1024

func (t *tree) frame(parent uint32, s *storage.Symbols, loc uint32, line storage.Line, hide *regexpMatcher, cache map[uint64]uint32) uint32 {
	key := uint64(line.Function)<<32 | uint64(loc)
	if line.Function != 0 {
		key = uint64(line.Function) << 32 // names depend on the function only
	}
	name, ok := cache[key]
	if !ok {
		str := frameName(s, loc, line)
		if hide.match(str) {
			name = ^uint32(0)
		} else {
			name = t.intern(str)
		}
		cache[key] = name
	}
	if name == ^uint32(0) {
		return parent
	}
	return t.childOf(parent, name)
}

// finish computes totals from selves.
func (t *tree) finish() {
	t.total = slices.Clone(t.self)
	c := t.cols
	for i := len(t.parent) - 1; i > 0; i-- {
		p := int(t.parent[i])
		for k := range c {
			t.total[p*c+k] += t.total[i*c+k]
		}
	}
}

func (t *tree) nodeTotal(i int) int64 {
	var s int64
	for k := range t.cols {
		v := t.total[i*t.cols+k]
		if v < 0 {
			v = -v
		}
		s += v
	}
	return s
}

// children returns each node's children, biggest total first, then by name.
func (t *tree) children() [][]uint32 {
	ch := make([][]uint32, len(t.parent))
	for i := 1; i < len(t.parent); i++ {
		p := t.parent[i]
		ch[p] = append(ch[p], uint32(i))
	}
	for _, c := range ch {
		slices.SortFunc(c, func(a, b uint32) int {
			ta, tb := t.nodeTotal(int(a)), t.nodeTotal(int(b))
			if ta != tb {
				if ta > tb {
					return -1
				}
				return 1
			}
			return cmp.Compare(t.names[t.name[a]], t.names[t.name[b]])
		})
	}
	return ch
}

// keepNodes picks at most maxNodes nodes (the root included) with the
// biggest totals, such that every kept node's parent is kept: it expands
// from the root, always taking the biggest node reachable.
func (t *tree) keepNodes(maxNodes int, ch [][]uint32) []bool {
	keep := make([]bool, len(t.parent))
	if maxNodes <= 0 || maxNodes >= len(t.parent) {
		for i := range keep {
			keep[i] = true
		}
		return keep
	}
	pq := &nodeHeap{t: t}
	heap.Push(pq, uint32(0))
	for n := 0; n < maxNodes && pq.Len() > 0; n++ {
		i := heap.Pop(pq).(uint32)
		keep[i] = true
		for _, c := range ch[i] {
			heap.Push(pq, c)
		}
	}
	return keep
}

// keepAbove keeps the nodes Pyroscope's flame graphs keep for maxNodes:
// when the tree has more nodes than that, not counting the root, every
// node whose total (the larger side's, in a diff) is at least the
// maxNodes-th largest; ties at that total are all kept, so the answer may
// hold more nodes. A node's total is never above its parent's, so every
// kept node's ancestors are kept.
func (t *tree) keepAbove(maxNodes int) []bool {
	n := len(t.parent)
	keep := make([]bool, n)
	if n == 0 {
		return keep
	}
	keep[0] = true
	largest := func(i int) int64 {
		var m int64
		for k := range t.cols {
			m = max(m, abs(t.total[i*t.cols+k]))
		}
		return m
	}
	var cut int64
	if maxNodes > 0 && n-1 > maxNodes {
		totals := make([]int64, 0, n-1)
		for i := 1; i < n; i++ {
			totals = append(totals, largest(i))
		}
		slices.SortFunc(totals, func(a, b int64) int { return cmp.Compare(b, a) })
		cut = totals[maxNodes-1]
	}
	for i := 1; i < n; i++ {
		keep[i] = largest(i) >= cut
	}
	return keep
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

type nodeHeap struct {
	t  *tree
	ns []uint32
}

func (h *nodeHeap) Len() int { return len(h.ns) }
func (h *nodeHeap) Less(i, j int) bool {
	a, b := h.t.nodeTotal(int(h.ns[i])), h.t.nodeTotal(int(h.ns[j]))
	if a != b {
		return a > b
	}
	return h.ns[i] < h.ns[j]
}
func (h *nodeHeap) Swap(i, j int) { h.ns[i], h.ns[j] = h.ns[j], h.ns[i] }
func (h *nodeHeap) Push(x any)    { h.ns = append(h.ns, x.(uint32)) }
func (h *nodeHeap) Pop() any {
	x := h.ns[len(h.ns)-1]
	h.ns = h.ns[:len(h.ns)-1]
	return x
}

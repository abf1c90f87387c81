package querier

import (
	"cmp"
	"fmt"
	"slices"

	gpprof "github.com/google/pprof/profile"
)

// trimForPGO makes a merged profile what Go's profile-guided optimization
// reads, as Pyroscope's stack_trace_selector.go_pgo asks: each stack cut
// to its keep leaf-most locations (0 keeps all), with aggregateCallees the
// leaf's line numbers dropped so that the samples of one function's
// callees merge, and no sample labels. Samples left with equal stacks are
// merged.
func trimForPGO(p *gpprof.Profile, keep int, aggregateCallees bool) (*gpprof.Profile, error) {
	// A leaf without line numbers is a location of its own: the same
	// location may be a caller, with its lines, in other stacks.
	leaves := map[uint64]*gpprof.Location{}
	nextID := uint64(len(p.Location)) + 1
	for _, l := range p.Location {
		nextID = max(nextID, l.ID+1)
	}
	for _, s := range p.Sample {
		if keep > 0 && len(s.Location) > keep {
			s.Location = s.Location[:keep]
		}
		s.Label, s.NumLabel, s.NumUnit = nil, nil, nil
		if !aggregateCallees || len(s.Location) == 0 {
			continue
		}
		leaf := s.Location[0]
		nl := leaves[leaf.ID]
		if nl == nil {
			nl = &gpprof.Location{ID: nextID, Mapping: leaf.Mapping, Address: leaf.Address, IsFolded: leaf.IsFolded}
			nextID++
			for _, ln := range leaf.Line {
				nl.Line = append(nl.Line, gpprof.Line{Function: ln.Function})
			}
			leaves[leaf.ID] = nl
			p.Location = append(p.Location, nl)
		}
		s.Location = append([]*gpprof.Location{nl}, s.Location[1:]...)
	}
	// Merge folds equal stacks together and drops what no sample uses.
	out, err := gpprof.Merge([]*gpprof.Profile{p})
	if err != nil {
		return nil, fmt.Errorf("merge trimmed stacks: %w", err)
	}
	return out, nil
}

// truncatePprof cuts a merged profile to about maxNodes nodes of its
// function tree, as Pyroscope answers pprof requests with max_nodes: the
// nodes smaller than the maxNodes-th largest are cut from their stacks,
// which end in a location named "other" instead. Labels are dropped,
// as Pyroscope drops them, since the cut stacks merge.
func truncatePprof(p *gpprof.Profile, maxNodes int) (*gpprof.Profile, error) {
	type key struct {
		parent int
		fn     string
	}
	totals := []int64{0} // node 0 is the root, above every stack
	nodes := map[key]int{}
	// path is, per sample, the node of each location, root first: the
	// deepest node of its lines (inlined functions are nodes too).
	paths := make([][]int, len(p.Sample))
	for si, s := range p.Sample {
		v := int64(0)
		if len(s.Value) > 0 {
			v = s.Value[0]
		}
		totals[0] += v
		n := 0
		path := make([]int, len(s.Location))
		for li := len(s.Location) - 1; li >= 0; li-- {
			lines := s.Location[li].Line
			for j := len(lines) - 1; j >= 0; j-- {
				name := ""
				if lines[j].Function != nil {
					name = lines[j].Function.Name
				}
				k := key{n, name}
				c, ok := nodes[k]
				if !ok {
					c = len(totals)
					totals = append(totals, 0)
					nodes[k] = c
				}
				totals[c] += v
				n = c
			}
			path[len(s.Location)-1-li] = n
		}
		paths[si] = path
	}
	var minValue int64 // a profile of at most maxNodes nodes keeps all
	if maxNodes < len(totals) {
		sorted := slices.Clone(totals)
		slices.SortFunc(sorted, func(a, b int64) int { return cmp.Compare(b, a) })
		minValue = sorted[maxNodes-1]
	}

	var other *gpprof.Location
	for si, s := range p.Sample {
		s.Label, s.NumLabel, s.NumUnit = nil, nil, nil
		// Keep locations from the root while their nodes are kept. A
		// location's node is its deepest line's, and a node's total is
		// at most its parent's, so that decides for its lines too.
		keep := 0
		for keep < len(paths[si]) && totals[paths[si][keep]] >= minValue {
			keep++
		}
		if keep == len(paths[si]) {
			continue
		}
		if other == nil {
			other = otherLocation(p)
		}
		// Locations are leaf first: keep the last `keep` of them.
		s.Location = append([]*gpprof.Location{other}, s.Location[len(s.Location)-keep:]...)
	}
	out, err := gpprof.Merge([]*gpprof.Profile{p})
	if err != nil {
		return nil, fmt.Errorf("merge truncated stacks: %w", err)
	}
	return out, nil
}

// otherLocation adds the location that stands for cut frames.
func otherLocation(p *gpprof.Profile) *gpprof.Location {
	var fnID, locID uint64
	for _, f := range p.Function {
		fnID = max(fnID, f.ID)
	}
	for _, l := range p.Location {
		locID = max(locID, l.ID)
	}
	fn := &gpprof.Function{ID: fnID + 1, Name: "other", SystemName: "other"}
	p.Function = append(p.Function, fn)
	l := &gpprof.Location{ID: locID + 1, Line: []gpprof.Line{{Function: fn}}}
	if len(p.Mapping) > 0 {
		l.Mapping = p.Mapping[0]
	}
	p.Location = append(p.Location, l)
	return l
}

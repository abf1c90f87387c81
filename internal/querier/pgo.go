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
// which end in a location named "other" instead. A location whose inlined
// lines are cut in part keeps its outer lines, in a location of its own.
// Labels are dropped, as Pyroscope drops them, since the cut stacks merge.
func truncatePprof(p *gpprof.Profile, maxNodes int) (*gpprof.Profile, error) {
	type key struct {
		parent int
		fn     string
	}
	totals := []int64{0} // node 0 is the root, above every stack
	nodes := map[key]int{}
	// paths are, per sample, the node of each frame, root first: each
	// line of a location is a frame (inlined functions are nodes too),
	// and a location without lines one frame.
	paths := make([][]int, len(p.Sample))
	for si, s := range p.Sample {
		v := int64(0)
		if len(s.Value) > 0 {
			v = s.Value[0]
		}
		totals[0] += v
		n := 0
		var path []int
		for li := len(s.Location) - 1; li >= 0; li-- {
			l := s.Location[li]
			names := make([]string, 0, max(len(l.Line), 1))
			for j := len(l.Line) - 1; j >= 0; j-- {
				name := ""
				if l.Line[j].Function != nil {
					name = l.Line[j].Function.Name
				}
				names = append(names, name)
			}
			if len(l.Line) == 0 {
				names = append(names, fmt.Sprintf("0x%x", l.Address))
			}
			for _, name := range names {
				k := key{n, name}
				c, ok := nodes[k]
				if !ok {
					c = len(totals)
					totals = append(totals, 0)
					nodes[k] = c
				}
				totals[c] += v
				n = c
				path = append(path, c)
			}
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
	// outer holds the locations made of the kept outer lines of a
	// location whose inner lines were cut, by location and lines kept.
	type part struct {
		loc  *gpprof.Location
		keep int
	}
	outer := map[part]*gpprof.Location{}
	nextID := uint64(0)
	for _, l := range p.Location {
		nextID = max(nextID, l.ID)
	}
	for si, s := range p.Sample {
		s.Label, s.NumLabel, s.NumUnit = nil, nil, nil
		// Keep frames from the root while their nodes are kept; a node's
		// total is at most its parent's, so the rest go.
		path := paths[si]
		keep := 0
		for keep < len(path) && totals[path[keep]] >= minValue {
			keep++
		}
		if keep == len(path) {
			continue
		}
		if other == nil {
			other = otherLocation(p)
			nextID = max(nextID, other.ID)
		}
		// Walk the locations from the root, spending the kept frames;
		// the location they run out in keeps its outer lines only.
		kept := []*gpprof.Location{}
		left := keep
		for li := len(s.Location) - 1; li >= 0 && left > 0; li-- {
			l := s.Location[li]
			frames := max(len(l.Line), 1)
			if frames <= left {
				kept = append(kept, l)
				left -= frames
				continue
			}
			pk := part{l, left}
			o := outer[pk]
			if o == nil {
				nextID++
				o = &gpprof.Location{ID: nextID, Mapping: l.Mapping, Line: slices.Clone(l.Line[len(l.Line)-left:])}
				outer[pk] = o
				p.Location = append(p.Location, o)
			}
			kept = append(kept, o)
			left = 0
		}
		slices.Reverse(kept) // leaf first, as pprof has them
		s.Location = append([]*gpprof.Location{other}, kept...)
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

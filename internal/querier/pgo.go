package querier

import (
	"fmt"

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

package agent

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Selector names processes by name, cgroup or PID. A field left empty
// says nothing; the zero value names no process as an exclusion and every
// process as an inclusion.
type Selector struct {
	// Comm is matched, unanchored, against the process's comm and its
	// executable's path: either matching is a match.
	Comm *regexp.Regexp
	// Cgroup is matched, unanchored, against the cgroup path.
	Cgroup *regexp.Regexp
	// PIDs are process IDs (TGIDs).
	PIDs []uint32
}

func (s Selector) empty() bool { return s.Comm == nil && s.Cgroup == nil && len(s.PIDs) == 0 }

// allMatch says whether every field that is set matches p.
func (s Selector) allMatch(p *Process) bool {
	if s.Comm != nil && !s.Comm.MatchString(p.Comm) && (p.Exe == "" || !s.Comm.MatchString(p.Exe)) {
		return false
	}
	if s.Cgroup != nil && !s.Cgroup.MatchString(p.Cgroup) {
		return false
	}
	if len(s.PIDs) > 0 && !slices.Contains(s.PIDs, p.PID) {
		return false
	}
	return true
}

// anyMatch says whether a field that is set matches p.
func (s Selector) anyMatch(p *Process) bool {
	return (s.Comm != nil && (s.Comm.MatchString(p.Comm) || (p.Exe != "" && s.Comm.MatchString(p.Exe)))) ||
		(s.Cgroup != nil && s.Cgroup.MatchString(p.Cgroup)) ||
		slices.Contains(s.PIDs, p.PID)
}

// Filter decides which processes are profiled: those that match every
// field set in Include and no field set in Exclude. Include's fields
// narrow one another (a comm and a cgroup: that program in that cgroup),
// while each of Exclude's is reason enough to leave a process out.
type Filter struct {
	Include, Exclude Selector
}

// Match says whether p is profiled.
func (f Filter) Match(p *Process) bool {
	return (f.Include.empty() || f.Include.allMatch(p)) && !f.Exclude.anyMatch(p)
}

// ParsePIDList reads a comma-separated list of process IDs, as
// --exclude-pid takes it.
func ParsePIDList(s string) ([]uint32, error) {
	var pids []uint32
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.ParseUint(f, 10, 32)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("%q is not a process ID", f)
		}
		pids = append(pids, uint32(n))
	}
	return pids, nil
}

package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Process is what the agent knows of one process, read once from
// /proc/PID when the process is first sampled.
type Process struct {
	// PID is the process's ID (its TGID).
	PID uint32
	// StartTime is field 22 of /proc/PID/stat, the process's start in
	// clock ticks after boot: with PID it identifies a process, since
	// the kernel reuses PIDs. 0 when the process was gone before it could
	// be read.
	StartTime uint64
	Comm      string
	// Exe is the path of the executable; "" for kernel threads and when
	// /proc/PID/exe cannot be read (another user's process without root).
	Exe string
	// Cmdline is the arguments, joined by spaces and cut at
	// maxCmdlineBytes.
	Cmdline string
	// Cgroup is the process's cgroup path: the unified (v2) hierarchy's
	// when there is one, else a v1 hierarchy's (cpu, memory, systemd).
	Cgroup string
	// ContainerID is the 64-hex-digit ID of the container the process
	// runs in, read from its cgroup path; "" outside containers.
	ContainerID string
	// Env holds the environment variables the agent asked for that the
	// process has set; no other variable is kept, since environments
	// hold secrets.
	Env map[string]string
	// KernelThread says that the process is a kernel thread.
	KernelThread bool
	// Gone says that the process had exited before /proc could be read;
	// only PID and Comm (the sample's) are known.
	Gone bool
}

// Bounds of what is read from /proc per process: a process controls its
// own arguments and environment, and can make them large.
const (
	maxCmdlineBytes = 4 << 10
	maxEnvironBytes = 1 << 20
	maxCgroupBytes  = 64 << 10
)

// pfKThread is PF_KTHREAD, the flag (field 9 of stat) of kernel threads.
const pfKThread = 0x00200000

// procStat is what the agent reads of /proc/PID/stat.
type procStat struct {
	Comm      string
	State     byte
	Flags     uint64
	StartTime uint64
}

// parseStat reads /proc/PID/stat: "pid (comm) state ppid ... starttime
// ...". The comm is the text between the first "(" and the last ")",
// since a process may put parentheses and spaces in its name.
func parseStat(data []byte) (procStat, error) {
	open := bytes.IndexByte(data, '(')
	closing := bytes.LastIndexByte(data, ')')
	if open < 0 || closing < open {
		return procStat{}, errors.New("stat: no (comm)")
	}
	st := procStat{Comm: string(data[open+1 : closing])}
	// Fields after the comm start at field 3 (state).
	fields := strings.Fields(string(data[closing+1:]))
	const (
		stateField = 3
		flagsField = 9
		startField = 22
	)
	if len(fields) < startField-stateField+1 {
		return procStat{}, fmt.Errorf("stat: %d fields after the comm, want at least %d", len(fields), startField-stateField+1)
	}
	if len(fields[0]) != 1 {
		return procStat{}, fmt.Errorf("stat: state %q is not one letter", fields[0])
	}
	st.State = fields[0][0]
	var err error
	if st.Flags, err = strconv.ParseUint(fields[flagsField-stateField], 10, 64); err != nil {
		return procStat{}, fmt.Errorf("stat: flags: %w", err)
	}
	if st.StartTime, err = strconv.ParseUint(fields[startField-stateField], 10, 64); err != nil {
		return procStat{}, fmt.Errorf("stat: start time: %w", err)
	}
	return st, nil
}

// parseCgroup reads /proc/PID/cgroup, lines of "hierarchy:controllers:path",
// and returns the path that names the process's cgroup and the container
// ID found in its paths.
//
// A v1 hierarchy wins over the unified one ("0::path"): on hybrid hosts
// the unified hierarchy is systemd's alone, and a container runtime that
// uses cgroupfs leaves its processes in the unified cgroup of the daemon
// that started them. Among v1 hierarchies the cpu one comes first (CPU is
// what the agent measures), then memory, then systemd's named one, then
// the first listed. On cgroup v2 hosts the unified line is the only one.
func parseCgroup(data []byte) (path, containerID string) {
	rank := 99
	for line := range strings.SplitSeq(string(data), "\n") {
		id, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		controllers, p, ok := strings.Cut(rest, ":")
		if !ok || !strings.HasPrefix(p, "/") {
			continue
		}
		r := 4
		switch {
		case id == "0" && controllers == "":
			r = 5
		case hasController(controllers, "cpu"):
			r = 1
		case hasController(controllers, "memory"):
			r = 2
		case hasController(controllers, "name=systemd"):
			r = 3
		}
		if r < rank {
			rank, path = r, p
		}
		if containerID == "" {
			containerID = containerIDFromPath(p)
		}
	}
	// The chosen path's ID wins over another hierarchy's: in a nested
	// container the hierarchies can disagree, and the label must match
	// the cgroup label beside it.
	if id := containerIDFromPath(path); id != "" {
		containerID = id
	}
	return path, containerID
}

func hasController(list, name string) bool {
	for c := range strings.SplitSeq(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

// containerIDFromPath finds a container ID in a cgroup path. Every runtime
// names the container's cgroup after its 64-hex-digit ID, alone or after a
// prefix, with systemd's ".scope" suffix under the systemd cgroup driver:
//
//	/docker/ID                                     docker, cgroupfs driver
//	/system.slice/docker-ID.scope                  docker, systemd driver
//	/kubepods/burstable/podUID/ID                  kubelet, cgroupfs driver
//	/kubepods.slice/.../cri-containerd-ID.scope    containerd, systemd driver
//	/kubepods.slice/.../crio-ID.scope              cri-o
//	/machine.slice/libpod-ID.scope/container       podman
//
// The innermost match wins, so that a container in a container (docker in
// docker) gets its own ID. The cgroups of conmon, podman's and cri-o's
// container monitor, carry the ID of the container they watch but are not
// it.
func containerIDFromPath(p string) string {
	for p != "" {
		var seg string
		if i := strings.LastIndexByte(p, '/'); i >= 0 {
			p, seg = p[:i], p[i+1:]
		} else {
			p, seg = "", p
		}
		seg = strings.TrimSuffix(seg, ".scope")
		if strings.Contains(seg, "conmon") {
			continue
		}
		if i := strings.LastIndexAny(seg, "-:"); i >= 0 {
			seg = seg[i+1:]
		}
		if isContainerID(seg) {
			return seg
		}
	}
	return ""
}

func isContainerID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// parseEnviron returns the variables of names that a NUL-separated
// environment sets. The first setting of a name wins, as getenv(3) reads
// it; variables not asked for are not kept.
func parseEnviron(data []byte, names []string) map[string]string {
	var env map[string]string
	for len(data) > 0 && len(env) < len(names) {
		var kv []byte
		if i := bytes.IndexByte(data, 0); i >= 0 {
			kv, data = data[:i], data[i+1:]
		} else {
			kv, data = data, nil
		}
		k, v, ok := bytes.Cut(kv, []byte{'='})
		if !ok {
			continue
		}
		for _, n := range names {
			if string(k) == n {
				if _, seen := env[n]; !seen {
					if env == nil {
						env = make(map[string]string, len(names))
					}
					env[n] = string(v)
				}
				break
			}
		}
	}
	return env
}

// parseCmdline joins NUL-separated arguments with spaces.
func parseCmdline(data []byte) string {
	data = bytes.TrimRight(data, "\x00")
	return string(bytes.ReplaceAll(data, []byte{0}, []byte{' '}))
}

// procReader reads process metadata under a /proc root.
type procReader struct {
	root string
	// env names the environment variables to keep (ServiceNameEnv).
	env []string
}

func (r procReader) path(pid uint32, name string) string {
	return filepath.Join(r.root, strconv.FormatUint(uint64(pid), 10), name)
}

// stat reads /proc/PID/stat; an error says the process is gone (or the
// root is wrong).
func (r procReader) stat(pid uint32) (procStat, error) {
	data, err := os.ReadFile(r.path(pid, "stat"))
	if err != nil {
		return procStat{}, err
	}
	return parseStat(data)
}

// read reads what the agent keeps of a process. Only stat is required;
// the other files are left empty when they cannot be read, since exe and
// environ need privileges that an agent run without root lacks for other
// users' processes, and a process can exit between two reads.
func (r procReader) read(pid uint32) (*Process, error) {
	var p *Process
	for range 3 {
		st, err := r.stat(pid)
		if err != nil {
			return nil, err
		}
		p = r.readFiles(pid, st)
		// Had the process exited and its PID been reused while the
		// files were read, they would describe two processes: read
		// again.
		if again, err := r.stat(pid); err != nil || again.StartTime == st.StartTime {
			break
		}
	}
	return p, nil
}

func (r procReader) readFiles(pid uint32, st procStat) *Process {
	p := &Process{PID: pid, StartTime: st.StartTime, Comm: st.Comm, KernelThread: st.Flags&pfKThread != 0}
	if !p.KernelThread {
		if exe, err := os.Readlink(r.path(pid, "exe")); err == nil {
			// A binary replaced or removed since it started (a deploy)
			// reads as "path (deleted)"; the path still names it.
			p.Exe = strings.TrimSuffix(exe, " (deleted)")
		}
		if data, err := readFileLimit(r.path(pid, "cmdline"), maxCmdlineBytes); err == nil {
			p.Cmdline = parseCmdline(data)
		}
		if len(r.env) > 0 {
			if data, err := readFileLimit(r.path(pid, "environ"), maxEnvironBytes); err == nil {
				p.Env = parseEnviron(data, r.env)
			}
		}
	}
	if data, err := readFileLimit(r.path(pid, "cgroup"), maxCgroupBytes); err == nil {
		p.Cgroup, p.ContainerID = parseCgroup(data)
	}
	return p
}

func readFileLimit(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}

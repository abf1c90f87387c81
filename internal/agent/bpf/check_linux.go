//go:build linux && (amd64 || arm64)

package bpf

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// Check reports what Open needs and this process or host lacks, one
// readable line per problem with how to fix it, or nil when Open can work.
// It probes the bpf and perf_event_open system calls rather than trusting
// the kernel version, because seccomp filters and lockdown can take away
// what a kernel otherwise has.
func Check() error {
	var problems []error
	add := func(format string, args ...any) {
		problems = append(problems, fmt.Errorf(format, args...))
	}

	caps, capsErr := effectiveCaps()
	lastCap, lastErr := readSysctlInt("kernel/cap_last_cap")
	hasCapBPF := lastErr != nil || lastCap >= unix.CAP_BPF // CAP_BPF and CAP_PERFMON came with Linux 5.8
	admin := capsErr == nil && caps&(1<<unix.CAP_SYS_ADMIN) != 0
	bpfCap := admin || hasCapBPF && capsErr == nil && caps&(1<<unix.CAP_BPF) != 0
	perfmon := admin || hasCapBPF && capsErr == nil && caps&(1<<unix.CAP_PERFMON) != 0
	switch {
	case capsErr != nil:
		add("cannot read this process's capabilities (%v): run the agent as root", capsErr)
	case !bpfCap || !perfmon:
		const grant = "grant CAP_BPF and CAP_PERFMON (setcap cap_bpf,cap_perfmon+ep hearth; in Kubernetes securityContext.capabilities.add: [BPF, PERFMON])"
		switch {
		case !hasCapBPF && os.Geteuid() == 0:
			add("root without CAP_SYS_ADMIN (removed by a container or the capability bounding set), which this kernel (older than CAP_BPF and CAP_PERFMON) needs; run the agent privileged")
		case !hasCapBPF:
			add("not root: this kernel (older than CAP_BPF and CAP_PERFMON) needs CAP_SYS_ADMIN; run the agent as root")
		case os.Geteuid() == 0:
			add("root without %s (removed by a container or the capability bounding set); %s", missingCaps(bpfCap, perfmon), grant)
		default:
			add("not root: missing %s; run the agent as root, or %s", missingCaps(bpfCap, perfmon), grant)
		}
	}

	if paranoid, err := readSysctlInt("kernel/perf_event_paranoid"); err == nil && paranoid > 0 && !perfmon {
		add("kernel.perf_event_paranoid is %d, which allows whole-host sampling only with CAP_PERFMON (or CAP_SYS_ADMIN); grant it, or run sysctl -w kernel.perf_event_paranoid=0", paranoid)
	}

	switch err := probeBPF(); {
	case err == nil:
	case errors.Is(err, unix.ENOSYS):
		add("the bpf system call is unavailable (ENOSYS): the kernel lacks CONFIG_BPF_SYSCALL, or a seccomp filter hides it; use a kernel with BPF, or run the agent without the container runtime's seccomp profile (seccomp=unconfined)")
	case errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES):
		if bpfCap {
			add("the bpf system call was refused (%v) although the process has the capabilities: a seccomp filter or security module blocks it (kernel lockdown, SELinux/AppArmor, the container runtime's seccomp profile); allow bpf for the agent", err)
		}
		// Otherwise the missing capability is already reported.
	default:
		add("the bpf system call failed (%v): Open will fail too", err)
	}

	switch err := probePerfEvent(); {
	case err == nil:
	case errors.Is(err, unix.ENOSYS):
		add("the perf_event_open system call is unavailable (ENOSYS): the kernel lacks CONFIG_PERF_EVENTS, or a seccomp filter hides it; run the agent without the container runtime's seccomp profile (seccomp=unconfined)")
	case errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.EOPNOTSUPP):
		add("no perf events: perf_event_open of the software CPU clock failed (%v); the kernel lacks CONFIG_PERF_EVENTS or the hypervisor hides them", err)
	case errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES):
		if perfmon {
			add("perf_event_open was refused (%v) although the process has CAP_PERFMON: kernel.perf_event_paranoid above 2 (Debian, Android) or a security module blocks it; run sysctl -w kernel.perf_event_paranoid=0", err)
		}
		// Otherwise the capability or paranoid line says why.
	default:
		add("perf_event_open of the software CPU clock failed (%v)", err)
	}

	return errors.Join(problems...)
}

// missingCaps names the capabilities of the pair CAP_BPF and CAP_PERFMON
// that are missing.
func missingCaps(bpfCap, perfmon bool) string {
	var names []string
	if !bpfCap {
		names = append(names, "CAP_BPF")
	}
	if !perfmon {
		names = append(names, "CAP_PERFMON")
	}
	return strings.Join(names, " and ")
}

// effectiveCaps returns the effective capability set as a bit mask.
func effectiveCaps() (uint64, error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		// Fall back to /proc, which some sandboxes allow when capget is
		// filtered.
		return capsFromProc()
	}
	return uint64(data[1].Effective)<<32 | uint64(data[0].Effective), nil
}

func capsFromProc() (uint64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, errors.New("no CapEff in /proc/self/status")
}

// probeBPF creates and frees the smallest map.
func probeBPF() error {
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		return err
	}
	return m.Close()
}

// probePerfEvent opens, without enabling, the event Open uses, on CPU 0 for
// every task.
func probePerfEvent() error {
	attr := unix.PerfEventAttr{
		Type:   unix.PERF_TYPE_SOFTWARE,
		Config: unix.PERF_COUNT_SW_CPU_CLOCK,
		Size:   uint32(unsafe.Sizeof(unix.PerfEventAttr{})),
		Sample: uint64(time.Second) / DefaultFrequencyHz,
		Bits:   unix.PerfBitDisabled,
	}
	cpus, err := onlineCPUs()
	cpu := 0
	if err == nil && len(cpus) > 0 {
		cpu = cpus[0]
	}
	fd, err := unix.PerfEventOpen(&attr, -1, cpu, -1, unix.PERF_FLAG_FD_CLOEXEC)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

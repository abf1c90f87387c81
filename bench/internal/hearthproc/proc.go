package hearthproc

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat:
// 100 on every Linux this runs on.
const clockTicks = 100

// Stat is what /proc says about a process at one moment.
type Stat struct {
	CPUSeconds float64 // utime+stime of every thread, live or exited
	RSSMiB     float64 // VmRSS
	HWMMiB     float64 // VmHWM: the peak RSS since the process started
}

// ReadStat reads /proc/PID/stat and /proc/PID/status.
func ReadStat(pid int) (Stat, error) {
	var ps Stat
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ps, err
	}
	// The command name, in parentheses, may hold spaces; fields count
	// from the closing one. utime and stime are fields 14 and 15.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return ps, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(f))
	}
	ut, _ := strconv.ParseUint(f[11], 10, 64)
	st, _ := strconv.ParseUint(f[12], 10, 64)
	ps.CPUSeconds = float64(ut+st) / clockTicks
	b, err = os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return ps, err
	}
	for line := range strings.Lines(string(b)) {
		fs := strings.Fields(line)
		if len(fs) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(fs[1], 64)
		switch fs[0] {
		case "VmRSS:":
			ps.RSSMiB = kb / 1024
		case "VmHWM:":
			ps.HWMMiB = kb / 1024
		}
	}
	return ps, nil
}

// ThreadCPU is the CPU time of the live threads of a process, from
// /proc/PID/task/*/schedstat: finer than the 10 ms ticks of
// /proc/PID/stat, for timing one query. Threads that exited are missing,
// which for a Go server (whose threads stay) loses nothing.
func ThreadCPU(pid int) (time.Duration, error) {
	dirs, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	if err != nil || len(dirs) == 0 {
		return 0, fmt.Errorf("read /proc/%d/task: no schedstat", pid)
	}
	var ns int64
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil {
			continue // the thread exited meanwhile
		}
		f := strings.Fields(string(b))
		if len(f) > 0 {
			v, _ := strconv.ParseInt(f[0], 10, 64)
			ns += v
		}
	}
	return time.Duration(ns), nil
}

// MachineBusySeconds is the CPU time of every process on the machine
// (user, nice, system, irq, softirq, steal), summed over cores.
func MachineBusySeconds() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var busy uint64
	for i, x := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 8 { // guest time is already in user time
			break
		}
		v, _ := strconv.ParseUint(x, 10, 64)
		busy += v
	}
	return float64(busy) / clockTicks
}

// SelfCPUSeconds is the CPU time of the calling process: the driver's own
// share of a machine it shares with the server.
func SelfCPUSeconds() float64 {
	ps, _ := ReadStat(os.Getpid())
	return ps.CPUSeconds
}

// RSSSampler records the peak VmRSS of a process, read every interval.
// VmHWM gives the peak since the process started; the sampler gives it
// for a part of the process's life.
type RSSSampler struct {
	mu     sync.Mutex
	peakMB float64
	stop   chan struct{}
	done   chan struct{}
}

// SampleRSS starts reading the RSS of pid every interval until Close.
func SampleRSS(pid int, interval time.Duration) *RSSSampler {
	s := &RSSSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			if ps, err := ReadStat(pid); err == nil {
				s.mu.Lock()
				s.peakMB = max(s.peakMB, ps.RSSMiB)
				s.mu.Unlock()
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// Peak is the highest RSS seen so far, in MiB.
func (s *RSSSampler) Peak() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peakMB
}

// Reset starts a new peak from now.
func (s *RSSSampler) Reset() {
	s.mu.Lock()
	s.peakMB = 0
	s.mu.Unlock()
}

// Close stops the sampler and returns its peak.
func (s *RSSSampler) Close() float64 {
	close(s.stop)
	<-s.done
	return s.Peak()
}

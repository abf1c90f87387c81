package agent

import (
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/hearth-profiler/hearth/internal/labels"
)

// Series labels the agent sets on each process's profiles.
const (
	LabelPID         = "pid"
	LabelComm        = "comm"
	LabelExe         = "exe"
	LabelCgroup      = "cgroup"
	LabelContainerID = "container_id"
	LabelHost        = "host"
	LabelJob         = "job"
)

// Job is the value of the job label of every series the agent sends.
const Job = "hearth-agent"

// DefaultServiceNameEnv are the environment variables that name a
// process's service, first set first: OpenTelemetry's, then the one
// Pyroscope's SDKs read.
var DefaultServiceNameEnv = []string{"OTEL_SERVICE_NAME", "PYROSCOPE_APPLICATION_NAME"}

// kernelService is the service of kernel threads: one service for all of
// them, rather than one per kworker/N:M, with comm telling them apart.
const kernelService = "kernel"

// maxLabelValueBytes bounds a label value: cgroup and executable paths are
// usually short but nothing stops them from being kilobytes long, and a
// value is kept in every series index entry.
const maxLabelValueBytes = 1024

// serviceName is the service a process belongs to: the first variable of
// envNames the process sets, else its executable's base name, else its
// comm (a process gone before its executable could be read, or one the
// agent may not look into); kernel threads are the "kernel" service.
func serviceName(p *Process, envNames []string) string {
	for _, n := range envNames {
		if v := sanitizeValue(p.Env[n]); v != "" {
			return v
		}
	}
	if p.KernelThread {
		return kernelService
	}
	if p.Exe != "" {
		if b := sanitizeValue(filepath.Base(p.Exe)); b != "" && b != "/" && b != "." {
			return b
		}
	}
	if c := sanitizeValue(p.Comm); c != "" {
		return c
	}
	return "unknown"
}

// processLabels are the series labels of one process's profiles: extra
// (the operator's, already valid) first, then the agent's, which win.
// Empty values are left out, as in Prometheus.
func processLabels(p *Process, host string, envNames []string, extra labels.Labels) labels.Labels {
	b := labels.NewBuilder(extra)
	b.Set(labels.ServiceName, serviceName(p, envNames))
	b.Set(LabelPID, strconv.FormatUint(uint64(p.PID), 10))
	b.Set(LabelComm, sanitizeValue(p.Comm))
	b.Set(LabelExe, sanitizeValue(p.Exe))
	b.Set(LabelCgroup, sanitizeValue(p.Cgroup))
	b.Set(LabelContainerID, p.ContainerID)
	b.Set(LabelHost, sanitizeValue(host))
	b.Set(LabelJob, Job)
	return b.Labels()
}

// sanitizeValue makes s a label value that every part of Hearth and the
// tools around it handle: valid UTF-8, no control characters (a comm or an
// environment variable may hold any byte but NUL), no surrounding space,
// at most maxLabelValueBytes.
func sanitizeValue(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f {
			clean = false
			break
		}
	}
	if !clean {
		s = strings.ToValidUTF8(s, "\uFFFD")
		s = strings.Map(func(r rune) rune {
			if unicode.IsControl(r) {
				return '_'
			}
			return r
		}, s)
	}
	s = strings.TrimSpace(s)
	if len(s) > maxLabelValueBytes {
		cut := maxLabelValueBytes
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

package agent

import (
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/hearth-profiler/hearth/internal/labels"
)

func TestServiceName(t *testing.T) {
	r := procReader{root: testProcRoot, env: DefaultServiceNameEnv}
	read := func(pid uint32) *Process {
		t.Helper()
		p, err := r.read(pid)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, c := range []struct {
		name string
		p    *Process
		env  []string
		want string
	}{
		{"first variable set", read(100), DefaultServiceNameEnv, "checkout"},
		{"an empty variable is not set", read(200), DefaultServiceNameEnv, "cart"},
		{"order of the rule", read(100), []string{"PYROSCOPE_APPLICATION_NAME", "OTEL_SERVICE_NAME"}, "ignored"},
		{"no variable: executable", read(400), DefaultServiceNameEnv, "sshd"},
		{"deleted binary", read(300), DefaultServiceNameEnv, "python3.12"},
		{"rule without variables", read(100), nil, "checkout-server"},
		{"control characters", read(600), DefaultServiceNameEnv, "weird_svc"},
		{"kernel thread", read(500), DefaultServiceNameEnv, "kernel"},
		{"gone before read", &Process{PID: 9, Comm: "sh", Gone: true}, DefaultServiceNameEnv, "sh"},
		{"nothing known", &Process{PID: 9}, DefaultServiceNameEnv, "unknown"},
	} {
		if got := serviceName(c.p, c.env); got != c.want {
			t.Errorf("%s: serviceName = %q, want %q", c.name, got, c.want)
		}
	}
}

func TestProcessLabels(t *testing.T) {
	p, err := procReader{root: testProcRoot, env: DefaultServiceNameEnv}.read(200)
	if err != nil {
		t.Fatal(err)
	}
	extra := labels.FromStrings("env", "prod", "pid", "overridden")
	got := processLabels(p, "node-1", DefaultServiceNameEnv, extra).Map()
	want := map[string]string{
		"service_name": "cart",
		"pid":          "200",
		"comm":         "cart",
		"exe":          "/app/cart",
		"cgroup":       p.Cgroup,
		"container_id": cartID,
		"host":         "node-1",
		"job":          "hearth-agent",
		"env":          "prod",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("labels (-want +got):\n%s", d)
	}

	// A host process: no container_id label at all, and no exe for a
	// kernel thread.
	k, _ := procReader{root: testProcRoot}.read(500)
	ls := processLabels(k, "node-1", nil, labels.Labels{})
	if ls.Has(LabelContainerID) || ls.Has(LabelExe) || ls.Get(LabelCgroup) != "/" {
		t.Errorf("kernel thread labels %v: want no container_id or exe, cgroup /", ls)
	}
	if err := ls.Validate(); err != nil {
		t.Error(err)
	}
}

func TestSanitizeValue(t *testing.T) {
	long := strings.Repeat("é", maxLabelValueBytes) // 2 bytes a rune
	for _, c := range []struct{ in, want string }{
		{"plain", "plain"},
		{"  spaced  ", "spaced"},
		{"a\x00b\nc\td\x7f", "a_b_c_d_"},
		{"bad\xffutf8", "bad\uFFFDutf8"},
		{"/kubepods.slice/x:cri-containerd:y,{}=", "/kubepods.slice/x:cri-containerd:y,{}="},
		{"日本語", "日本語"},
		{long, long[:maxLabelValueBytes]},
		{"x" + long, ("x" + long)[:maxLabelValueBytes-1]},
	} {
		got := sanitizeValue(c.in)
		if got != c.want {
			t.Errorf("sanitizeValue(%q) = %q, want %q", c.in, got, c.want)
		}
		if !utf8.ValidString(got) || len(got) > maxLabelValueBytes {
			t.Errorf("sanitizeValue(%q) = %q: invalid or too long", c.in, got)
		}
	}
}

func TestFilter(t *testing.T) {
	r := procReader{root: testProcRoot}
	var procs []*Process
	for _, pid := range []uint32{100, 200, 300, 400, 500, 600, 700} {
		p, err := r.read(pid)
		if err != nil {
			t.Fatal(err)
		}
		procs = append(procs, p)
	}
	procs = append(procs, &Process{PID: 900, Comm: "short", Gone: true})
	re := regexp.MustCompile
	for _, c := range []struct {
		name string
		f    Filter
		want []uint32
	}{
		{"zero value: everything", Filter{}, []uint32{100, 200, 300, 400, 500, 600, 700, 900}},
		{"include comm", Filter{Include: Selector{Comm: re("^(cart|nginx)$")}}, []uint32{200, 700}},
		{"include comm matches the executable path", Filter{Include: Selector{Comm: re("^/usr/sbin/")}}, []uint32{400, 700}},
		{"exclude comm", Filter{Exclude: Selector{Comm: re("^kworker|python")}}, []uint32{100, 200, 400, 600, 700, 900}},
		{"include cgroup", Filter{Include: Selector{Cgroup: re("kubepods")}}, []uint32{200, 600}},
		{"exclude cgroup", Filter{Exclude: Selector{Cgroup: re("^/system\\.slice/")}}, []uint32{100, 200, 300, 500, 600, 900}},
		{"include narrows by each field", Filter{Include: Selector{Comm: re("cart|weird|sshd"), Cgroup: re("kubepods")}}, []uint32{200, 600}},
		{"include and exclude", Filter{Include: Selector{Cgroup: re("kubepods")}, Exclude: Selector{PIDs: []uint32{600}}}, []uint32{200}},
		{"include PIDs", Filter{Include: Selector{PIDs: []uint32{300, 900}}}, []uint32{300, 900}},
		{"exclude PIDs", Filter{Exclude: Selector{PIDs: []uint32{100, 200, 300}}}, []uint32{400, 500, 600, 700, 900}},
		{"any exclusion field excludes", Filter{Exclude: Selector{Comm: re("^cart$"), PIDs: []uint32{700}}}, []uint32{100, 300, 400, 500, 600, 900}},
	} {
		var got []uint32
		for _, p := range procs {
			if c.f.Match(p) {
				got = append(got, p.PID)
			}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: matched %v, want %v", c.name, got, c.want)
		}
	}
}

func TestParsePIDList(t *testing.T) {
	got, err := ParsePIDList(" 1, 22 ,,333")
	if err != nil || !slices.Equal(got, []uint32{1, 22, 333}) {
		t.Errorf("ParsePIDList = %v, %v; want [1 22 333]", got, err)
	}
	if got, err := ParsePIDList(""); err != nil || got != nil {
		t.Errorf("ParsePIDList(\"\") = %v, %v; want nothing", got, err)
	}
	for _, bad := range []string{"x", "1,-2", "0", "4294967296", "1.5"} {
		if _, err := ParsePIDList(bad); err == nil {
			t.Errorf("ParsePIDList(%q): no error", bad)
		}
	}
}

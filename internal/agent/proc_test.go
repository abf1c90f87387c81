package agent

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Container IDs of the fake /proc tree in testdata/proc.
const (
	checkoutID = "c7761e58969f7edd498186641b2021e8477e1bcd230de4cf3435242da4a40d14"
	cartID     = "1c42ddc0285b9c25135be3bf345e6a041271b784b22a6f6cab6588dab93c5980"
	podmanID   = "2f259bab93aaaaa2542ba43ef33eb990d0999ee1b9924b557b7be53c0b7a1bb9"
	crioID     = "c64064614423cb790e88b3e5492ff5ccf673b25ae823089f7a60c65cda24d809"
	nginxID    = "5be1ecc7935f1dd85635d4feedaf660594030253cc97c9e9ca3819ffeac36b65"
)

const testProcRoot = "testdata/proc"

func TestReadProcess(t *testing.T) {
	r := procReader{root: testProcRoot, env: DefaultServiceNameEnv}
	for _, want := range []*Process{
		{
			// Docker, cgroupfs driver, on a hybrid v1/v2 host; the
			// environment holds a secret that must not be kept.
			PID: 100, StartTime: 987654, Comm: "checkout-server", Exe: "/usr/local/bin/checkout-server",
			Cmdline: "/usr/local/bin/checkout-server --port=8080 --db postgres://db:5432",
			Cgroup:  "/docker/" + checkoutID, ContainerID: checkoutID,
			Env: map[string]string{"OTEL_SERVICE_NAME": "checkout", "PYROSCOPE_APPLICATION_NAME": "ignored"},
		},
		{
			// containerd under the kubelet's systemd driver, cgroup v2.
			PID: 200, StartTime: 1000200, Comm: "cart", Exe: "/app/cart", Cmdline: "/app/cart",
			Cgroup:      "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod6b8f2c1e_4a5d_4f7e_9c3b_2d1e0f9a8b7c.slice/cri-containerd-" + cartID + ".scope",
			ContainerID: cartID,
			Env:         map[string]string{"OTEL_SERVICE_NAME": "", "PYROSCOPE_APPLICATION_NAME": "cart"},
		},
		{
			// Rootless podman; the binary was replaced after it started.
			PID: 300, StartTime: 1000300, Comm: "python3", Exe: "/usr/bin/python3.12", Cmdline: "python3 -m http.server",
			Cgroup:      "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + podmanID + ".scope/container",
			ContainerID: podmanID,
		},
		{
			PID: 400, StartTime: 5000, Comm: "sshd", Exe: "/usr/sbin/sshd",
			Cmdline: "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups", Cgroup: "/system.slice/ssh.service",
		},
		{PID: 500, StartTime: 300, Comm: "kworker/3:1-events", Cgroup: "/", KernelThread: true},
		{
			// cri-o with cgroupfs on v1: the cpu hierarchy is chosen, and
			// conmon's cgroup in the systemd one is not the container.
			PID: 600, StartTime: 1000600, Comm: "my (weird) nam", Exe: "/opt/weird/bin/weird", Cmdline: "weird",
			Cgroup:      "/kubepods/besteffort/pod0b1c2d3e-0000-4000-8000-000000000600/crio-" + crioID,
			ContainerID: crioID,
			Env:         map[string]string{"OTEL_SERVICE_NAME": "weird\x01svc"},
		},
		{
			PID: 700, StartTime: 1000700, Comm: "nginx", Exe: "/usr/sbin/nginx", Cmdline: "nginx: worker process",
			Cgroup: "/system.slice/docker-" + nginxID + ".scope", ContainerID: nginxID,
		},
	} {
		got, err := r.read(want.PID)
		if err != nil {
			t.Errorf("read %d: %v", want.PID, err)
			continue
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("read %d (-want +got):\n%s", want.PID, d)
		}
	}
	if _, err := r.read(999); err == nil {
		t.Error("read of a missing process: no error")
	}
}

// TestReadProcessNoEnv checks that without variables to look for, the
// environment is not read at all.
func TestReadProcessNoEnv(t *testing.T) {
	p, err := procReader{root: testProcRoot}.read(100)
	if err != nil {
		t.Fatal(err)
	}
	if p.Env != nil {
		t.Errorf("Env = %v, want nil", p.Env)
	}
}

func TestParseStat(t *testing.T) {
	good := "42 (a) b) c) R 1 42 42 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 1 0 777 0 0"
	st, err := parseStat([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	if want := (procStat{Comm: "a) b) c", State: 'R', Flags: 4194304, StartTime: 777}); st != want {
		t.Errorf("parseStat(%q) = %+v, want %+v", good, st, want)
	}
	for _, bad := range []string{
		"",
		"42 no comm",
		"42 (x) R 1 2 3", // too few fields
		"42 (x) R 1 42 42 0 -1 notanumber 0 0 0 0 0 0 0 0 20 0 1 0 777",  // flags
		"42 (x) R 1 42 42 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 1 0 -777",    // start time
		"42 (x) Rx 1 42 42 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 1 0 777",    // state
		"42 )x( R 1 42 42 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 1 0 777 0 0", // parentheses the wrong way
	} {
		if st, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) = %+v, want an error", bad, st)
		}
	}
}

func TestParseCgroup(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	const id2 = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
	for _, c := range []struct {
		name, in, path, id string
	}{
		{"docker cgroupfs v1", "4:cpu,cpuacct:/docker/" + id + "\n1:name=systemd:/docker/" + id, "/docker/" + id, id},
		{"docker systemd v2", "0::/system.slice/docker-" + id + ".scope\n", "/system.slice/docker-" + id + ".scope", id},
		{"containerd systemd", "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podabc.slice/cri-containerd-" + id + ".scope", "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podabc.slice/cri-containerd-" + id + ".scope", id},
		{"kubepods cgroupfs", "0::/kubepods/burstable/pod1f2e-33/" + id, "/kubepods/burstable/pod1f2e-33/" + id, id},
		{"cri-o", "0::/kubepods.slice/kubepods-pod1.slice/crio-" + id + ".scope", "/kubepods.slice/kubepods-pod1.slice/crio-" + id + ".scope", id},
		{"cri-o conmon", "0::/kubepods.slice/kubepods-pod1.slice/crio-conmon-" + id + ".scope", "/kubepods.slice/kubepods-pod1.slice/crio-conmon-" + id + ".scope", ""},
		{"podman", "0::/machine.slice/libpod-" + id + ".scope/container", "/machine.slice/libpod-" + id + ".scope/container", id},
		{"podman conmon", "0::/machine.slice/libpod-conmon-" + id + ".scope", "/machine.slice/libpod-conmon-" + id + ".scope", ""},
		{"podman cgroupfs", "0::/libpod_parent/libpod-" + id, "/libpod_parent/libpod-" + id, id},
		{"docker in docker", "0::/docker/" + id + "/docker/" + id2, "/docker/" + id + "/docker/" + id2, id2},
		{"hybrid cgroupfs", "0::/system.slice/containerd.service\n5:memory:/docker/" + id, "/docker/" + id, id},
		{"host v2", "0::/user.slice/user-1000.slice/session-3.scope", "/user.slice/user-1000.slice/session-3.scope", ""},
		{"v1 order", "9:blkio:/a\n7:memory:/b\n3:name=systemd:/c\n", "/b", ""},
		{"namespace root", "0::/", "/", ""},
		{"short hex is no ID", "0::/docker/0123456789ab", "/docker/0123456789ab", ""},
		{"upper-case hex is no ID", "0::/docker/" + strings.ToUpper(id), "/docker/" + strings.ToUpper(id), ""},
		{"empty", "", "", ""},
		{"garbage", "nonsense\n::\n1:cpu:relative\n", "", ""},
	} {
		path, gotID := parseCgroup([]byte(c.in))
		if path != c.path || gotID != c.id {
			t.Errorf("%s: parseCgroup(%q) = %q, %q; want %q, %q", c.name, c.in, path, gotID, c.path, c.id)
		}
	}
}

func TestParseEnviron(t *testing.T) {
	names := []string{"A", "B", "C"}
	for _, c := range []struct {
		in   string
		want map[string]string
	}{
		{"", nil},
		{"X=1\x00Y=2\x00", nil},
		{"A=1\x00B=2\x00", map[string]string{"A": "1", "B": "2"}},
		{"A=1\x00A=2\x00", map[string]string{"A": "1"}},        // the first wins, as getenv reads it
		{"A=\x00", map[string]string{"A": ""}},                 // set but empty
		{"A=x=y\x00", map[string]string{"A": "x=y"}},           // values may hold '='
		{"AB=1\x00B\x00C=3", map[string]string{"C": "3"}},      // no NUL at the end; no '='
		{"\x00\x00B=2\x00\x00", map[string]string{"B": "2"}},   // empty entries
		{"B=\xff\xfe\x00", map[string]string{"B": "\xff\xfe"}}, // kept as is; labels sanitize
	} {
		got := parseEnviron([]byte(c.in), names)
		if d := cmp.Diff(c.want, got); d != "" {
			t.Errorf("parseEnviron(%q) (-want +got):\n%s", c.in, d)
		}
	}
}

// copyProc copies processes of the fake tree into a new root, which a test
// may then change.
func copyProc(t testing.TB, pids ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, pid := range pids {
		src := filepath.Join(testProcRoot, pid)
		dst := filepath.Join(root, pid)
		if err := os.MkdirAll(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		entries, err := os.ReadDir(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			from, to := filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())
			if e.Type()&os.ModeSymlink != 0 {
				target, err := os.Readlink(from)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(target, to); err != nil {
					t.Fatal(err)
				}
				continue
			}
			data, err := os.ReadFile(from)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(to, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

// reusePID makes pid of root a new process: another start time, comm and
// executable.
func reusePID(t *testing.T, root, pid, comm, exe string, start int) {
	t.Helper()
	dir := filepath.Join(root, pid)
	stat := pid + " (" + comm + ") S 1 " + pid + " " + pid + " 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 " + strconv.Itoa(start) + " 0 0\n"
	if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "exe"))
	if err := os.Symlink(exe, filepath.Join(dir, "exe")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "environ"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReadProcessReusedPID(t *testing.T) {
	root := copyProc(t, "400")
	r := procReader{root: root, env: DefaultServiceNameEnv}
	first, err := r.read(400)
	if err != nil {
		t.Fatal(err)
	}
	reusePID(t, root, "400", "bash", "/usr/bin/bash", 999999)
	st, err := r.stat(400)
	if err != nil {
		t.Fatal(err)
	}
	if st.StartTime == first.StartTime {
		t.Fatalf("start time %d unchanged after the PID was reused", st.StartTime)
	}
	second, err := r.read(400)
	if err != nil {
		t.Fatal(err)
	}
	if second.Comm != "bash" || second.Exe != "/usr/bin/bash" || second.StartTime != 999999 {
		t.Errorf("after reuse: %+v, want bash started at 999999", second)
	}
}

package runtime_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestPid1AndHostname(t *testing.T) {
	e := newEnv(t)
	e.spec.Hostname = "box-under-test"
	r := e.run("sh", "-c", "echo pid=$$; hostname")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if r.stdout != "pid=1\nbox-under-test\n" {
		t.Fatalf("got %q", r.stdout)
	}
}

func TestHostPathsInvisible(t *testing.T) {
	e := newEnv(t)
	marker := filepath.Join(t.TempDir(), "host-marker")
	os.WriteFile(marker, []byte("secret"), 0o644)
	r := e.run("sh", "-c", "cat "+marker+" ; ls /work; ls /; echo pids: $(ls -d /proc/[0-9]* | wc -l)")
	if strings.Contains(r.stdout, "secret") {
		t.Fatalf("host file visible: %q", r.stdout)
	}
	if !strings.Contains(r.stderr+r.stdout, "No such file") {
		t.Fatalf("expected missing host paths, got %q %q", r.stdout, r.stderr)
	}
	// Only the container's own processes: sh and its children.
	if !strings.Contains(r.stdout, "pids: ") {
		t.Fatal(r.stdout)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(strings.SplitAfter(r.stdout, "pids: ")[1]))
	if n == 0 || n > 4 {
		t.Fatalf("container sees %d processes", n)
	}
}

func TestExitCodePropagates(t *testing.T) {
	e := newEnv(t)
	if r := e.run("sh", "-c", "exit 7"); r.code != 7 {
		t.Fatalf("exit %d, want 7", r.code)
	}
	// A signal death is reported as 128+signal (an exec'd shell: pid 1 ignores TERM).
	id, _ := e.start("sleep", "100")
	if r := e.rt("exec", id, "sh", "-c", "kill -TERM $$"); r.code != 128+15 {
		t.Fatalf("exit %d, want 143", r.code)
	}
}

func TestMemoryLimitOOM(t *testing.T) {
	e := newEnv(t)
	limit := int64(16 << 20)
	e.spec.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit, Swap: &limit}}
	// dd with a 64 MiB block must allocate more than the limit.
	r := e.run("sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max; dd if=/dev/zero of=/dev/null bs=64M count=4")
	if !strings.HasPrefix(r.stdout, "16777216") {
		t.Fatalf("limit not visible inside: %q", r.stdout)
	}
	if r.code == 0 {
		t.Fatalf("dd survived a 16 MiB limit: %q %q", r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "OOM killer") {
		t.Fatalf("runtime did not report the OOM kill: %q", r.stderr)
	}
}

func TestOOMEvent(t *testing.T) {
	e := newEnv(t)
	limit := int64(16 << 20)
	e.spec.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit, Swap: &limit}}
	id, _ := e.start("sh", "-c", "dd if=/dev/zero of=/dev/null bs=64M count=1; sleep 100")
	deadline := time.Now().Add(10 * time.Second)
	for {
		out := e.must("events", "--stats", id)
		var ev struct {
			Type     string `json:"type"`
			OOMKills uint64 `json:"oom_kills"`
		}
		if err := json.Unmarshal([]byte(out), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.OOMKills >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no OOM kill reported: %s", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestPidsLimitStopsForkBomb(t *testing.T) {
	e := newEnv(t)
	limit := int64(16)
	e.spec.Linux.Resources = &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &limit}}
	id, _ := e.start("sleep", "100")
	// The bomb runs as an exec'd process: a shell that cannot fork gives up, and as pid 1 its
	// exit would end the container.
	e.rt("exec", id, "sh", "-c", "i=0; while [ $i -lt 60 ]; do sleep 100 & i=$((i+1)); done")
	var pids []int
	if err := json.Unmarshal([]byte(e.must("ps", "--format", "json", id)), &pids); err != nil {
		t.Fatal(err)
	}
	if len(pids) > 16 {
		t.Fatalf("%d processes under a pids limit of 16", len(pids))
	}
	if len(pids) < 10 {
		t.Fatalf("only %d processes: the loop did not fork", len(pids))
	}
}

func TestCPUQuotaHolds(t *testing.T) {
	e := newEnv(t)
	quota, period := int64(20000), uint64(100000) // 20% of one CPU
	e.spec.Linux.Resources = &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: &quota, Period: &period}}
	id, _ := e.start("sh", "-c", "while :; do :; done")
	usage := func() uint64 {
		var ev struct {
			Data struct {
				CPU struct {
					Usage struct {
						Total uint64 `json:"total_usage"`
					} `json:"cpu_usage"`
				} `json:"cpu_stats"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(e.must("events", "--stats", id)), &ev); err != nil {
			t.Fatal(err)
		}
		return ev.Data.CPU.Usage.Total
	}
	time.Sleep(200 * time.Millisecond)
	u0, t0 := usage(), time.Now()
	time.Sleep(2 * time.Second)
	u1, t1 := usage(), time.Now()
	share := float64(u1-u0) / float64(t1.Sub(t0).Nanoseconds())
	t.Logf("cpu share under a 20%% quota: %.3f", share)
	if share > 0.26 || share < 0.10 {
		t.Fatalf("cpu share %.3f, want about 0.20", share)
	}
}

func TestCapabilitiesEqualConfig(t *testing.T) {
	e := newEnv(t)
	caps := []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	e.spec.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	r := e.run("grep", "Cap", "/proc/self/status")
	// CHOWN=0, KILL=5, NET_BIND_SERVICE=10
	want := fmt.Sprintf("%016x", 1<<0|1<<5|1<<10)
	for _, set := range []string{"CapPrm", "CapEff", "CapBnd"} {
		if !strings.Contains(r.stdout, set+":\t"+want) {
			t.Fatalf("%s != %s:\n%s", set, want, r.stdout)
		}
	}
	if !strings.Contains(r.stdout, "CapInh:\t0000000000000000") || !strings.Contains(r.stdout, "CapAmb:\t0000000000000000") {
		t.Fatalf("inheritable/ambient not empty:\n%s", r.stdout)
	}
}

func TestSeccompErrno(t *testing.T) {
	e := newEnv(t)
	errno := uint(13) // EACCES
	e.spec.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: &errno},
		},
	}
	r := e.run("sh", "-c", "mkdir /tmp/x; echo rc=$?; touch /tmp/y && echo touched")
	if !strings.Contains(r.stderr, "Permission denied") || !strings.Contains(r.stdout, "rc=1") {
		t.Fatalf("mkdir not refused with EACCES: %q %q", r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "touched") {
		t.Fatalf("other syscalls blocked: %q", r.stdout)
	}
}

func TestUserNamespaceMapping(t *testing.T) {
	e := newEnv(t)
	e.spec.Linux.Namespaces = append(e.spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	e.spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	e.spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	id, pid := e.start("sh", "-c", "id -u > /tmp/uid; cat /proc/self/uid_map > /tmp/map; sleep 100")
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	var uidLine string
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "Uid:") {
			uidLine = l
		}
	}
	if f := strings.Fields(uidLine); len(f) < 2 || f[1] != "100000" {
		t.Fatalf("host sees uid %q, want 100000", uidLine)
	}
	time.Sleep(100 * time.Millisecond)
	out := e.must("exec", id, "sh", "-c", "id -u; cat /proc/self/uid_map")
	f := strings.Fields(out)
	if len(f) != 4 || f[0] != "0" || f[1] != "0" || f[2] != "100000" || f[3] != "65536" {
		t.Fatalf("inside: %q", out)
	}
}

func TestReadonlyRootfs(t *testing.T) {
	e := newEnv(t)
	e.spec.Root.Readonly = true
	r := e.run("sh", "-c", "touch /newfile")
	if r.code == 0 || !strings.Contains(r.stderr, "Read-only file system") {
		t.Fatalf("write to read-only root: exit %d %q", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(e.bundle, "rootfs", "newfile")); err == nil {
		t.Fatal("file created in the rootfs")
	}
}

func TestMaskedPaths(t *testing.T) {
	e := newEnv(t)
	r := e.run("sh", "-c", "wc -c < /proc/timer_list; wc -c < /proc/keys; ls -A /sys/firmware | wc -l")
	if r.stdout != "0\n0\n0\n" {
		t.Fatalf("masked paths not empty: %q %q", r.stdout, r.stderr)
	}
}

func TestExecJoinsContainer(t *testing.T) {
	e := newEnv(t)
	id, pid := e.start("sleep", "100")
	pidFile := filepath.Join(t.TempDir(), "exec.pid")
	e.must("exec", "--detach", "--pid-file", pidFile, id, "sleep", "100")
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	epid, _ := strconv.Atoi(string(data))
	for _, ns := range []string{"pid", "mnt", "net", "ipc", "uts", "cgroup"} {
		a, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
		b, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", epid, ns))
		if a == "" || a != b {
			t.Errorf("namespace %s: init %q, exec %q", ns, a, b)
		}
	}
	a, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", epid))
	if string(a) != string(b) {
		t.Errorf("cgroups differ:\ninit: %s\nexec: %s", a, b)
	}
	out := e.must("exec", id, "sh", "-c", "echo $$; hostname")
	if f := strings.Fields(out); len(f) != 2 || f[0] == "1" {
		t.Fatalf("exec output %q", out)
	}
	// foreground exec returns the process's exit code
	if r := e.rt("exec", id, "sh", "-c", "exit 5"); r.code != 5 {
		t.Fatalf("exec exit %d, want 5", r.code)
	}
	var pids []int
	json.Unmarshal([]byte(e.must("ps", "--format", "json", id)), &pids)
	if len(pids) != 2 {
		t.Fatalf("ps shows %v, want init and the detached exec", pids)
	}
}

func TestPauseResume(t *testing.T) {
	e := newEnv(t)
	id, pid := e.start("sh", "-c", "while :; do :; done")
	e.must("pause", id)
	if s := e.state(id).Status; s != "paused" {
		t.Fatalf("status %q after pause", s)
	}
	st := procState(pid)
	if st != "D" && st != "T" {
		// a frozen task shows as D (v1 freezer) or T/S depending on the kernel
		data, _ := os.ReadFile(filepath.Join("/sys/fs/cgroup/freezer/berth", id, "freezer.state"))
		if !strings.Contains(string(data), "FROZEN") {
			t.Fatalf("process state %q and freezer %q", st, data)
		}
	}
	e.must("resume", id)
	if s := e.state(id).Status; s != "running" {
		t.Fatalf("status %q after resume", s)
	}
	time.Sleep(50 * time.Millisecond)
	if st := procState(pid); st != "R" && st != "S" {
		t.Fatalf("process state %q after resume", st)
	}
}

func procState(pid int) string {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return ""
	}
	return s[i+2 : i+3]
}

func TestKillDeleteLeavesNothing(t *testing.T) {
	e := newEnv(t)
	e.writeSpec()
	e.spec.Process.Args = []string{"sh", "-c", "sleep 100 & sleep 100"}
	e.writeSpec()
	id := e.id()
	e.must("create", "--bundle", e.bundle, id)
	if s := e.state(id); s.Status != "created" || s.Pid == 0 {
		t.Fatalf("after create: %+v", s)
	}
	e.must("start", id)
	pid := e.state(id).Pid
	if r := e.rt("delete", id); r.code == 0 || !strings.Contains(r.stderr, "running") {
		t.Fatalf("delete of a running container: exit %d %q", r.code, r.stderr)
	}
	var pids []int
	json.Unmarshal([]byte(e.must("ps", "--format", "json", id)), &pids)
	e.must("kill", id, "KILL")
	deadline := time.Now().Add(5 * time.Second)
	for e.state(id).Status != "stopped" {
		if time.Now().After(deadline) {
			t.Fatal("container did not stop after SIGKILL")
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.must("delete", id)
	for _, p := range append(pids, pid) {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", p)); err == nil && procState(p) != "Z" {
			t.Errorf("process %d survived delete", p)
		}
	}
	for _, c := range []string{"memory", "pids", "cpu", "freezer", "devices"} {
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", c, "berth", id)); err == nil {
			t.Errorf("cgroup %s left behind", c)
		}
	}
	if _, err := os.Stat(filepath.Join(e.root, id)); err == nil {
		t.Error("state dir left behind")
	}
	if r := e.rt("state", id); r.code == 0 {
		t.Error("state of a deleted container succeeded")
	}
}

func TestDeleteForceAndKillAll(t *testing.T) {
	e := newEnv(t)
	id, _ := e.start("sh", "-c", "sleep 100 & sleep 100 & wait")
	e.must("kill", "--all", id, "TERM")
	deadline := time.Now().Add(5 * time.Second)
	for e.state(id).Status != "stopped" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	id2, _ := e.start("sleep", "100")
	e.must("delete", "--force", id2)
	if r := e.rt("state", id2); r.code == 0 {
		t.Fatal("force-deleted container still has state")
	}
}

func TestUpdateMemory(t *testing.T) {
	e := newEnv(t)
	limit := int64(64 << 20)
	e.spec.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}
	id, _ := e.start("sleep", "100")
	e.must("update", "--memory", "32m", id)
	out := e.must("exec", id, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
	if strings.TrimSpace(out) != strconv.Itoa(32<<20) {
		t.Fatalf("limit after update: %q", out)
	}
}

func TestHooksRun(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	hook := func(name string) specs.Hook {
		return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > " + filepath.Join(dir, name)}}
	}
	e.spec.Hooks = &specs.Hooks{
		CreateRuntime: []specs.Hook{hook("createRuntime")},
		Poststart:     []specs.Hook{hook("poststart")},
		Poststop:      []specs.Hook{hook("poststop")},
	}
	r := e.run("true")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, name := range []string{"createRuntime", "poststart", "poststop"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("hook %s did not run", name)
			continue
		}
		var st specs.State
		if err := json.Unmarshal(data, &st); err != nil || st.ID == "" || st.Bundle != e.bundle {
			t.Errorf("hook %s got state %q", name, data)
		}
	}
}

func TestListAndStateJSON(t *testing.T) {
	e := newEnv(t)
	id, pid := e.start("sleep", "100")
	var list []stateOut
	if err := json.Unmarshal([]byte(e.must("list", "--format", "json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != id || list[0].Pid != pid || list[0].Status != "running" {
		t.Fatalf("list: %+v", list)
	}
	if out := e.must("list"); !strings.Contains(out, id) || !strings.Contains(out, "running") {
		t.Fatalf("list table: %q", out)
	}
}

func TestTimeNamespaceOffsets(t *testing.T) {
	e := newEnv(t)
	e.spec.Linux.Namespaces = append(e.spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
	e.spec.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Secs: 86400 * 365}}
	r := e.run("cat", "/proc/uptime")
	var up float64
	if _, err := fmt.Sscanf(r.stdout, "%f", &up); err != nil {
		t.Fatalf("%q %q", r.stdout, r.stderr)
	}
	if up < 86400*365 {
		t.Fatalf("uptime %.0f s inside: the boottime offset was not applied", up)
	}
}

// berth itself answers as berth-runtime when invoked through a symlink of that name.
func TestBerthAsRuntimeThroughSymlink(t *testing.T) {
	e := newEnv(t)
	link := filepath.Join(t.TempDir(), "berth-runtime")
	if err := os.Symlink(berthBin, link); err != nil {
		t.Fatal(err)
	}
	saved := runtimeCmd
	runtimeCmd = []string{link}
	defer func() { runtimeCmd = saved }()
	if r := e.run("sh", "-c", "echo $$"); r.code != 0 || r.stdout != "1\n" {
		t.Fatalf("exit %d: %q %q", r.code, r.stdout, r.stderr)
	}
}

// A foreground run forwards the signals it gets to the container: a common one at once, and
// any other (here signal 37, SIGRTMIN+3, systemd's halt) later on (runtime/nsenter/signals.c).
func TestRunForwardsSignals(t *testing.T) {
	for _, c := range []struct {
		name  string
		sig   syscall.Signal
		after time.Duration
		code  int
	}{{"TERM at once", syscall.SIGTERM, 0, 7}, {"37 later", syscall.Signal(37), 500 * time.Millisecond, 9}} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			e.spec.Process.Args = []string{"sh", "-c", `trap "exit 7" TERM; trap "exit 9" 37; echo ready; while :; do sleep 0.02; done`}
			e.writeSpec()
			out := filepath.Join(t.TempDir(), "out")
			f, err := os.Create(out)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			argv := append(append(append([]string(nil), runtimeCmd...), "--root", e.root), "run", "--bundle", e.bundle, e.id())
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Stdout, cmd.Stderr = f, f
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(20 * time.Second)
			for {
				if b, _ := os.ReadFile(out); strings.Contains(string(b), "ready") {
					break
				}
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					cmd.Wait()
					t.Fatal("the container never said ready")
				}
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(c.after)
			cmd.Process.Signal(c.sig)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				cmd.Process.Kill()
				<-done
				t.Fatal("the runtime did not exit after the signal")
			}
			if got := cmd.ProcessState.ExitCode(); got != c.code {
				b, _ := os.ReadFile(out)
				t.Fatalf("exit %d, want %d (the container's trap): %s", got, c.code, b)
			}
		})
	}
}

// A signal that reaches the runtime while it is still creating the container is held and
// passed on once the program runs. A createRuntime hook (run by the runtime during create,
// before the program exists) sends SIGUSR1 to the runtime; the program, outside a pid
// namespace so that USR1's default action applies, dies of it: exit 138. Were the signal
// lost, it would sleep and exit 0; had it acted on the runtime, the runtime would be killed.
func TestRunHoldsEarlySignals(t *testing.T) {
	e := newEnv(t)
	var ns []specs.LinuxNamespace
	for _, n := range e.spec.Linux.Namespaces {
		if n.Type != specs.PIDNamespace {
			ns = append(ns, n)
		}
	}
	e.spec.Linux.Namespaces = ns
	e.spec.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "kill -USR1 $PPID"}}}}
	e.spec.Process.Args = []string{"sleep", "5"}
	e.writeSpec()
	argv := append(append(append([]string(nil), runtimeCmd...), "--root", e.root), "run", "--bundle", e.bundle, e.id())
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 128+int(syscall.SIGUSR1) {
		t.Fatalf("run: %v (want exit %d, the program killed by the held SIGUSR1): %s", err, 128+int(syscall.SIGUSR1), out)
	}
}

package cgroups

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var testSeq atomic.Int64

// newTestManager returns a manager for a fresh, uniquely named cgroup that is
// torn down (processes killed, directories removed) when the test ends, so
// that repeated runs never trip over leftovers.
func newTestManager(t *testing.T) *Manager {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	path := fmt.Sprintf("/berth-test-%d-%d", os.Getpid(), testSeq.Add(1))
	m, err := New(path, "unused", false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for range 100 {
			pids, _ := m.Pids()
			if len(pids) == 0 {
				break
			}
			for _, p := range pids {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
			_ = m.Thaw() // frozen tasks cannot die
			time.Sleep(20 * time.Millisecond)
		}
		paths := m.Paths()
		if err := m.Destroy(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		for ctrl, dir := range paths {
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("cleanup: %s dir %s left behind", ctrl, dir)
			}
		}
	})
	return m
}

// startInCgroup starts `sh -c script` already inside m: the shell blocks on
// reading stdin until Apply has moved it, so nothing in script ever runs
// outside the cgroup.
func startInCgroup(t *testing.T, m *Manager, script string) (*exec.Cmd, *strings.Builder) {
	t.Helper()
	cmd := exec.Command("sh", "-c", "read _; "+script)
	var out strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = &out
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := m.Apply(cmd.Process.Pid); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal(err)
	}
	if _, err := stdin.Write([]byte("\n")); err != nil {
		t.Fatal(err)
	}
	_ = stdin.Close()
	return cmd, &out
}

// readCtl reads a control file of controller ctrl (v1 name; "" on v2).
func readCtl(t *testing.T, m *Manager, ctrl, file string) string {
	t.Helper()
	if m.Mode() == Unified {
		ctrl = ""
	}
	dir, ok := m.Paths()[ctrl]
	if !ok {
		t.Fatalf("no path for controller %q in %v", ctrl, m.Paths())
	}
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestDetectModeHybrid(t *testing.T) {
	// This suite's host is hybrid; elsewhere just report what was found.
	var st syscall.Statfs_t
	if err := syscall.Statfs("/sys/fs/cgroup/unified", &st); err != nil || st.Type != 0x63677270 {
		t.Skipf("host is not hybrid; DetectMode() = %v", DetectMode())
	}
	if got := DetectMode(); got != Hybrid {
		t.Fatalf("DetectMode() = %v, want hybrid", got)
	}
}

func TestCreateLimits(t *testing.T) {
	m := newTestManager(t)
	if m.Exists() {
		t.Fatal("Exists before Create")
	}
	err := m.Create(&specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: ptr[int64](64 << 20)},
		Pids:   &specs.LinuxPids{Limit: ptr[int64](20)},
		CPU: &specs.LinuxCPU{
			Quota:  ptr[int64](50000),
			Period: ptr[uint64](100000),
			Shares: ptr[uint64](512),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !m.Exists() {
		t.Fatal("!Exists after Create")
	}
	check := func(ctrl, file, want string) {
		t.Helper()
		if got := readCtl(t, m, ctrl, file); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	if m.Mode() == Unified {
		check("", "memory.max", "67108864")
		check("", "pids.max", "20")
		check("", "cpu.max", "50000 100000")
		check("", "cpu.weight", "59") // 512 shares, library formula
	} else {
		check("memory", "memory.limit_in_bytes", "67108864")
		check("pids", "pids.max", "20")
		check("cpu", "cpu.cfs_quota_us", "50000")
		check("cpu", "cpu.cfs_period_us", "100000")
		check("cpu", "cpu.shares", "512")
	}
	if m.Mode() == Hybrid {
		if dir := m.Paths()[""]; !strings.HasPrefix(dir, "/sys/fs/cgroup/unified/") {
			t.Errorf("hybrid: unified path = %q", dir)
		}
	}

	// Another process (another CLI invocation) must see the same cgroup.
	again, err := New(m.Path(), "unused", false)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Exists() || !equalMaps(again.Paths(), m.Paths()) {
		t.Fatalf("re-created manager differs: %v vs %v", again.Paths(), m.Paths())
	}

	if fd, ok, err := m.CloneIntoFD(); err != nil {
		t.Fatal(err)
	} else if ok {
		if m.Mode() != Unified {
			t.Fatal("CloneIntoFD ok on non-unified host")
		}
		syscall.Close(fd)
	} else if m.Mode() == Unified {
		t.Fatal("CloneIntoFD not ok on unified host")
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestApplyFreezeThaw(t *testing.T) {
	m := newTestManager(t)
	if err := m.Apply(os.Getpid()); !errors.Is(err, ErrNotExist) {
		t.Fatalf("Apply before Create: err = %v, want ErrNotExist", err)
	}
	if err := m.Create(nil); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	pid := cmd.Process.Pid
	if err := m.Apply(pid); err != nil {
		t.Fatal(err)
	}
	pids, err := m.Pids()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(pids, pid) {
		t.Fatalf("Pids() = %v, missing %d", pids, pid)
	}
	// Every controller must hold the process, not just the one Pids reads.
	for ctrl, dir := range m.Paths() {
		b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(strings.Fields(string(b)), fmt.Sprint(pid)) {
			t.Errorf("pid %d not in %s (%s)", pid, ctrl, dir)
		}
	}

	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if paused, err := m.Paused(); err != nil || !paused {
		t.Fatalf("Paused() = %v, %v after Freeze", paused, err)
	}
	if m.Mode() == Unified {
		if got := readCtl(t, m, "", "cgroup.freeze"); got != "1" {
			t.Errorf("cgroup.freeze = %q", got)
		}
	} else if got := readCtl(t, m, "freezer", "freezer.state"); got != "FROZEN" {
		t.Errorf("freezer.state = %q", got)
	}
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for line := range strings.Lines(string(status)) {
		if strings.HasPrefix(line, "State:") {
			t.Logf("frozen task %s", strings.TrimSpace(line))
		}
	}

	if err := m.Destroy(); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("Destroy with live process: err = %v, want ErrNotEmpty", err)
	}

	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	if paused, err := m.Paused(); err != nil || paused {
		t.Fatalf("Paused() = %v, %v after Thaw", paused, err)
	}
	if _, err := m.Stats(); err != nil {
		t.Fatalf("Stats: %v", err)
	}
}

func TestSetLive(t *testing.T) {
	m := newTestManager(t)
	if err := m.Set(&specs.LinuxResources{}); !errors.Is(err, ErrNotExist) {
		t.Fatalf("Set before Create: err = %v, want ErrNotExist", err)
	}
	if err := m.Create(&specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: ptr[int64](64 << 20)},
		Pids:   &specs.LinuxPids{Limit: ptr[int64](20)},
	}); err != nil {
		t.Fatal(err)
	}
	cmd, _ := startInCgroup(t, m, "exec sleep 30")
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	// A second create must not adopt a cgroup that is in use.
	if err := m.Create(nil); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("Create over a live cgroup: err = %v, want ErrNotEmpty", err)
	}

	if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](32 << 20)}}); err != nil {
		t.Fatal(err)
	}
	memFile, memCtl := "memory.limit_in_bytes", "memory"
	if m.Mode() == Unified {
		memFile = "memory.max"
	}
	if got := readCtl(t, m, memCtl, memFile); got != "33554432" {
		t.Errorf("%s = %q after Set", memFile, got)
	}
	// Fields absent from the update keep their values.
	if got := readCtl(t, m, "pids", "pids.max"); got != "20" {
		t.Errorf("pids.max = %q after unrelated Set", got)
	}
}

func TestMemoryLimitOOM(t *testing.T) {
	m := newTestManager(t)
	limit := int64(16 << 20)
	err := m.Create(&specs.LinuxResources{Memory: &specs.LinuxMemory{
		Limit: &limit,
		Swap:  &limit, // memory+swap: no swap to escape into
	}})
	if err != nil {
		t.Fatal(err)
	}
	// dd faults in its whole 64 MiB buffer while reading /dev/zero into it.
	cmd, out := startInCgroup(t, m, "exec dd if=/dev/zero of=/dev/null bs=64M count=1")
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("memory hog survived a 16 MiB limit: err=%v out=%s", err, out)
	}
	if ws := ee.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("hog ended with %v, want SIGKILL; out=%s", ws, out)
	}
	n, err := m.OOMKillCount()
	if err != nil {
		t.Fatal(err)
	}
	if n < 1 {
		t.Fatalf("OOMKillCount() = %d, want >= 1", n)
	}
}

func TestDevices(t *testing.T) {
	m := newTestManager(t)
	err := m.Create(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](3), Access: "rwm"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if m.Mode() != Unified {
		if got := readCtl(t, m, "devices", "devices.list"); got != "c 1:3 rwm" {
			t.Errorf("devices.list = %q", got)
		}
	}
	cmd, out := startInCgroup(t, m,
		`echo x >/dev/null && echo null-ok; head -c1 /dev/zero >/dev/null 2>&1 && echo zero-ok || echo zero-denied`)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if got := strings.Fields(out.String()); !slices.Equal(got, []string{"null-ok", "zero-denied"}) {
		t.Fatalf("device access inside cgroup: %q, want null-ok zero-denied", out)
	}

	// An update that names no devices must leave the rules in place.
	if err := m.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](50)}}); err != nil {
		t.Fatal(err)
	}
	if m.Mode() != Unified {
		if got := readCtl(t, m, "devices", "devices.list"); got != "c 1:3 rwm" {
			t.Errorf("devices.list after unrelated Set = %q", got)
		}
	}
}

func TestDestroy(t *testing.T) {
	m := newTestManager(t)
	if err := m.Destroy(); err != nil {
		t.Fatalf("Destroy of a missing cgroup: %v", err)
	}
	if err := m.Create(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](10)}}); err != nil {
		t.Fatal(err)
	}
	// A child cgroup, as a container with a writable cgroupfs might make.
	paths := m.Paths()
	for _, dir := range paths {
		if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd, _ := startInCgroup(t, m, "exit 0")
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	if m.Exists() {
		t.Fatal("Exists() after Destroy")
	}
	for ctrl, dir := range paths {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s: %s still there (%v)", ctrl, dir, err)
		}
	}
	if err := m.Destroy(); err != nil {
		t.Fatalf("second Destroy: %v", err)
	}
}

// leftovers lists test cgroups of this process still present anywhere.
func leftovers() []string {
	var found []string
	prefix := fmt.Sprintf("berth-test-%d-", os.Getpid())
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	roots = append(roots, "/sys/fs/cgroup")
	for _, r := range roots {
		ents, _ := os.ReadDir(r)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), prefix) {
				found = append(found, filepath.Join(r, e.Name()))
			}
		}
	}
	return found
}

func TestMain(m *testing.M) {
	code := m.Run()
	if left := leftovers(); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "leaked cgroups: %v\n", left)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

package runtime_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// newV2Env runs berth as on a pure cgroup v2 host: each invocation gets a private mount
// namespace whose /sys/fs/cgroup is the unified hierarchy (on this hybrid machine the v1
// controllers stay bound elsewhere, so v2 limits cannot be tested here, but everything the
// runtime does with the hierarchy itself can: clone3 into the cgroup, cgroup namespace and
// mount, freezer, eBPF device filter, removal).
func newV2Env(t *testing.T) *env {
	var st syscall.Statfs_t
	if err := syscall.Statfs("/sys/fs/cgroup/unified", &st); err != nil || st.Type != 0x63677270 {
		if syscall.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == 0x63677270 {
			return newEnv(t) // a real v2 host: run as is
		}
		t.Skip("no cgroup2 hierarchy on this host")
	}
	e := newEnv(t)
	e.wrap = []string{"unshare", "-m", "--propagation", "private", "sh", "-c",
		"umount -l /sys/fs/cgroup && mount -t cgroup2 none /sys/fs/cgroup && exec \"$@\"", "sh"}
	return e
}

func TestCgroupV2Lifecycle(t *testing.T) {
	e := newV2Env(t)
	e.spec.Linux.Resources = nil // no v2 controllers are available here
	e.spec.Process.Args = []string{"sleep", "100"}
	e.writeSpec()
	id := e.id()
	e.must("create", "--bundle", e.bundle, id)
	t.Cleanup(func() { e.rt("delete", "--force", id) })
	pid := e.state(id).Pid
	// Born in its cgroup: the host sees the init in /berth/<id> before start.
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if !strings.Contains(string(data), "0::/berth/"+id+"\n") {
		t.Fatalf("init's cgroups after create:\n%s", data)
	}
	e.must("start", id)
	e.must("pause", id)
	if s := e.state(id).Status; s != "paused" {
		t.Fatalf("status %q after pause", s)
	}
	freeze, _ := os.ReadFile(filepath.Join("/sys/fs/cgroup/unified/berth", id, "cgroup.freeze"))
	if strings.TrimSpace(string(freeze)) != "1" {
		t.Fatalf("cgroup.freeze = %q", freeze)
	}
	e.must("resume", id)
	got := e.must("exec", id, "cat", "/proc/self/cgroup")
	if !strings.Contains(got, "0::/\n") {
		t.Fatalf("exec is not in the container's cgroup namespace root: %q", got)
	}
	e.must("delete", "--force", id)
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup/unified/berth", id)); err == nil {
		t.Fatal("cgroup left behind")
	}
}

func TestCgroupV2Output(t *testing.T) {
	e := newV2Env(t)
	e.spec.Linux.Resources = nil
	var st syscall.Stat_t
	syscall.Stat("/", &st)
	major, minor := (st.Dev>>8)&0xfff, (st.Dev&0xff)|((st.Dev>>12)&0xfff00)
	r := e.run("sh", "-c", fmt.Sprintf(
		"grep '^0::' /proc/self/cgroup; stat -f -c %%t /sys/fs/cgroup; "+
			"mknod /tmp/hd b %d %d; if head -c1 /tmp/hd >/dev/null 2>&1; then echo device-allowed; else echo device-denied; fi; "+
			"head -c1 /dev/zero | wc -c", major, minor))
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	want := []string{"0::/\n", "63677270\n", "device-denied\n", "1\n"}
	for _, w := range want {
		if !strings.Contains(r.stdout, w) {
			t.Fatalf("output %q lacks %q", r.stdout, w)
		}
	}
}

package cgroups

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/manager"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// v1Paths must name the directories the library itself would use: other runtimes and older
// berth builds find a container's cgroup that way.
func TestV1PathsMatchLibrary(t *testing.T) {
	if DetectMode() == Unified {
		t.Skip("host is cgroup v2 only")
	}
	for _, p := range []string{"/berth/abc", "/a/b/c", "/system.slice/berth-x.scope", "/with space/x"} {
		lm, err := manager.New(&cgroups.Cgroup{Path: p, Resources: &cgroups.Resources{}})
		if err != nil {
			t.Fatal(err)
		}
		want := lm.GetPaths()
		got, err := v1Paths(p)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(got, want) {
			t.Errorf("%s:\n got %v\nwant %v", p, got, want)
		}
	}
}

func TestParseV1Mounts(t *testing.T) {
	mi := `21 26 0:20 / /proc rw,relatime - proc proc rw
30 22 0:27 / /cg rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /cg/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
32 30 0:29 / /cg/my\040devices rw,relatime - cgroup cgroup rw,devices
33 30 0:30 / /cg/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
34 30 0:31 / /cg/unified rw,relatime - cgroup2 cgroup2 rw
`
	l, err := parseV1Layout(strings.NewReader(mi))
	if err != nil {
		t.Fatal(err)
	}
	if l.root != "/cg" || len(l.mounts) != 3 {
		t.Fatalf("root %q, %d mounts, want /cg and 3", l.root, len(l.mounts))
	}
	if m := l.mount("devices"); m == nil || m.Mountpoint != "/cg/my devices" {
		t.Errorf("devices mount = %+v", m)
	}
	if m := l.mount("name=systemd"); m == nil || m.Mountpoint != "/cg/systemd" {
		t.Errorf("name=systemd mount = %+v", m)
	}
	if m := l.mount("cpuacct"); m == nil || m.Mountpoint != "/cg/cpu,cpuacct" {
		t.Errorf("cpuacct mount = %+v", m)
	}
	if _, err := parseV1Layout(strings.NewReader("34 30 0:31 / /cg/unified rw - cgroup2 cgroup2 rw\n")); err == nil {
		t.Error("no v1 mount: want an error")
	}
}

// A new cgroup gets its device rules written in order; an existing one goes through the
// library's emulator. Both must end in the same rules, allow lists and deny lists alike.
func TestDevicesFreshEqualsLibrary(t *testing.T) {
	if DetectMode() == Unified {
		t.Skip("v1 device files only")
	}
	major, minor, any := int64(1), int64(3), int64(-1)
	lists := [][]specs.LinuxDeviceCgroup{
		{
			{Allow: false, Access: "rwm"},
			{Allow: true, Type: "c", Major: &major, Minor: &minor, Access: "rwm"},
			{Allow: true, Type: "c", Major: &any, Minor: &any, Access: "m"},
			{Allow: true, Type: "c", Major: ptr[int64](136), Access: "rw"},
		},
		{ // a deny list (docker --privileged style, then one device taken away)
			{Allow: true, Access: "rwm"},
			{Allow: false, Type: "c", Major: &major, Minor: &minor, Access: "w"},
		},
		{ // a rule before the first wildcard: the library starts from "deny all"
			{Allow: true, Type: "b", Major: ptr[int64](7), Minor: ptr[int64](0), Access: "r"},
			{Allow: true, Type: "c", Major: &major, Minor: &minor, Access: "rw"},
		},
	}
	for i, rules := range lists {
		fresh := newTestManager(t)
		if err := fresh.Create(&specs.LinuxResources{Devices: rules}); err != nil {
			t.Fatalf("list %d, fresh: %v", i, err)
		}
		existing := newTestManager(t)
		for _, dir := range existing.Paths() {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := existing.Create(&specs.LinuxResources{Devices: rules}); err != nil {
			t.Fatalf("list %d, existing: %v", i, err)
		}
		// The kernel lists rules in the order they were added; the set is what counts.
		got, want := sortedLines(readCtl(t, fresh, "devices", "devices.list")), sortedLines(readCtl(t, existing, "devices", "devices.list"))
		if got != want {
			t.Errorf("list %d: fresh cgroup has\n%s\nthe library's has\n%s", i, got, want)
		}
		if i == 0 && !strings.Contains(got, "c 1:3 rwm") {
			t.Errorf("list 0: rules not applied: %q", got)
		}
	}
}

// The directories a failed create made are gone again.
func TestCreateV1FailureLeavesNothing(t *testing.T) {
	if DetectMode() == Unified {
		t.Skip("v1 only")
	}
	m := newTestManager(t)
	// A major number the kernel refuses is only found out on the write.
	err := m.Create(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](3), Access: "rwm"},
	}, Memory: &specs.LinuxMemory{Limit: ptr[int64](-5)}})
	if err == nil {
		t.Skip("kernel took a memory limit of -5")
	}
	for ctrl, dir := range m.Paths() {
		if _, serr := os.Stat(dir); !os.IsNotExist(serr) {
			t.Errorf("%s: %s left after failed create (%v)", ctrl, filepath.Base(dir), err)
		}
	}
}

func sortedLines(s string) string {
	l := strings.Split(s, "\n")
	slices.Sort(l)
	return strings.Join(l, "\n")
}

// A cgroup under parents that do not exist yet: every new cpuset level gets its parent's cpus
// and mems (or the spec's, for the container's own), and a task can join it.
func TestCreateV1NestedCpuset(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if DetectMode() == Unified {
		t.Skip("v1 only")
	}
	top := fmt.Sprintf("/berth-test-%d-%d", os.Getpid(), testSeq.Add(1))
	m, err := New(top+"/mid/leaf", "unused", false)
	if err != nil {
		t.Fatal(err)
	}
	paths := m.Paths()
	t.Cleanup(func() {
		_ = m.Destroy()
		for _, dir := range paths {
			_ = os.Remove(filepath.Dir(dir))
			_ = os.Remove(filepath.Dir(filepath.Dir(dir)))
		}
	})
	if err := m.Create(&specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "0"}}); err != nil {
		t.Fatal(err)
	}
	root, err := os.ReadFile(filepath.Join(filepath.Dir(filepath.Dir(filepath.Dir(paths["cpuset"]))), "cpuset.mems"))
	if err != nil {
		t.Fatal(err)
	}
	for dir, want := range map[string]string{
		filepath.Dir(paths["cpuset"]) + "/cpuset.mems": strings.TrimSpace(string(root)),
		paths["cpuset"] + "/cpuset.cpus":               "0",
		paths["cpuset"] + "/cpuset.mems":               strings.TrimSpace(string(root)),
	} {
		b, err := os.ReadFile(dir)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(b)); got != want {
			t.Errorf("%s = %q, want %q", dir, got, want)
		}
	}
	cmd, out := startInCgroup(t, m, "cat /proc/self/cgroup")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !strings.Contains(out.String(), "cpuset:"+top+"/mid/leaf") {
		t.Errorf("process not in the cpuset cgroup:\n%s", out)
	}
}

// A removal that stops half-way (here a sub-cgroup in one hierarchy) leaves the devices
// directory, where Exists and Pids look, so the cgroup is still found and Destroy's general
// path finishes the job.
func TestRemoveV1KeepsDevicesUntilLast(t *testing.T) {
	if DetectMode() == Unified {
		t.Skip("v1 only")
	}
	m := newTestManager(t)
	if err := m.Create(nil); err != nil {
		t.Fatal(err)
	}
	paths := m.Paths()
	if err := os.Mkdir(filepath.Join(paths["memory"], "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for range 20 { // map order varies between calls
		if err := removeV1(paths); err == nil {
			t.Fatal("removeV1 removed a cgroup with a sub-cgroup")
		}
		if !m.Exists() {
			t.Fatal("devices directory removed before the others")
		}
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	for ctrl, dir := range paths {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s: %s left after Destroy", ctrl, dir)
		}
	}
}

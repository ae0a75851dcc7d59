package cgroups

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fs2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// This host is cgroup v1, yet most users run pure v2. Drive the library's v2
// manager against a fake cgroupfs (the library's TestMode lets it create the
// files) to check that what FromSpec produces turns into the right v2 files:
// cpu.weight from shares, cpu.max from quota/period, memory.swap.max from the
// v1-style memory+swap value, and the unified map passed through.
func TestV2FilesFromSpec(t *testing.T) {
	cgroups.TestMode = true
	t.Cleanup(func() { cgroups.TestMode = false })

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cgroup.controllers"), []byte("cpu io memory pids hugetlb\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := FromSpec(&specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: ptr[int64](64 << 20), Swap: ptr[int64](96 << 20), Reservation: ptr[int64](32 << 20)},
		Pids:   &specs.LinuxPids{Limit: ptr[int64](20)},
		CPU:    &specs.LinuxCPU{Shares: ptr[uint64](512), Quota: ptr[int64](50000), Period: ptr[uint64](100000)},
		BlockIO: &specs.LinuxBlockIO{
			Weight: ptr[uint16](500),
		},
		Unified: map[string]string{"memory.high": "50331648"},
	})
	if err != nil {
		t.Fatal(err)
	}
	m, err := fs2.NewManager(&cgroups.Cgroup{Path: "/fake", Resources: &cgroups.Resources{}}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Set(res); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{
		"memory.max":      "67108864",
		"memory.swap.max": "33554432", // v2 counts swap alone: 96 MiB - 64 MiB
		"memory.low":      "33554432",
		"memory.high":     "50331648",
		"pids.max":        "20",
		"cpu.weight":      "59", // library formula for 512 shares
		"cpu.max":         "50000 100000",
	} {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		if got := strings.TrimSpace(string(b)); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
}

// On a hybrid host the empty cgroup2 at /sys/fs/cgroup/unified still runs
// BPF_CGROUP_DEVICE programs for its members, so the v2 device path (rules
// compiled to eBPF by the library) can be exercised for real here.
func TestV2DevicesEBPFOnHybrid(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if DetectMode() != Hybrid {
		t.Skip("needs a hybrid host (v2 hosts run TestDevices through the v2 path already)")
	}
	dir := filepath.Join("/sys/fs/cgroup/unified", fmt.Sprintf("berth-test-%d-%d", os.Getpid(), testSeq.Add(1)))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cgroups.RemovePath(dir); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	res, err := FromSpec(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](3), Access: "rwm"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := fs2.NewManager(&cgroups.Cgroup{Path: "/unused", Resources: &cgroups.Resources{}}, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Set(res); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command("sh", "-c", `read _; echo x >/dev/null && echo null-ok; head -c1 /dev/zero >/dev/null 2>&1 && echo zero-ok || echo zero-denied`)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := cgroups.WriteCgroupProc(dir, cmd.Process.Pid); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatal(err)
	}
	_, _ = stdin.Write([]byte("\n"))
	_ = stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%v: %s", err, &out)
	}
	if got := strings.Fields(out.String()); !slices.Equal(got, []string{"null-ok", "zero-denied"}) {
		t.Fatalf("device access under eBPF filter: %q, want null-ok zero-denied", &out)
	}
}

package rootfs

import (
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/runtime/initplan"
)

func TestPlanUnsupported(t *testing.T) {
	for _, tc := range []struct {
		m    specs.Mount
		want string
	}{
		{specs.Mount{Destination: "/x", Type: "bind", Source: "/tmp", Options: []string{"rbind", "idmap"}}, "idmapped mount"},
		{specs.Mount{Destination: "/x", Type: "tmpfs", Source: "tmpfs", Options: []string{"tmpcopyup"}}, "tmpcopyup mount"},
		{specs.Mount{Destination: "/x", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m"}}, ""},
	} {
		spec := &specs.Spec{Mounts: []specs.Mount{tc.m}}
		if got := PlanUnsupported(spec); got != tc.want {
			t.Errorf("%v: %q, want %q", tc.m.Options, got, tc.want)
		}
	}
}

// The plan follows Setup's order: root preparation, mounts, devices and /dev links, hooks,
// pivot, sysctls, read-only then masked paths, read-only root, chdir.
func TestPlanOrder(t *testing.T) {
	spec := &specs.Spec{
		Root: &specs.Root{Path: "rootfs", Readonly: true},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "mode=755"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts"},
			{Destination: "/data", Type: "bind", Source: "/tmp", Options: []string{"rbind", "ro", "rprivate"}},
		},
		Linux: &specs.Linux{
			Sysctl:        map[string]string{"net.ipv4.ip_forward": "1"},
			ReadonlyPaths: []string{"/proc/sys"},
			MaskedPaths:   []string{"/proc/kcore"},
		},
	}
	var p initplan.Plan
	if err := Plan(&p, spec, PlanOptions{Rootfs: "/tmp/rootfs"}); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(p.Ops(), " ")
	want := "MOUNT MOUNT OPEN_ROOT MOUNT_FS MOUNT_FS MOUNT_FS BIND MKNOD MKNOD MKNOD MKNOD MKNOD MKNOD " +
		"SYMLINK SYMLINK SYMLINK SYMLINK"
	if !strings.HasPrefix(got, want) {
		t.Fatalf("plan starts %q, want %q", got, want)
	}
	if tail := " SYMLINK PIVOT WRITE READONLY MASK RO_ROOT CHDIR_ROOT"; !strings.HasSuffix(got, tail) {
		t.Errorf("plan ends %q, want ...%q", got, tail)
	}
	// The stop for the runtime's hooks only when it has some.
	var h initplan.Plan
	if err := Plan(&h, spec, PlanOptions{Rootfs: "/tmp/rootfs", Hooks: true}); err != nil {
		t.Fatal(err)
	}
	if got, tail := strings.Join(h.Ops(), " "), " SYMLINK HOOKS PIVOT WRITE"; !strings.Contains(got, tail) {
		t.Errorf("plan with hooks %q, want ...%q...", got, tail)
	}
	bad := &specs.Spec{Mounts: []specs.Mount{{Destination: "/x", Type: "bind"}}}
	if err := Plan(&initplan.Plan{}, bad, PlanOptions{Rootfs: "/tmp/rootfs"}); err == nil || !strings.Contains(err.Error(), "bind mount without source") {
		t.Errorf("bind without source: %v", err)
	}
}

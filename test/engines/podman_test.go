package engines_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPodman runs rootful podman on its own root, runroot, tmpdir, network config dir and
// cgroup parent (cgroupfs manager, file events, no network), with its own containers.conf and
// storage.conf, and runs every scenario with runc and with berth-runtime.
//
// The reference is runc, not podman's default crun: crun refuses a hybrid cgroup host
// ("cgroups in hybrid mode not supported"), which this machine is.
func TestPodman(t *testing.T) {
	podman, err := exec.LookPath("podman")
	if err != nil {
		t.Skip("podman not installed (scripts/install-deps.sh engines installs it)")
	}
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Fatalf("runc, the reference runtime, is not installed (scripts/install-deps.sh engines installs it)")
	}

	dir := shortTempDir(t, "bp-")
	// Paths podman creates whatever its flags (the blob info cache of `import`), and the
	// shared-memory lock file it would use without lock_type = "file".
	host := snapshotHostPaths("/var/lib/containers/cache/blob-info-cache-v1.boltdb", "/var/lib/containers/cache", "/var/lib/containers", "/dev/shm/libpod_lock")
	t.Cleanup(func() { host.cleanup(t) })
	cgParent := filepath.Base(dir)
	t.Cleanup(func() { removeCgroupParent(t, cgParent) })

	berth, traceLog := runtimeFor(t, dir)
	driver := "vfs"
	if overlaySupported() {
		driver = "overlay"
	}
	for _, d := range []string{"net", "vartmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// Podman 4.3 as root sets RLIMIT_NOFILE to 1048576 and lowers its own RLIMIT_NPROC to
	// 32768 (conmon and so the runtime inherit that); a host that withholds CAP_SYS_RESOURCE
	// (this sandbox does) cannot raise NOFILE, and every runtime, runc included, then fails
	// create. Default both to what the host allows.
	nofile := ulimitHard(syscall.RLIMIT_NOFILE, 1048576)
	nproc := ulimitHard(6 /* RLIMIT_NPROC */, 32768)
	containersConf := fmt.Sprintf(`[containers]
default_ulimits = ["nofile=%d:%d", "nproc=%d:%d"]
log_driver = "k8s-file"

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
lock_type = "file"
image_copy_tmp_dir = %q

[network]
network_config_dir = %q
`, nofile, nofile, nproc, nproc, filepath.Join(dir, "vartmp"), filepath.Join(dir, "net"))
	storageConf := fmt.Sprintf("[storage]\ndriver = %q\ngraphroot = %q\nrunroot = %q\n", driver, filepath.Join(dir, "r"), filepath.Join(dir, "rr"))
	if err := os.WriteFile(filepath.Join(dir, "containers.conf"), []byte(containersConf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "storage.conf"), []byte(storageConf), 0o644); err != nil {
		t.Fatal(err)
	}

	e := &engine{
		name: "podman",
		bin:  podman,
		global: []string{
			"--root", filepath.Join(dir, "r"),
			"--runroot", filepath.Join(dir, "rr"),
			"--tmpdir", filepath.Join(dir, "t"),
			"--volumepath", filepath.Join(dir, "v"),
			"--network-config-dir", filepath.Join(dir, "net"),
			"--storage-driver", driver,
			"--cgroup-manager", "cgroupfs",
			"--events-backend", "file",
		},
		// CONTAINERS_CONF alone is read (not /etc/containers/containers.conf); conmon passes
		// it on to the `podman container cleanup` it runs when a container exits.
		env: []string{
			"CONTAINERS_CONF=" + filepath.Join(dir, "containers.conf"),
			"CONTAINERS_STORAGE_CONF=" + filepath.Join(dir, "storage.conf"),
			"TMPDIR=" + filepath.Join(dir, "vartmp"),
		},
		runArgs:        []string{"--network", "none", "--cgroup-parent", "/" + cgParent},
		cgParent:       cgParent,
		cgKeep:         []string{"conmon"}, // podman puts conmon in <parent>/conmon
		dir:            dir,
		createFailCode: 126,
		rmForce:        []string{"rm", "-f", "-t", "0"},
	}
	t.Cleanup(func() {
		stopPodman(t, e, dir)
		if traceLog != "" {
			t.Logf("berth-runtime invocations:\n%s", tail(traceLog, 400))
		}
	})

	r := e.cli(runtimeSel{}, "", "version", "--format", "{{.Client.Version}}")
	if r.code != 0 {
		t.Fatalf("podman version: %v", r)
	}
	t.Logf("podman %s, storage driver %s, data under %s", strings.TrimSpace(r.out), driver, dir)
	tarball := rootfsTar(t, dir)
	shareDir(t, dir)
	if r := e.cli(runtimeSel{}, "", "import", "--quiet", tarball, image); r.code != 0 {
		t.Fatalf("podman import: %v", r)
	}

	runScenarios(t, e,
		runtimeSel{name: "runc", global: []string{"--runtime", runc}},
		runtimeSel{name: "berth", global: []string{"--runtime", berth}},
	)

	if r := e.cli(runtimeSel{}, "", "ps", "-aq"); strings.TrimSpace(r.out) != "" {
		t.Errorf("containers left after the scenarios: %q", r.out)
	}
}

// stopPodman removes every container (podman rm -fa) and checks that no conmon, cleanup or
// container process is left; the temp dir's cleanup then unmounts what podman left mounted
// (its storage and shm mounts under the runroot) and removes it.
func stopPodman(t *testing.T, e *engine, dir string) {
	t.Helper()
	if r := e.cli(runtimeSel{}, "", "rm", "-fa", "-t", "0"); r.code != 0 {
		t.Errorf("podman rm -fa: %v", r)
	}
	// unmounts the image layers it still has mounted
	e.cli(runtimeSel{}, "", "unmount", "-a")
	waitFor(10*time.Second, func() bool { return len(processesMentioning(dir)) == 0 })
	killProcessesMentioning(t, dir)
}

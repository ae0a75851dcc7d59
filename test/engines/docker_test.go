package engines_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// dockerCLI prefers Debian's docker (package docker.io, the daemon's own version) to another
// one earlier in PATH.
func dockerCLI() string {
	if _, err := os.Stat("/usr/bin/docker"); err == nil {
		return "/usr/bin/docker"
	}
	p, _ := exec.LookPath("docker")
	return p
}

// TestDocker starts Debian's dockerd (and its managed containerd) on its own socket, data
// root, exec root and cgroup parent, with berth-runtime added as runtime "berth", and runs
// every scenario with the default runtime (runc) and with berth.
func TestDocker(t *testing.T) {
	dockerd, err := exec.LookPath("dockerd")
	if err != nil {
		t.Skip("dockerd not installed (scripts/install-deps.sh engines installs docker.io)")
	}
	cli := dockerCLI()
	if cli == "" {
		t.Skip("docker CLI not installed (scripts/install-deps.sh engines installs docker.io)")
	}

	dir := shortTempDir(t, "be-")
	// Paths dockerd and the containerd shims create whatever their roots: removed at the end
	// when this test made them. The shim sockets live in /run/containerd/s whatever the
	// containerd address.
	host := snapshotHostPaths("/run/docker/plugins", "/run/docker", "/run/containerd/s", "/run/containerd", "/etc/docker/key.json")
	t.Cleanup(func() { host.cleanup(t) })
	_, err = os.Stat("/sys/class/net/docker0")
	hadDocker0 := err == nil
	cgParent := filepath.Base(dir) // one cgroup parent per run: /be-XXXX/<container id>
	t.Cleanup(func() { removeCgroupParent(t, cgParent) })

	berth, traceLog := runtimeFor(t, dir)
	sock := filepath.Join(dir, "d.sock")
	driver := "vfs"
	if overlaySupported() {
		driver = "overlay2"
	}
	// Its own config file, not the host's /etc/docker/daemon.json; the trust key dockerd 20.10
	// still writes goes to the temp dir, not /etc/docker/key.json (no command-line flag).
	daemonJSON := fmt.Sprintf("{\"deprecated-key-path\": %q}\n", filepath.Join(dir, "key.json"))
	if err := os.WriteFile(filepath.Join(dir, "daemon.json"), []byte(daemonJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{
		"--host", "unix://" + sock,
		"--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "d.pid"),
		"--config-file", filepath.Join(dir, "daemon.json"),
		"--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
		"--storage-driver", driver,
		"--exec-opt", "native.cgroupdriver=cgroupfs",
		"--cgroup-parent", "/" + cgParent,
		"--add-runtime", "berth=" + berth,
	}
	logPath := filepath.Join(dir, "dockerd.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(dockerd, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // not in the test's process group
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dockerd: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()

	e := &engine{
		name:           "docker",
		bin:            cli,
		global:         []string{"--host", "unix://" + sock},
		env:            []string{"DOCKER_CONFIG=" + filepath.Join(dir, "cli")},
		cgParent:       cgParent,
		dir:            dir,
		createFailCode: 125,
		rmForce:        []string{"rm", "-f"},
	}
	t.Cleanup(func() {
		stopDockerd(t, e, cmd, exited, dir)
		if traceLog != "" {
			t.Logf("berth-runtime invocations:\n%s", tail(traceLog, 400))
		}
		if _, err := os.Stat("/sys/class/net/docker0"); err == nil && !hadDocker0 {
			t.Errorf("dockerd created a docker0 bridge despite --bridge=none")
		}
	})

	// Up when the API answers.
	ready := waitFor(60*time.Second, func() bool {
		select {
		case <-exited:
			return true
		default:
		}
		return e.cli(runtimeSel{}, "", "version", "--format", "{{.Server.Version}}").code == 0
	})
	select {
	case <-exited:
		t.Fatalf("dockerd exited: %s\n%s", cmd.ProcessState, tail(logPath, 30))
	default:
	}
	if !ready {
		t.Fatalf("dockerd not answering on %s after 60s:\n%s", sock, tail(logPath, 30))
	}
	t.Logf("dockerd %s, storage driver %s, data under %s", strings.TrimSpace(e.cli(runtimeSel{}, "", "version", "--format", "{{.Server.Version}}").out), driver, dir)

	// The busybox image from the bundle's rootfs.
	tarball := rootfsTar(t, dir)
	shareDir(t, dir)
	if r := e.cli(runtimeSel{}, "", "import", tarball, image); r.code != 0 {
		t.Fatalf("docker import: %v", r)
	}

	runScenarios(t, e,
		runtimeSel{name: "runc"}, // dockerd's default runtime
		runtimeSel{name: "berth", run: []string{"--runtime", "berth"}},
	)

	if r := e.cli(runtimeSel{}, "", "ps", "-aq"); strings.TrimSpace(r.out) != "" {
		t.Errorf("containers left after the scenarios: %q", r.out)
	}
	// The shim gives both runtimes the state root <exec-root>/runtime-runc/moby: every
	// container's state must be gone (berth keeps its seccomp cache in a dot dir there).
	entries, _ := os.ReadDir(filepath.Join(dir, "exec", "runtime-runc", "moby"))
	for _, en := range entries {
		if !strings.HasPrefix(en.Name(), ".") {
			t.Errorf("runtime state left behind: %s", en.Name())
		}
	}
}

// stopDockerd removes every container, stops dockerd by pid (it stops its containerd), and
// checks that no daemon, containerd, shim or container process is left.
func stopDockerd(t *testing.T, e *engine, cmd *exec.Cmd, exited chan struct{}, dir string) {
	t.Helper()
	if r := e.cli(runtimeSel{}, "", "ps", "-aq"); r.code == 0 {
		if ids := strings.Fields(r.out); len(ids) > 0 {
			e.rm(runtimeSel{}, ids...)
		}
	}
	containerdPid := 0
	if data, err := os.ReadFile(filepath.Join(dir, "exec", "containerd", "containerd.pid")); err == nil {
		containerdPid, _ = strconv.Atoi(strings.TrimSpace(string(data)))
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(45 * time.Second):
		t.Errorf("dockerd did not exit within 45s of SIGTERM: killing it")
		cmd.Process.Kill()
		<-exited
	}
	if !waitFor(15*time.Second, func() bool { return !pidAlive(containerdPid, dir) }) {
		t.Errorf("dockerd's containerd (pid %d) still running after dockerd exited: killing it", containerdPid)
		syscall.Kill(containerdPid, syscall.SIGKILL)
	}
	waitFor(10*time.Second, func() bool { return len(processesMentioning(dir)) == 0 })
	killProcessesMentioning(t, dir)
	if t.Failed() {
		t.Logf("dockerd log, errors (tail):\n%s", grepTail(filepath.Join(dir, "dockerd.log"), "level=error", 15))
	}
}

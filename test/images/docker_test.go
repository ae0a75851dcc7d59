package images_test

// Interop with Debian's dockerd through save/load archives, both ways: image
// IDs (config digests) and tags must match.
//
// dockerd runs on its own socket, data root, exec root and pidfile under a
// short /tmp dir (unix socket paths have a length limit), with its own
// daemon.json, no bridge and no iptables, the vfs storage driver (it mounts
// nothing for images), and its managed containerd. Debian's CLI,
// /usr/bin/docker, is used explicitly: another docker CLI may come first on
// PATH.

import (
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

	"github.com/berth-dev/berth/internal/testutil"
)

const dkCLI = "/usr/bin/docker"

type dockerd struct {
	t    *testing.T
	dir  string
	sock string
}

// docker runs Debian's docker CLI against the test's daemon.
func (d *dockerd) docker(args ...string) (string, error) {
	d.t.Helper()
	cmd := exec.Command(dkCLI, args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+d.sock, "DOCKER_CONFIG="+filepath.Join(d.dir, "cli"))
	var so, se strings.Builder
	cmd.Stdout, cmd.Stderr = &so, &se
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		return "", err
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return so.String(), fmt.Errorf("docker %s: %v: %s%s", strings.Join(args, " "), err, so.String(), se.String())
		}
		return so.String(), nil
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		return so.String(), fmt.Errorf("docker %s: timed out", strings.Join(args, " "))
	}
}

func (d *dockerd) must(args ...string) string {
	d.t.Helper()
	out, err := d.docker(args...)
	if err != nil {
		d.t.Fatal(err)
	}
	return out
}

func dkWait(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}

// dkPidAlive: pid is live (not a zombie) and its command line mentions s.
func dkPidAlive(pid int, s string) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && len(b) > 0 && strings.Contains(string(b), s)
}

// dkProcs lists live processes (other than this one) whose command line mentions s.
func dkProcs(s string) []int {
	self := os.Getpid()
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		if dkPidAlive(pid, s) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// startDockerd starts dockerd and registers its stop and the removal of its
// dirs (and of the host paths it creates whatever its roots) in t.Cleanup.
func startDockerd(t *testing.T) *dockerd {
	t.Helper()
	bin, err := exec.LookPath("dockerd")
	if err != nil {
		t.Skip("dockerd is not installed (scripts/install-deps.sh engines installs docker.io)")
	}
	if _, err := os.Stat(dkCLI); err != nil {
		t.Skipf("%s is not installed (docker.io)", dkCLI)
	}
	dir, err := os.MkdirTemp("/tmp", "bi-")
	if err != nil {
		t.Fatal(err)
	}
	// Host paths dockerd and containerd create whatever their roots: removed
	// at the end if this test made them (directories only when empty).
	hostPaths := []string{"/run/docker/plugins", "/run/docker", "/run/containerd/s", "/run/containerd", "/etc/docker/key.json"}
	existed := map[string]bool{}
	for _, p := range hostPaths {
		_, err := os.Lstat(p)
		existed[p] = err == nil
	}
	t.Cleanup(func() {
		for _, p := range hostPaths { // listed deepest first
			if !existed[p] {
				os.Remove(p)
			}
		}
	})
	t.Cleanup(func() {
		for range 10 {
			mps := testutil.MountsUnder(dir)
			if len(mps) == 0 {
				break
			}
			for _, mp := range mps {
				t.Logf("unmounting what dockerd left: %s", mp)
				if err := syscall.Unmount(mp, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
					t.Errorf("unmount %s: %v", mp, err)
				}
			}
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove %s: %v", dir, err)
		}
	})
	noLeftovers(t, dir) // runs after dockerd is stopped (cleanups are LIFO)

	d := &dockerd{t: t, dir: dir, sock: filepath.Join(dir, "d.sock")}
	daemonJSON := fmt.Sprintf("{\"deprecated-key-path\": %q}\n", filepath.Join(dir, "key.json"))
	if err := os.WriteFile(filepath.Join(dir, "daemon.json"), []byte(daemonJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "dockerd.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin,
		"--host", "unix://"+d.sock,
		"--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "d.pid"),
		"--config-file", filepath.Join(dir, "daemon.json"),
		"--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
		"--storage-driver", "vfs",
		"--exec-opt", "native.cgroupdriver=cgroupfs",
	)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dockerd: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		containerdPid := 0
		if b, err := os.ReadFile(filepath.Join(dir, "exec", "containerd", "containerd.pid")); err == nil {
			containerdPid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			t.Errorf("dockerd did not exit within 30s of SIGTERM: killing it")
			cmd.Process.Kill()
			<-exited
		}
		if !dkWait(15*time.Second, func() bool { return !dkPidAlive(containerdPid, dir) }) {
			t.Errorf("dockerd's containerd (pid %d) still running after dockerd exited: killing it", containerdPid)
			syscall.Kill(containerdPid, syscall.SIGKILL)
		}
		if !dkWait(10*time.Second, func() bool { return len(dkProcs(dir)) == 0 }) {
			for _, pid := range dkProcs(dir) {
				t.Errorf("process left by dockerd: %d: killing it", pid)
				syscall.Kill(pid, syscall.SIGKILL)
			}
			dkWait(10*time.Second, func() bool { return len(dkProcs(dir)) == 0 })
		}
	})

	ready := dkWait(60*time.Second, func() bool {
		select {
		case <-exited:
			return true
		default:
		}
		_, err := d.docker("version", "--format", "{{.Server.Version}}")
		return err == nil
	})
	select {
	case <-exited:
		b, _ := os.ReadFile(logPath)
		t.Fatalf("dockerd exited: %s\n%s", cmd.ProcessState, b)
	default:
	}
	if !ready {
		b, _ := os.ReadFile(logPath)
		t.Fatalf("dockerd not answering on %s after 60s:\n%s", d.sock, b)
	}
	return d
}

// dockerID is docker's image ID for ref.
func (d *dockerd) dockerID(ref string) string {
	d.t.Helper()
	return strings.TrimSpace(d.must("image", "inspect", "--format", "{{.Id}}", ref))
}

// berthOnly returns the ID and the repo:tags berth shows for its only image.
func berthOnly(e *env) (id string, tags []string) {
	e.t.Helper()
	ids := imageIDs(e)
	if len(ids) != 1 {
		e.t.Fatalf("berth images: want one image, got %v", ids)
	}
	return ids[0], strings.Fields(e.must("images", "--format", "{{.Repository}}:{{.Tag}}"))
}

func TestDockerSaveLoadInterop(t *testing.T) {
	d := startDockerd(t)
	v := strings.TrimSpace(d.must("version", "--format", "{{.Server.Version}}"))
	t.Logf("dockerd %s under %s", v, d.dir)
	tarball := rootfsTar(t)

	// berth import -> berth save -> docker load: same ID.
	src := newEnv(t)
	const ref = "berth-interop/busybox:1"
	id := strings.TrimSpace(src.must("import", "-c", `CMD ["sh"]`, tarball, ref))
	saved := filepath.Join(src.dir, "berth-save.tar")
	src.must("save", "-o", saved, ref)
	if out := d.must("load", "-i", saved); !strings.Contains(out, "Loaded image: "+ref) {
		t.Errorf("docker load of berth's save: %q", out)
	}
	if got := d.dockerID(ref); got != id {
		t.Errorf("docker load of berth's save: ID %s, berth's %s", got, id)
	}

	// docker save of it -> berth load: same ID and tag.
	dsaved := filepath.Join(src.dir, "docker-save.tar")
	d.must("save", "-o", dsaved, ref)
	e1 := newEnv(t)
	if out := e1.must("load", "-i", dsaved); !strings.Contains(out, "Loaded image: "+ref) {
		t.Errorf("berth load of docker's save: %q", out)
	}
	gotID, tags := berthOnly(e1)
	if gotID != id || len(tags) != 1 || tags[0] != ref {
		t.Errorf("berth load of docker's save: ID %s tags %v, want %s %s", gotID, tags, id, ref)
	}
	checkStore(e1, "after loading docker's save")

	// An image docker made itself (docker import) -> docker save -> berth load: docker's ID.
	const dref = "docker-made/busybox:2"
	d.must("import", "-c", `CMD ["sh"]`, tarball, dref)
	did := d.dockerID(dref)
	dsaved2 := filepath.Join(src.dir, "docker-save2.tar")
	d.must("save", "-o", dsaved2, dref)
	e2 := newEnv(t)
	if out := e2.must("load", "-i", dsaved2); !strings.Contains(out, "Loaded image: "+dref) {
		t.Errorf("berth load of docker's own image: %q", out)
	}
	gotID, tags = berthOnly(e2)
	if gotID != did || len(tags) != 1 || tags[0] != dref {
		t.Errorf("berth load of docker's own image: ID %s tags %v, want %s %s", gotID, tags, did, dref)
	}
	checkStore(e2, "after loading docker's own image")
	// And back: berth save of docker's image reloads in docker under the same ID.
	resaved := filepath.Join(src.dir, "berth-resave.tar")
	e2.must("save", "-o", resaved, dref)
	d.must("rmi", dref)
	d.must("load", "-i", resaved)
	if got := d.dockerID(dref); got != did {
		t.Errorf("docker load of berth's re-save of docker's image: ID %s, want %s", got, did)
	}
}

package runtime_test

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func allCaps() []string {
	var out []string
	last, _ := capability.LastCap()
	for _, c := range capability.ListKnown() {
		if c <= last {
			out = append(out, "CAP_"+strings.ToUpper(c.String()))
		}
	}
	return out
}

func waitFile(t *testing.T, path string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if data, err := os.ReadFile(path); err == nil && len(data) > 0 {
			return strings.TrimSpace(string(data))
		}
		time.Sleep(10 * time.Millisecond)
	}
	errData, _ := os.ReadFile(filepath.Join(filepath.Dir(path), "attack.err"))
	t.Fatalf("%s did not appear (attack stderr: %q)", path, errData)
	return ""
}

func fileHash(t *testing.T, path string) [32]byte {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(data)
}

// CVE-2019-5736: a process in the container holds the runtime's executable open through
// /proc/1/exe while init is still berth, waits for init to execve the container program, and
// then writes through the handle. It must fail and the host binary must stay the same. The
// attacker gets every capability, so only the sealing can stop it.
func TestRuntimeBinaryCannotBeOverwritten(t *testing.T) {
	e := newEnv(t)
	caps := allCaps()
	e.spec.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	e.spec.Process.Args = []string{"sleep", "100"}
	e.writeSpec()
	real, _ := filepath.EvalSymlinks(runtimeCmd[0])
	before := fileHash(t, real)
	id := e.id()
	e.must("create", "--bundle", e.bundle, id)
	t.Cleanup(func() { e.rt("delete", "--force", id) })

	// From the host too: the init's executable is not writable.
	pid := e.state(id).Pid
	if f, err := os.OpenFile(fmt.Sprintf("/proc/%d/exe", pid), os.O_WRONLY, 0); err == nil {
		f.Close()
		t.Fatal("the created container's /proc/PID/exe opened for writing")
	} else if !errors.Is(err, syscall.EROFS) && !errors.Is(err, syscall.EPERM) {
		t.Logf("host open for writing refused with %v", err)
	}

	attack := `exec 2>/tmp/attack.err
exec 3</proc/1/exe || { echo NOOPEN > /tmp/result; exit; }
echo 1 > /tmp/ready
while [ "$(readlink /proc/1/exe)" != /bin/busybox ]; do usleep 5000; done
if echo pwned >> /proc/self/fd/3; then echo WROTE > /tmp/result; else echo DENIED > /tmp/result; fi`
	e.must("exec", "--detach", id, "sh", "-c", attack)
	rootfs := filepath.Join(e.bundle, "rootfs")
	waitFile(t, filepath.Join(rootfs, "tmp/ready"), 10*time.Second)
	e.must("start", id)
	if got := waitFile(t, filepath.Join(rootfs, "tmp/result"), 10*time.Second); got != "DENIED" {
		t.Fatalf("attack result %q", got)
	}
	if fileHash(t, real) != before {
		t.Fatal("the runtime binary changed")
	}
}

// CVE-2024-21626: descriptors the runtime inherits (an engine leaking a host directory) must
// not reach the container, and a cwd through /proc/self/fd/N must never be a host directory.
func TestNoHostFdOrCwd(t *testing.T) {
	e := newEnv(t)
	hostDir := t.TempDir()
	os.WriteFile(filepath.Join(hostDir, "host-marker-file"), nil, 0o644)
	leaked, err := os.Open(hostDir)
	if err != nil {
		t.Fatal(err)
	}
	defer leaked.Close()
	leakedRoot, _ := os.Open("/")
	defer leakedRoot.Close()

	runLeaky := func(args ...string) (string, int) {
		argv := append(append(append([]string(nil), runtimeCmd...), "--root", e.root), args...)
		cmd := exec.Command(argv[0], argv[1:]...)
		// ExtraFiles are passed without CLOEXEC: exactly what a leaky caller does.
		cmd.ExtraFiles = []*os.File{leaked, leakedRoot, leaked, leakedRoot, leaked, leakedRoot, leaked, leakedRoot}
		out, _ := cmd.CombinedOutput()
		return string(out), cmd.ProcessState.ExitCode()
	}
	e.spec.Process.Args = []string{"sh", "-c", "ls /proc/self/fd"}
	e.writeSpec()
	out, code := runLeaky("run", "--bundle", e.bundle, e.id())
	if code != 0 {
		t.Fatalf("run: %d %s", code, out)
	}
	// ls itself opens one directory (fd 3).
	if f := strings.Fields(out); len(f) > 4 {
		t.Fatalf("container sees descriptors %v", f)
	}
	for n := 3; n <= 12; n++ {
		e.spec.Process.Cwd = fmt.Sprintf("/proc/self/fd/%d", n)
		e.spec.Process.Args = []string{"sh", "-c", "pwd; ls; ls ..; ls ../../.."}
		e.writeSpec()
		out, _ := runLeaky("run", "--bundle", e.bundle, e.id())
		// The leaked fds are a host directory holding host-marker-file and the host's "/",
		// which has /work; the busybox rootfs has neither.
		if strings.Contains(out, "host-marker-file") || strings.Contains(out, "\nwork\n") {
			t.Fatalf("cwd %s reached the host: %s", e.spec.Process.Cwd, out)
		}
	}
}

// Mount destinations and symlinks in the image are resolved inside the rootfs: a destination
// with ".." lands inside it, and an image symlink pointing out of it is either followed inside
// the rootfs or refused; the host path is never touched.
func TestMountDestinationsStayInRoot(t *testing.T) {
	e := newEnv(t)
	hostTarget := t.TempDir()
	src := t.TempDir()
	e.spec.Mounts = append(e.spec.Mounts,
		specs.Mount{Destination: "/../../../../../.." + hostTarget + "/bind", Type: "bind", Source: src, Options: []string{"rbind", "rw"}},
	)
	r := e.run("sh", "-c", "touch "+hostTarget+"/bind/inside && echo ok")
	if r.code != 0 || !strings.Contains(r.stdout, "ok") {
		t.Fatalf("exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(src, "inside")); err != nil {
		t.Fatal("the bind mount did not land where the container sees it")
	}
	if _, err := os.Stat(filepath.Join(e.bundle, "rootfs", hostTarget, "bind")); err != nil {
		t.Fatal("the destination was not created inside the rootfs")
	}

	e2 := newEnv(t)
	rootfs := filepath.Join(e2.bundle, "rootfs")
	os.Symlink("/../../../../../.."+hostTarget, filepath.Join(rootfs, "evil"))
	e2.spec.Mounts = append(e2.spec.Mounts, specs.Mount{Destination: "/evil", Type: "tmpfs", Source: "tmpfs"})
	r = e2.run("sh", "-c", "touch /evil/inside && echo ok")
	if r.code != 0 && !strings.Contains(r.stderr, "/evil") {
		t.Fatalf("refused without naming the destination: %q", r.stderr)
	}
	for _, dir := range []string{hostTarget} {
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Fatalf("host directory touched through the image symlink: %v", entries)
		}
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), hostTarget) {
		t.Fatal("a mount landed on the host path")
	}
}

// CVE-2019-19921 class: an image whose /proc is a symlink is refused before anything mounts.
func TestProcSymlinkRefused(t *testing.T) {
	e := newEnv(t)
	rootfs := filepath.Join(e.bundle, "rootfs")
	os.Remove(filepath.Join(rootfs, "proc"))
	os.Symlink("/tmp", filepath.Join(rootfs, "proc"))
	r := e.run("true")
	if r.code == 0 || !strings.Contains(r.stderr, "/proc") || !strings.Contains(r.stderr, "symlink") {
		t.Fatalf("exit %d: %q", r.code, r.stderr)
	}
}

// Default confinement: Docker's capability set and a Docker-like seccomp profile.
func TestDefaultConfinement(t *testing.T) {
	e := newEnv(t)
	data, err := os.ReadFile("../../runtime/seccomp/testdata/docker-default.json")
	if err != nil {
		t.Fatal(err)
	}
	var prof specs.LinuxSeccomp
	if err := json.Unmarshal(data, &prof); err != nil {
		t.Fatal(err)
	}
	e.spec.Linux.Seccomp = &prof
	e.spec.Process.NoNewPrivileges = false
	host := exec.Command("sleep", "30")
	host.Start()
	defer func() { host.Process.Kill(); host.Wait() }()
	var st syscall.Stat_t
	syscall.Stat("/", &st)
	major, minor := (st.Dev>>8)&0xfff, (st.Dev&0xff)|((st.Dev>>12)&0xfff00)
	checks := []struct{ name, cmd string }{
		{"mount", "mount -t tmpfs t /mnt"},
		{"module load", "insmod /dev/null"},
		{"proc/sys write", "echo 1 > /proc/sys/kernel/sysrq"},
		{"sysrq-trigger", "echo h > /proc/sysrq-trigger"},
		{"kcore", "test -s /proc/kcore && head -c1 /proc/kcore >/dev/null"},
		{"unshare user ns", "unshare -U -r sh -c 'mount -t tmpfs t /mnt'"},
		{"host pid", fmt.Sprintf("kill -0 %d", host.Process.Pid)},
		{"raw host device", fmt.Sprintf("mknod /tmp/hd b %d %d && head -c1 /tmp/hd >/dev/null", major, minor)},
		{"keyring", "cat /proc/keys | grep -q ."},
	}
	var script strings.Builder
	for _, c := range checks {
		fmt.Fprintf(&script, "if ( %s ) 2>/dev/null; then echo 'ALLOWED %s'; else echo 'denied %s'; fi\n", c.cmd, c.name, c.name)
	}
	r := e.run("sh", "-c", script.String())
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, c := range checks {
		if !strings.Contains(r.stdout, "denied "+c.name) {
			t.Errorf("%s was allowed (%s)", c.name, c.cmd)
		}
	}
	t.Logf("\n%s", r.stdout)
}

// A runtime whose own bounding set lacks a capability the config asks for (here
// CAP_SYS_MODULE, under setpriv) drops it with one warning instead of failing the capset:
// the container runs with the rest.
func TestUnavailableCapDropped(t *testing.T) {
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("no setpriv (util-linux)")
	}
	e := newEnv(t)
	e.wrap = []string{"setpriv", "--bounding-set=-sys_module"}
	e.spec.Process.Capabilities = &specs.LinuxCapabilities{
		Bounding: []string{"CAP_CHOWN", "CAP_SYS_MODULE"}, Effective: []string{"CAP_CHOWN", "CAP_SYS_MODULE"},
		Permitted: []string{"CAP_CHOWN", "CAP_SYS_MODULE"},
	}
	r := e.run("sh", "-c", "grep CapBnd /proc/self/status")
	if r.code != 0 || !strings.Contains(r.stderr, "CAP_SYS_MODULE is not available to the runtime") {
		t.Fatalf("exit %d: %q %q", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "0000000000000001") { // CAP_CHOWN only
		t.Fatalf("bounding set in the container: %q", r.stdout)
	}
}

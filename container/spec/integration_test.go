package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// repoRoot is the module root (this package is container/spec).
func repoRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Clean(filepath.Join(wd, "..", ".."))
}

// smokeEnv finds berth-runtime ($BERTH_RUNTIME, else bin/berth-runtime) and the busybox bundle
// ($BERTH_BUNDLE, else _build/busybox-bundle), as `make build bundle` leaves them; the test is
// skipped without them or without root.
func smokeEnv(t *testing.T) (runtimeBin, rootfs string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("runs a real container: needs root")
	}
	root := repoRoot(t)
	runtimeBin = os.Getenv("BERTH_RUNTIME")
	if runtimeBin == "" {
		runtimeBin = filepath.Join(root, "bin", "berth-runtime")
	}
	bundle := os.Getenv("BERTH_BUNDLE")
	if bundle == "" {
		bundle = filepath.Join(root, "_build", "busybox-bundle")
	}
	rootfs = filepath.Join(bundle, "rootfs")
	if _, err := os.Stat(runtimeBin); err != nil {
		t.Skipf("no berth-runtime at %s (make build bundle)", runtimeBin)
	}
	if _, err := os.Stat(filepath.Join(rootfs, "bin", "busybox")); err != nil {
		t.Skipf("no busybox bundle at %s (make bundle)", bundle)
	}
	return runtimeBin, rootfs
}

// runSpec writes the spec to a new bundle and runs it with `berth-runtime run`, returning the
// output and the exit code.
func runSpec(t *testing.T, runtimeBin string, s *specs.Spec) (string, int) {
	t.Helper()
	dir := t.TempDir()
	bundle, state := filepath.Join(dir, "bundle"), filepath.Join(dir, "state")
	os.MkdirAll(bundle, 0o755)
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(bundle, "config.json"), string(data))
	id := fmt.Sprintf("spec-smoke-%d-%d", os.Getpid(), time.Now().UnixNano())
	cmd := exec.Command(runtimeBin, "--root", state, "run", "--bundle", bundle, id)
	// files, not pipes: the container holds its stdio open until it exits
	out, err := os.CreateTemp(dir, "out")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		exec.Command(runtimeBin, "--root", state, "delete", "--force", id).Run()
		t.Fatal("the container did not exit")
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out.Name())
	t.Logf("exit %d, output:\n%s", code, b)
	return string(b), code
}

func treeListing(t *testing.T, root string) string {
	t.Helper()
	var b bytes.Buffer
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil {
			fi, _ := d.Info()
			fmt.Fprintf(&b, "%s %v %d\n", p, fi.Mode(), fi.Size())
		}
		return nil
	})
	return b.String()
}

// The default `docker run` spec on the busybox image: docker's capabilities, root, the
// short id as hostname; the shared rootfs is mounted read-only and left as it was.
func TestSmokeBusybox(t *testing.T) {
	runtimeBin, rootfs := smokeEnv(t)
	before := treeListing(t, rootfs)
	s, err := Generate(Input{
		ID:     testID,
		Rootfs: rootfs,
		Config: &container.Config{Cmd: []string{"sh", "-c", "cat /proc/self/status | grep CapEff; id; hostname"}},
		Host:   &container.HostConfig{ReadonlyRootfs: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	out, code := runSpec(t, runtimeBin, s)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	for _, want := range []string{"CapEff:\t00000000a80425fb", "uid=0(root) gid=0(root)", testID[:12]} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if after := treeListing(t, rootfs); after != before {
		t.Error("the busybox rootfs was modified")
	}
}

// More of the spec on a copy of the rootfs: --init (berth-init as pid 1), the /etc files, a
// tmpfs, a numeric user, --cap-drop, read-only paths and the default seccomp profile.
func TestSmokeOptions(t *testing.T) {
	runtimeBin, shared := smokeEnv(t)
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	if out, err := exec.Command("cp", "-a", shared, rootfs).CombinedOutput(); err != nil {
		t.Fatalf("copy rootfs: %v %s", err, out)
	}
	initBin := filepath.Join(dir, "berth-init")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", initBin, "../../cmd/berth-init")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Skipf("cannot build berth-init: %v %s", err, out)
	}
	write(t, filepath.Join(dir, "hostname"), "smoke\n")
	write(t, filepath.Join(dir, "hosts"), "127.0.0.1 localhost\n::1 localhost\n")
	write(t, filepath.Join(dir, "resolv.conf"), "nameserver 192.0.2.1\n")

	tru := true
	script := strings.Join([]string{
		"tr '\\0' ' ' < /proc/1/cmdline; echo",
		"cat /etc/hostname",
		"cat /etc/resolv.conf",
		"id -u; id -g",
		"grep CapEff /proc/self/status",
		"touch /run/x && echo tmpfs-ok",
		"cat /proc/kcore 2>/dev/null | head -c1 | wc -c",
		"mkdir -p /tmp/m && mount -t tmpfs none /tmp/m 2>/dev/null || echo mount-denied",
		"echo $MYVAR $HOME",
		"exit 3",
	}, "; ")
	s, err := Generate(Input{
		ID:     testID,
		Rootfs: rootfs,
		Config: &container.Config{
			Cmd: []string{"sh", "-c", script}, User: "1000:1000", Env: []string{"MYVAR=hello"}, WorkingDir: "/tmp",
		},
		Host: &container.HostConfig{
			Init: &tru, CapDrop: []string{"net_raw"}, Tmpfs: map[string]string{"/run": "size=1m,mode=1777"},
		},
		InitPath:     initBin,
		HostnamePath: filepath.Join(dir, "hostname"), HostsPath: filepath.Join(dir, "hosts"), ResolvConfPath: filepath.Join(dir, "resolv.conf"),
	})
	if err != nil {
		t.Fatal(err)
	}
	out, code := runSpec(t, runtimeBin, s)
	if code != 3 {
		t.Fatalf("exit %d, want 3 (through berth-init):\n%s", code, out)
	}
	for _, want := range []string{
		"/sbin/docker-init -- sh -c", "smoke", "nameserver 192.0.2.1", "1000\n1000", "CapEff:\t0000000000000000",
		"tmpfs-ok", "0\n", "mount-denied", "hello /",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// root with the drop: CapEff without CAP_NET_RAW (bit 13); /proc/sys stays read-only and
	// the default seccomp profile refuses unshare even to root
	script = strings.Join([]string{
		"grep CapEff /proc/self/status",
		"cat /proc/sys/vm/overcommit_memory > /proc/sys/vm/overcommit_memory 2>/dev/null || echo procsys-ro",
		"unshare -U true 2>/dev/null || echo unshare-denied",
	}, "; ")
	s, err = Generate(Input{ID: testID, Rootfs: rootfs, Config: &container.Config{Cmd: []string{"sh", "-c", script}},
		Host: &container.HostConfig{CapDrop: []string{"net_raw"}}})
	if err != nil {
		t.Fatal(err)
	}
	out, code = runSpec(t, runtimeBin, s)
	for _, want := range []string{fmt.Sprintf("CapEff:\t%016x", 0xa80425fb&^(1<<13)), "procsys-ro", "unshare-denied"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("exit %d, output lacks %q", code, want)
		}
	}
}

// --privileged: every capability the runtime can grant, no seccomp, the host's devices,
// writable /sys.
func TestSmokePrivileged(t *testing.T) {
	runtimeBin, rootfs := smokeEnv(t)
	s, err := Generate(Input{ID: testID, Rootfs: rootfs,
		Config: &container.Config{Cmd: []string{"sh", "-c", "grep -E 'CapEff|Seccomp:' /proc/self/status; test -c /dev/null && echo null-ok; grep ' /sys ' /proc/mounts"}},
		Host:   &container.HostConfig{Privileged: true, ReadonlyRootfs: true}})
	if err != nil {
		t.Fatal(err)
	}
	out, code := runSpec(t, runtimeBin, s)
	if code != 0 || !strings.Contains(out, "Seccomp:\t0") || !strings.Contains(out, "null-ok") || !strings.Contains(out, "sysfs rw,") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if strings.Contains(out, "CapEff:\t00000000a80425fb") {
		t.Fatal("privileged container has the default capabilities")
	}
}

// Package engines_test drives Debian's dockerd and podman with berth-runtime in place of runc
// (make test-engines sets BERTH_BIN and BERTH_BUNDLE and installs the engines). Each engine
// gets its own daemon/storage roots under a short temp dir in /tmp, its own cgroup parent, and
// runs every scenario twice: once with its default runtime (the reference, to prove the test
// itself right) and once with berth-runtime. Nothing is left behind: processes, mounts,
// cgroups, and the few host paths the engines create on their own are checked and removed.
//
// BERTH_ENGINES_TRACE=1 puts a wrapper in front of berth-runtime that logs every argv the
// engine passes (printed at the end of each engine test).
package engines_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

const image = "berth-busybox:test"

var (
	berthBin     string // bin/berth
	berthRuntime string // bin/berth-runtime (the lean runtime build), or a symlink to berth
	bundleRootfs string // _build/busybox-bundle/rootfs
)

func TestMain(m *testing.M) {
	berthBin = os.Getenv("BERTH_BIN")
	bundle := os.Getenv("BERTH_BUNDLE")
	if berthBin == "" || bundle == "" {
		fmt.Fprintln(os.Stderr, "set BERTH_BIN and BERTH_BUNDLE (make test-engines does)")
		os.Exit(1)
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "engine tests start dockerd and rootful podman: run them as root")
		os.Exit(1)
	}
	var err error
	if berthBin, err = filepath.Abs(berthBin); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bundleRootfs, _ = filepath.Abs(filepath.Join(bundle, "rootfs"))
	if _, err := os.Stat(filepath.Join(bundleRootfs, "bin", "busybox")); err != nil {
		fmt.Fprintln(os.Stderr, "no busybox rootfs in BERTH_BUNDLE (make bundle):", err)
		os.Exit(1)
	}
	// make build puts the lean berth-runtime next to berth; without it, berth itself acts as
	// the runtime when invoked under that name, through a symlink in a temp dir.
	berthRuntime = filepath.Join(filepath.Dir(berthBin), "berth-runtime")
	var cleanup func()
	if _, err := os.Stat(berthRuntime); err != nil {
		dir, err := os.MkdirTemp("/tmp", "be-rt-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		berthRuntime = filepath.Join(dir, "berth-runtime")
		if err := os.Symlink(berthBin, berthRuntime); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		cleanup = func() { os.RemoveAll(dir) }
	}
	before := dirNames(".")
	code := m.Run()
	if cleanup != nil {
		cleanup()
	}
	// The engines (and the processes they start) must not drop files in the working
	// directory: every command runs in its engine's temp dir.
	for name := range dirNames(".") {
		if !before[name] {
			fmt.Fprintf(os.Stderr, "FAIL: %s was created in the package directory by an engine\n", name)
			code = 1
		}
	}
	os.Exit(code)
}

// dirNames is the set of names in dir.
func dirNames(dir string) map[string]bool {
	names := map[string]bool{}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		names[e.Name()] = true
	}
	return names
}

// shortTempDir makes a temp dir directly under /tmp (overlay mount options and unix socket
// paths have length limits, so t.TempDir's long names do not do). Its cleanup unmounts
// whatever the engine left mounted under it, then removes it.
func shortTempDir(t *testing.T, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		left, err := testutil.UnmountUnder(dir)
		if err != nil {
			t.Error(err)
		}
		if len(left) > 0 {
			t.Logf("unmounted what the engine left mounted under %s: %v", dir, left)
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove %s: %v", dir, err)
		}
	})
	return dir
}

// result of one command.
type result struct {
	out  string // stdout
	err  string // stderr
	code int    // exit code; -1 when it could not run or timed out
}

func (r result) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", r.code, r.out, r.err)
}

// run runs a command in dir (when not empty) with a timeout, optional stdin and extra
// environment.
func run(timeout time.Duration, dir string, env []string, stdin string, name string, args ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	// The engine CLIs may leave children holding the pipes (a -d container's attach): do not
	// wait for them past the process itself.
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	r := result{out: so.String(), err: se.String(), code: -1}
	if cmd.ProcessState != nil {
		r.code = cmd.ProcessState.ExitCode()
	}
	if ctx.Err() != nil {
		r.err += fmt.Sprintf("\n[timed out after %s]", timeout)
		r.code = -1
	} else if err != nil && r.code == -1 {
		r.err += "\n[" + err.Error() + "]"
	}
	return r
}

// norm turns a tty's CRLF into LF and trims the ends.
func norm(s string) string {
	return strings.TrimSpace(strings.ReplaceAll(s, "\r\n", "\n"))
}

// lines returns the non-empty, trimmed lines of s.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(norm(s), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// waitFor polls cond every 100ms until it holds or the timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// processesMentioning returns "pid: cmdline" of every live process whose command line contains
// s (the engine's temp dir: shims, conmon, containerd and the daemon all name it). Zombies have
// an empty command line and are not counted: reaping them is PID 1's business.
func processesMentioning(s string) []string {
	self := strconv.Itoa(os.Getpid())
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil || e.Name() == self {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(data) == 0 {
			continue
		}
		cmdline := strings.TrimSpace(strings.ReplaceAll(string(data), "\x00", " "))
		if strings.Contains(cmdline, s) {
			out = append(out, e.Name()+": "+cmdline)
		}
	}
	return out
}

// killProcessesMentioning SIGKILLs what processesMentioning finds and reports it as an error:
// the engine should have stopped them itself.
func killProcessesMentioning(t *testing.T, s string) {
	t.Helper()
	procs := processesMentioning(s)
	if len(procs) == 0 {
		return
	}
	t.Errorf("processes left behind: %v", procs)
	for _, p := range procs {
		pid, _ := strconv.Atoi(strings.SplitN(p, ":", 2)[0])
		syscall.Kill(pid, syscall.SIGKILL)
	}
	waitFor(10*time.Second, func() bool { return len(processesMentioning(s)) == 0 })
}

// pidAlive reports whether pid is a live (non-zombie) process whose command line contains s.
func pidAlive(pid int, s string) bool {
	if pid <= 0 {
		return false
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && len(data) > 0 && strings.Contains(string(data), s)
}

// cgroupMounts lists the cgroup hierarchies mounted under /sys/fs/cgroup (each v1 controller
// and named hierarchy, and the v2 one: unified on a hybrid host, the root itself on a pure v2
// host).
func cgroupMounts() []string {
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	var out []string
	for _, l := range strings.Split(string(mounts), "\n") {
		fields := strings.Fields(l)
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+1 >= len(fields) {
			continue
		}
		if fs := fields[sep+1]; fs == "cgroup" || fs == "cgroup2" {
			mp := fields[4] // cgroup mount points carry no escapes
			if strings.HasPrefix(mp, "/sys/fs/cgroup") {
				out = append(out, mp)
			}
		}
	}
	return out
}

// removeCgroupParent removes the cgroup tree /<parent> from every hierarchy, deepest first.
// A process still in it is a leftover: it is reported and killed.
func removeCgroupParent(t *testing.T, parent string) {
	t.Helper()
	for _, hier := range cgroupMounts() {
		root := filepath.Join(hier, parent)
		if _, err := os.Stat(root); err != nil {
			continue
		}
		var dirs []string
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			if procs, _ := os.ReadFile(filepath.Join(d, "cgroup.procs")); len(bytes.TrimSpace(procs)) > 0 {
				t.Errorf("processes left in cgroup %s: %s", d, bytes.Fields(procs))
				for _, f := range bytes.Fields(procs) {
					pid, _ := strconv.Atoi(string(f))
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			ok := waitFor(10*time.Second, func() bool {
				err := syscall.Rmdir(d)
				return err == nil || errors.Is(err, syscall.ENOENT)
			})
			if !ok {
				t.Errorf("cannot remove cgroup %s", d)
			}
		}
	}
}

// childCgroups lists the cgroups directly under /<parent> in any hierarchy, except the names
// in keep (podman's conmon cgroup), as "hierarchy/parent/child".
func childCgroups(parent string, keep ...string) []string {
	var out []string
	for _, hier := range cgroupMounts() {
		entries, _ := os.ReadDir(filepath.Join(hier, parent))
		for _, en := range entries {
			if en.IsDir() && !slices.Contains(keep, en.Name()) {
				out = append(out, filepath.Join(hier, parent, en.Name()))
			}
		}
	}
	return out
}

// checkNoCgroupsLeft fails the test if a container cgroup is still under /<parent> once the
// engine has removed every container (the runtime's delete removes it), and removes them so
// the next scenario starts clean.
func checkNoCgroupsLeft(t *testing.T, parent string, keep ...string) {
	t.Helper()
	var left []string
	if waitFor(5*time.Second, func() bool {
		left = childCgroups(parent, keep...)
		return len(left) == 0
	}) {
		return
	}
	byName := map[string]int{}
	for _, d := range left {
		byName[filepath.Base(d)]++
	}
	t.Errorf("container cgroups left behind after every container was removed (name: in how many hierarchies under /%s): %v", parent, byName)
	for _, d := range left {
		procs, _ := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		if len(bytes.TrimSpace(procs)) > 0 {
			t.Errorf("  %s still has processes %s", d, bytes.Fields(procs))
		}
		var dirs []string
		filepath.WalkDir(d, func(p string, de fs.DirEntry, err error) error {
			if err == nil && de.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, sub := range dirs {
			syscall.Rmdir(sub)
		}
	}
}

// hostPaths records which of the host paths an engine creates on its own (whatever its
// roots) already existed, so that the test removes only what it made. Directories are removed
// only when empty.
type hostPaths map[string]bool

func snapshotHostPaths(paths ...string) hostPaths {
	h := hostPaths{}
	for _, p := range paths {
		_, err := os.Lstat(p)
		h[p] = err == nil
	}
	return h
}

func (h hostPaths) cleanup(t *testing.T) {
	t.Helper()
	var paths []string
	for p, existed := range h {
		if !existed {
			paths = append(paths, p)
		}
	}
	// deepest first, so that a parent is empty by the time its turn comes
	sort.Slice(paths, func(i, j int) bool { return len(paths[i]) > len(paths[j]) })
	for _, p := range paths {
		fi, err := os.Lstat(p)
		if err != nil {
			continue
		}
		if fi.IsDir() {
			if err := os.Remove(p); err != nil {
				t.Logf("left %s in place (not empty: another engine may use it): %v", p, err)
				continue
			}
		} else if err := os.Remove(p); err != nil {
			t.Errorf("remove %s: %v", p, err)
			continue
		}
		t.Logf("removed %s, which the engine created", p)
	}
}

// ulimitHard returns the hard limit of resource res, capped at max.
func ulimitHard(res int, max uint64) uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(res, &rl); err != nil || rl.Max > max {
		return max
	}
	return rl.Max
}

// overlaySupported reports whether the kernel has overlayfs (else the engines use vfs).
func overlaySupported() bool {
	data, _ := os.ReadFile("/proc/filesystems")
	if strings.Contains(string(data), "\toverlay\n") {
		return true
	}
	// the module may be loadable
	return exec.Command("modprobe", "overlay").Run() == nil
}

// rootfsTar writes the bundle's rootfs as a tar archive into dir, for `docker/podman import`.
func rootfsTar(t *testing.T, dir string) string {
	t.Helper()
	tarball := filepath.Join(dir, "rootfs.tar")
	if r := run(60*time.Second, "", nil, "", "tar", "-C", bundleRootfs, "-cf", tarball, "."); r.code != 0 {
		t.Fatalf("tar the bundle rootfs: %v", r)
	}
	return tarball
}

// runtimeFor returns the path engines should exec as berth's runtime: bin/berth-runtime, or
// with BERTH_ENGINES_TRACE=1 a wrapper in dir that logs each argv to dir/trace.log first.
func runtimeFor(t *testing.T, dir string) (path, traceLog string) {
	t.Helper()
	if os.Getenv("BERTH_ENGINES_TRACE") == "" {
		return berthRuntime, ""
	}
	traceLog = filepath.Join(dir, "trace.log")
	wrapper := filepath.Join(dir, "berth-trace")
	script := fmt.Sprintf("#!/bin/sh\nprintf '%%s\\n' \"$*\" >> %s\nexec %s \"$@\"\n", traceLog, berthRuntime)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return wrapper, traceLog
}

// tail returns the last n lines of a file, for failure messages.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	ls := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}

// grepTail returns the last n lines of a file that contain substr.
func grepTail(path, substr string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	var ls []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.Contains(l, substr) {
			ls = append(ls, l)
		}
	}
	if len(ls) > n {
		ls = ls[len(ls)-n:]
	}
	return strings.Join(ls, "\n")
}

// shareDir makes dir/share/f ("shared-data"), the bind-mount source of the mounts scenario.
func shareDir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "share"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "share", "f"), []byte("shared-data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

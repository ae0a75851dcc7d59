package rootfs

// Setup changes its mount namespace irreversibly, so every test runs it in a
// re-executed copy of the test binary placed in fresh mount/pid/uts (and for
// one test, user/net/ipc) namespaces. The child prints "key=value" lines;
// the parent asserts on them and checks that its own mount table did not
// change.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const helperEnv = "BERTH_ROOTFS_TEST_HELPER"

type helperConfig struct {
	Spec    specs.Spec
	Opts    Options
	Console bool   // allocate a pty in the child and pass it as Options.Console
	Script  string // run with the container's /bin/sh after Setup
}

func TestMain(m *testing.M) {
	if cfg := os.Getenv(helperEnv); cfg != "" {
		os.Exit(runHelper(cfg))
	}
	os.Exit(m.Run())
}

// runHelper is the child side: it is PID 1 of a new pid namespace.
func runHelper(raw string) int {
	var cfg helperConfig
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		fmt.Println("HELPER-ERR:", err)
		return 2
	}
	if cfg.Console {
		ptmx, name, err := openPty()
		if err != nil {
			fmt.Println("HELPER-ERR: pty:", err)
			return 2
		}
		defer ptmx.Close()
		cfg.Opts.Console = name
	}
	fdsBefore := openFds()
	if err := Setup(&cfg.Spec, cfg.Opts); err != nil {
		fmt.Printf("SETUP-ERR: %v\n", err)
		for name, sentinel := range map[string]error{
			"symlink": ErrSymlinkDestination, "notdir": ErrNotDirectory,
			"devnull": ErrNotDevNull, "unsupported": ErrUnsupported,
		} {
			if errors.Is(err, sentinel) {
				fmt.Printf("errclass=%s\n", name)
			}
		}
		return 0
	}
	fmt.Println("setup=ok")
	fmt.Printf("pid=%d\n", os.Getpid())
	wd, _ := os.Getwd()
	fmt.Printf("cwd=%s\n", wd)
	leaked := 0
	for fd, target := range openFds() {
		// The runtime's netpoller is created lazily on first use.
		if strings.HasPrefix(target, "anon_inode:[event") {
			continue
		}
		if _, ok := fdsBefore[fd]; !ok {
			leaked++
			fmt.Printf("leaked fd %s -> %s\n", fd, target)
		}
	}
	// One new fd is ReadDir's own.
	fmt.Printf("leakedfds=%d\n", leaked-1)
	if cfg.Script == "" {
		return 0
	}
	cmd := exec.Command("/bin/sh", "-c", scriptPrelude+cfg.Script)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Env = []string{"PATH=/bin"}
	if err := cmd.Run(); err != nil {
		fmt.Println("HELPER-ERR: script:", err)
		return 2
	}
	return 0
}

// openFds lists the descriptors of this process with what they point to.
// The Go runtime and the test harness hold some of their own (epoll, cgroup
// cpu files, inherited pipes), so the leak check compares before and after.
func openFds() map[string]string {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil
	}
	fds := map[string]string{}
	for _, e := range ents {
		l, _ := os.Readlink("/proc/self/fd/" + e.Name())
		fds[e.Name()] = l
	}
	return fds
}

// t NAME CMD...: prints NAME=yes when CMD succeeds, NAME=no otherwise.
const scriptPrelude = `t() { n=$1; shift; if "$@" >/dev/null 2>&1; then echo "$n=yes"; else echo "$n=no"; fi; }
`

func openPty() (*os.File, string, error) {
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, "", err
	}
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		ptmx.Close()
		return nil, "", err
	}
	n, err := unix.IoctlGetUint32(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		ptmx.Close()
		return nil, "", err
	}
	return ptmx, fmt.Sprintf("/dev/pts/%d", n), nil
}

type runOpts struct {
	userns bool
}

// runChild runs cfg in a namespaced child and returns its key=value output.
func runChild(t *testing.T, cfg helperConfig, ro runOpts) (map[string]string, string) {
	t.Helper()
	before := hostMounts(t)
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(raw))
	flags := uintptr(syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC)
	attr := &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if ro.userns {
		// Root inside maps to host root: enough to get a real user
		// namespace (no mknod, locked mount flags, userns-only mount
		// rules) while the test binary stays executable from its 0700
		// build directory.
		flags |= syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}}
	}
	attr.Cloneflags = flags
	cmd.SysProcAttr = attr
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("child timed out; output:\n%s", out.String())
	}
	text := out.String()
	if err != nil {
		t.Fatalf("child failed: %v; output:\n%s", err, text)
	}
	t.Logf("child output:\n%s", text)
	res := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "HELPER-ERR") {
			t.Fatalf("helper error: %s", line)
		}
		if k, v, ok := strings.Cut(line, "="); ok && !strings.ContainsAny(k, " :") {
			res[k] = v
		}
	}
	if after := hostMounts(t); after != before {
		t.Errorf("host mount table changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	return res, text
}

func hostMounts(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func expect(t *testing.T, res map[string]string, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got, ok := res[k]; !ok {
			t.Errorf("%s: missing from child output", k)
		} else if got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// newRootfs builds a minimal busybox image and returns (tmp, rootfs).
func newRootfs(t *testing.T) (string, string) {
	t.Helper()
	tmp := t.TempDir()
	root := filepath.Join(tmp, "rootfs")
	for _, d := range []string{"bin", "proc", "sys", "dev", "tmp", "etc", "mnt"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, "/bin/busybox", filepath.Join(root, "bin", "busybox"), 0o755)
	list, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, applet := range strings.Fields(string(list)) {
		if applet == "busybox" {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(root, "bin", applet)); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(root, "marker"), "inside-rootfs")
	return tmp, root
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, p string) string {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func baseSpec(root string) specs.Spec {
	return specs.Spec{
		Root: &specs.Root{Path: root},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777", "size=1m"}},
		},
		Linux: &specs.Linux{
			MaskedPaths:   []string{"/proc/kcore", "/proc/timer_list", "/proc/keys", "/proc/does-not-exist", "/sys/firmware"},
			ReadonlyPaths: []string{"/proc/sys", "/proc/sysrq-trigger"},
		},
	}
}

func TestSetupFullView(t *testing.T) {
	requireRoot(t)
	tmp, root := newRootfs(t)
	roDir := mkdir(t, filepath.Join(tmp, "host-ro"))
	rwDir := mkdir(t, filepath.Join(tmp, "host-rw"))
	writeFile(t, filepath.Join(roDir, "data"), "ro-data")
	hostFile := filepath.Join(tmp, "host-file")
	writeFile(t, hostFile, "file-data")
	escapeDir := mkdir(t, filepath.Join(tmp, "escape-src"))
	writeFile(t, filepath.Join(escapeDir, "m"), "escape-marker")

	// Dot-dot destination: must stay inside the rootfs.
	escapeName := fmt.Sprintf("berth-escape-%d", time.Now().UnixNano())
	// Symlink destination: /evil -> /../../<name>, which naive joining
	// resolves to /<name> on the host.
	targetName := fmt.Sprintf("berth-host-target-%d", time.Now().UnixNano())
	if err := os.Symlink("/../../"+targetName, filepath.Join(root, "evil")); err != nil {
		t.Fatal(err)
	}
	mkdir(t, filepath.Join(root, targetName))
	t.Cleanup(func() { os.RemoveAll("/tmp/" + escapeName); os.RemoveAll("/" + targetName) })

	spec := baseSpec(root)
	spec.Root.Readonly = true
	devMode := os.FileMode(0o600)
	devUID, devGID := uint32(1000), uint32(1001)
	spec.Linux.Devices = []specs.LinuxDevice{
		{Path: "/dev/mynull", Type: "c", Major: 1, Minor: 3, FileMode: &devMode, UID: &devUID, GID: &devGID},
		{Path: "/dev/net/tun", Type: "c", Major: 10, Minor: 200, FileMode: &devMode},
		{Path: "/dev/myfifo", Type: "p", FileMode: &devMode},
	}
	spec.Mounts = append(spec.Mounts,
		specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		specs.Mount{Destination: "/mnt/ro", Type: "bind", Source: roDir, Options: []string{"rbind", "ro"}},
		specs.Mount{Destination: "/mnt/rw", Type: "bind", Source: rwDir, Options: []string{"rbind", "rw"}},
		specs.Mount{Destination: "/etc/hostfile", Type: "bind", Source: hostFile, Options: []string{"bind", "ro"}},
		specs.Mount{Destination: "../../../../tmp/" + escapeName, Type: "bind", Source: escapeDir, Options: []string{"bind"}},
		specs.Mount{Destination: "/evil/sub", Type: "bind", Source: escapeDir, Options: []string{"bind", "private"}},
	)
	res, _ := runChild(t, helperConfig{Spec: spec, Opts: Options{Rootfs: root}, Console: true, Script: `
t marker test "$(cat /marker)" = inside-rootfs
t hostwork test -e /work
echo procfs=$(stat -f -c %T /proc)
echo sysfs=$(stat -f -c %T /sys)
echo tmpfs=$(stat -f -c %T /tmp)
echo tmpmode=$(stat -c %a /tmp)
echo tmpsize=$(( $(stat -f -c %b /tmp) * $(stat -f -c %S /tmp) ))
t proc1 test -d /proc/1/fd
t nullchar test -c /dev/null
echo nullrdev=$(stat -c %t:%T /dev/null)
t nullwrite sh -c 'echo x > /dev/null'
echo zero=$(head -c 3 /dev/zero | wc -c)
echo urandom=$(head -c 5 /dev/urandom | wc -c)
echo devfd=$(readlink /dev/fd)
echo stdin=$(readlink /dev/stdin)
echo ptmx=$(readlink /dev/ptmx)
t console test -c /dev/console
t rodata test "$(cat /mnt/ro/data)" = ro-data
t rowrite sh -c 'echo x > /mnt/ro/new'
t rwwrite sh -c 'echo hello > /mnt/rw/new'
t hostfile test "$(cat /etc/hostfile)" = file-data
t hostfilewrite sh -c 'echo x >> /etc/hostfile'
t escape test "$(cat /tmp/` + escapeName + `/m)" = escape-marker
t evil test "$(cat /` + targetName + `/sub/m)" = escape-marker
t masked test -e /proc/timer_list
echo masklen=$(cat /proc/timer_list | wc -c)
echo keyslen=$(cat /proc/keys | wc -c)
t unmaskedlen sh -c 'test $(cat /proc/version | wc -c) -gt 0'
echo firmware=$(ls -A /sys/firmware | wc -l)
t firmwarewrite touch /sys/firmware/x
t procsyswrite sh -c 'echo other > /proc/sys/kernel/hostname'
t sysrqwrite sh -c 'echo h > /proc/sysrq-trigger'
t rootwrite touch /newfile
t tmpwrite touch /tmp/newfile
t shmwrite touch /dev/shm/x
t cgroupmem test -d /sys/fs/cgroup/memory
t cgroupwrite mkdir /sys/fs/cgroup/memory/x
t sysro touch /sys/kernel/x
echo mqueue=$(stat -f -c %T /dev/mqueue)
echo mynull=$(stat -c '%F|%a|%u|%g|%t:%T' /dev/mynull)
echo tun=$(stat -c '%F|%a|%t:%T' /dev/net/tun)
echo fifo=$(stat -c '%F|%a' /dev/myfifo)
`}, runOpts{})

	expect(t, res, map[string]string{
		"setup": "ok", "pid": "1", "cwd": "/", "leakedfds": "0",
		"marker": "yes", "hostwork": "no",
		"procfs": "proc", "sysfs": "sysfs", "tmpfs": "tmpfs", "tmpmode": "1777", "tmpsize": "1048576",
		"proc1": "yes", "nullchar": "yes", "nullrdev": "1:3", "nullwrite": "yes", "zero": "3", "urandom": "5",
		"devfd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "ptmx": "pts/ptmx", "console": "yes",
		"rodata": "yes", "rowrite": "no", "rwwrite": "yes", "hostfile": "yes", "hostfilewrite": "no",
		"escape": "yes", "evil": "yes",
		"masked": "yes", "masklen": "0", "keyslen": "0", "unmaskedlen": "yes", "firmware": "0", "firmwarewrite": "no",
		"procsyswrite": "no", "sysrqwrite": "no",
		"rootwrite": "no", "tmpwrite": "yes", "shmwrite": "yes",
		"cgroupmem": "yes", "cgroupwrite": "no", "sysro": "no",
		"mynull": "character special file|600|1000|1001|1:3", "tun": "character special file|600|a:c8",
		"fifo": "fifo|600",
	})
	if got, _ := os.ReadFile(filepath.Join(rwDir, "new")); string(got) != "hello\n" {
		t.Errorf("rw bind write not visible on host: %q", got)
	}
	if _, err := os.Stat(filepath.Join(roDir, "new")); err == nil {
		t.Errorf("ro bind accepted a write")
	}
	if got, _ := os.ReadFile(hostFile); string(got) != "file-data" {
		t.Errorf("host file changed: %q", got)
	}
	for _, p := range []string{"/tmp/" + escapeName, "/" + targetName} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("mount destination escaped the rootfs: %s exists on the host", p)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "tmp", escapeName)); err == nil {
		t.Errorf("escape mount point created under the image's /tmp instead of the container tmpfs")
	}
	if _, err := os.Stat(filepath.Join(root, targetName, "sub")); err != nil {
		t.Errorf("symlinked destination did not land inside the rootfs: %v", err)
	}
}

func TestProcSymlinkRefused(t *testing.T) {
	requireRoot(t)
	for _, tc := range []struct{ dest, link string }{
		{"/proc", "/tmp"},
		{"/proc", "../../../../../tmp"},
		{"/sys", "/tmp"},
	} {
		t.Run(tc.dest+"->"+tc.link, func(t *testing.T) {
			_, root := newRootfs(t)
			name := strings.TrimPrefix(tc.dest, "/")
			if err := os.Remove(filepath.Join(root, name)); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(tc.link, filepath.Join(root, name)); err != nil {
				t.Fatal(err)
			}
			spec := baseSpec(root)
			res, out := runChild(t, helperConfig{Spec: spec, Opts: Options{Rootfs: root}}, runOpts{})
			if res["setup"] == "ok" {
				t.Fatalf("Setup accepted %s as a symlink", tc.dest)
			}
			want := fmt.Sprintf("on %s: destination is a symlink", tc.dest)
			if !strings.Contains(out, want) {
				t.Errorf("error does not say %q:\n%s", want, out)
			}
			expect(t, res, map[string]string{"errclass": "symlink"})
		})
	}
}

func TestProcNotDirectoryRefused(t *testing.T) {
	requireRoot(t)
	_, root := newRootfs(t)
	if err := os.Remove(filepath.Join(root, "proc")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "proc"), "not a dir")
	res, out := runChild(t, helperConfig{Spec: baseSpec(root), Opts: Options{Rootfs: root}}, runOpts{})
	expect(t, res, map[string]string{"errclass": "notdir"})
	if !strings.Contains(out, "on /proc:") {
		t.Errorf("error does not name /proc:\n%s", out)
	}
}

func TestDanglingSymlinkDestination(t *testing.T) {
	requireRoot(t)
	tmp, root := newRootfs(t)
	src := mkdir(t, filepath.Join(tmp, "src"))
	name := fmt.Sprintf("berth-dangling-%d", time.Now().UnixNano())
	if err := os.Symlink("/../../"+name, filepath.Join(root, "dangling")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll("/" + name) })
	spec := baseSpec(root)
	spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/dangling/sub", Type: "bind", Source: src, Options: []string{"bind"}})
	res, _ := runChild(t, helperConfig{Spec: spec, Opts: Options{Rootfs: root}, Script: "t ok true"}, runOpts{})
	// Either refused, or created inside the rootfs; never on the host.
	if _, err := os.Lstat("/" + name); err == nil {
		t.Fatalf("/%s was created on the host", name)
	}
	if res["setup"] == "ok" {
		if _, err := os.Stat(filepath.Join(root, name, "sub")); err != nil {
			t.Errorf("Setup succeeded but the mount point is not inside the rootfs: %v", err)
		}
	}
}

// The image's /dev/null is a symlink to a host file. With a /dev tmpfs the
// node is created fresh; with the image's own /dev it is replaced. Either
// way masking must use a real null device and the host file is untouched.
func TestDevNullSymlinkReplaced(t *testing.T) {
	requireRoot(t)
	tmp, root := newRootfs(t)
	victim := filepath.Join(tmp, "victim")
	writeFile(t, victim, "secret")
	if err := os.Symlink(victim, filepath.Join(root, "dev", "null")); err != nil {
		t.Fatal(err)
	}
	spec := baseSpec(root)
	// Keep the image's /dev: drop the /dev tmpfs and the mounts below it.
	var mounts []specs.Mount
	for _, m := range spec.Mounts {
		if !strings.HasPrefix(m.Destination, "/dev") {
			mounts = append(mounts, m)
		}
	}
	spec.Mounts = mounts
	res, _ := runChild(t, helperConfig{Spec: spec, Opts: Options{Rootfs: root}, Script: `
t nullchar test -c /dev/null
t masked test -e /proc/timer_list
echo masklen=$(cat /proc/timer_list | wc -c)
echo keyslen=$(cat /proc/keys | wc -c)
t unmaskedlen sh -c 'test $(cat /proc/version | wc -c) -gt 0'
`}, runOpts{})
	expect(t, res, map[string]string{"setup": "ok", "nullchar": "yes", "masked": "yes", "masklen": "0", "keyslen": "0", "unmaskedlen": "yes"})
	if got, _ := os.ReadFile(victim); string(got) != "secret" {
		t.Errorf("host file changed: %q", got)
	}
	if fi, err := os.Lstat(victim); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("host file replaced: %v %v", fi, err)
	}
}

// With /dev bind mounted, no nodes are created, so the symlinked /dev/null
// reaches the masking step, which must refuse it rather than bind whatever
// it points to over the masked paths.
func TestDevNullSymlinkRefusedForMasking(t *testing.T) {
	requireRoot(t)
	tmp, root := newRootfs(t)
	writeFile(t, filepath.Join(root, "etc", "secret"), "secret")
	devDir := mkdir(t, filepath.Join(tmp, "devdir"))
	if err := os.Symlink("/etc/secret", filepath.Join(devDir, "null")); err != nil {
		t.Fatal(err)
	}
	spec := baseSpec(root)
	spec.Mounts = []specs.Mount{
		spec.Mounts[0],
		{Destination: "/dev", Type: "bind", Source: devDir, Options: []string{"rbind"}},
	}
	res, out := runChild(t, helperConfig{Spec: spec, Opts: Options{Rootfs: root}, Script: "t ok true"}, runOpts{})
	if res["setup"] == "ok" {
		t.Fatalf("masking used a symlinked /dev/null:\n%s", out)
	}
	expect(t, res, map[string]string{"errclass": "devnull"})
	if !strings.Contains(out, "mask on /proc/timer_list") {
		t.Errorf("error does not name the masked path:\n%s", out)
	}
	if got, _ := os.ReadFile(filepath.Join(root, "etc", "secret")); string(got) != "secret" {
		t.Errorf("symlink target changed: %q", got)
	}
	if fi, err := os.Lstat(filepath.Join(devDir, "null")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("host /dev bind source was modified: %v %v", fi, err)
	}
}

func TestUserNamespace(t *testing.T) {
	requireRoot(t)
	tmp, root := newRootfs(t)
	roDir := mkdir(t, filepath.Join(tmp, "host-ro"))
	writeFile(t, filepath.Join(roDir, "data"), "ro-data")
	spec := baseSpec(root)
	spec.Mounts = append(spec.Mounts,
		specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		specs.Mount{Destination: "/mnt/ro", Type: "bind", Source: roDir, Options: []string{"rbind", "ro", "nosuid", "nodev"}},
	)
	spec.Root.Readonly = true
	fuseMode := os.FileMode(0o666)
	spec.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: &fuseMode}}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		spec.Linux.Devices = nil
	}
	res, _ := runChild(t, helperConfig{Spec: spec, Opts: Options{Rootfs: root, InUserNS: true}, Script: `
t marker test -e /marker
t nullchar test -c /dev/null
t nullwrite sh -c 'echo x > /dev/null'
echo urandom=$(head -c 5 /dev/urandom | wc -c)
echo zero=$(head -c 3 /dev/zero | wc -c)
t nullmount grep -q ' /dev/null ' /proc/self/mountinfo
echo procfs=$(stat -f -c %T /proc)
t masked test -e /proc/timer_list
echo masklen=$(cat /proc/timer_list | wc -c)
echo keyslen=$(cat /proc/keys | wc -c)
t unmaskedlen sh -c 'test $(cat /proc/version | wc -c) -gt 0'
t procsyswrite sh -c 'echo other > /proc/sys/kernel/hostname'
t rowrite touch /mnt/ro/new
t rootwrite touch /newfile
t mknod mknod /tmp/n c 1 3
echo devfd=$(readlink /dev/fd)
`}, runOpts{userns: true})
	expect(t, res, map[string]string{
		"setup": "ok", "leakedfds": "0", "marker": "yes", "nullchar": "yes", "nullwrite": "yes", "urandom": "5", "zero": "3",
		"nullmount": "yes", "procfs": "proc", "masked": "yes", "masklen": "0", "keyslen": "0", "unmaskedlen": "yes", "procsyswrite": "no",
		"rowrite": "no", "rootwrite": "no", "mknod": "no", "devfd": "/proc/self/fd",
	})
}

func TestNoPivot(t *testing.T) {
	requireRoot(t)
	_, root := newRootfs(t)
	spec := baseSpec(root)
	res, _ := runChild(t, helperConfig{Spec: spec, Opts: Options{Rootfs: root, NoPivot: true}, Script: `
t marker test -e /marker
t hostwork test -e /work
echo procfs=$(stat -f -c %T /proc)
t nullchar test -c /dev/null
t masked test -e /proc/timer_list
echo masklen=$(cat /proc/timer_list | wc -c)
echo keyslen=$(cat /proc/keys | wc -c)
t unmaskedlen sh -c 'test $(cat /proc/version | wc -c) -gt 0'
t procsyswrite sh -c 'echo other > /proc/sys/kernel/hostname'
`}, runOpts{})
	expect(t, res, map[string]string{
		"setup": "ok", "cwd": "/", "leakedfds": "0", "marker": "yes", "hostwork": "no", "procfs": "proc",
		"nullchar": "yes", "masked": "yes", "masklen": "0", "keyslen": "0", "unmaskedlen": "yes", "procsyswrite": "no",
	})
}

func TestRootfsPropagation(t *testing.T) {
	requireRoot(t)
	for prop, want := range map[string]string{"rshared": "yes", "rprivate": "no", "rslave": "no"} {
		t.Run(prop, func(t *testing.T) {
			_, root := newRootfs(t)
			spec := baseSpec(root)
			spec.Linux.RootfsPropagation = prop
			res, _ := runChild(t, helperConfig{Spec: spec, Opts: Options{Rootfs: root}, Script: `
grep " / / " /proc/self/mountinfo
t rootshared sh -c "awk '\$5 == \"/\"' /proc/self/mountinfo | grep -q shared:"
t marker test -e /marker
`}, runOpts{})
			expect(t, res, map[string]string{"setup": "ok", "marker": "yes", "rootshared": want})
		})
	}
}

func TestIDMapUnsupported(t *testing.T) {
	requireRoot(t)
	tmp, root := newRootfs(t)
	spec := baseSpec(root)
	spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/mnt/x", Type: "bind", Source: tmp, Options: []string{"bind", "idmap"}})
	res, out := runChild(t, helperConfig{Spec: spec, Opts: Options{Rootfs: root}}, runOpts{})
	expect(t, res, map[string]string{"errclass": "unsupported"})
	if !strings.Contains(out, "on /mnt/x") {
		t.Errorf("error does not name /mnt/x:\n%s", out)
	}
}

func TestResolveInRoot(t *testing.T) {
	tmp := t.TempDir()
	root := mkdir(t, filepath.Join(tmp, "root"))
	mkdir(t, filepath.Join(root, "inside"))
	mkdir(t, filepath.Join(tmp, "inside"))
	if err := os.Symlink("../../inside", filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	f, err := ResolveInRoot(root, "link")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var got, want unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &got); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(filepath.Join(root, "inside"), &want); err != nil {
		t.Fatal(err)
	}
	if got.Ino != want.Ino || got.Dev != want.Dev {
		t.Errorf("link resolved outside the root")
	}
	flags, err := unix.FcntlInt(f.Fd(), unix.F_GETFD, 0)
	if err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("handle is not close-on-exec")
	}
}

func TestParseMountOptions(t *testing.T) {
	o := parseMountOptions([]string{"rbind", "ro", "nosuid", "noatime", "rnodev", "rprivate", "size=1m", "mode=755", "sync", "x-foo"})
	if !o.bind || !o.recursive {
		t.Errorf("rbind not parsed: %+v", o)
	}
	if o.attrSet != unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOATIME || o.attrClr != unix.MOUNT_ATTR__ATIME {
		t.Errorf("attrs: set %#x clr %#x", o.attrSet, o.attrClr)
	}
	if o.recSet != unix.MOUNT_ATTR_NODEV {
		t.Errorf("recursive attrs: %#x", o.recSet)
	}
	if len(o.props) != 1 || o.props[0].flag != unix.MS_PRIVATE || !o.props[0].recursive {
		t.Errorf("propagation: %+v", o.props)
	}
	if strings.Join(o.data, ",") != "size=1m,mode=755,sync" {
		t.Errorf("data: %q", o.data)
	}
	o = parseMountOptions([]string{"ro", "rw"})
	if o.attrSet != 0 || o.attrClr != unix.MOUNT_ATTR_RDONLY {
		t.Errorf("later rw must win: set %#x clr %#x", o.attrSet, o.attrClr)
	}
}

// Package engine_test drives the built berth binary through the container engine end to end:
// `berth run` and the whole container lifecycle, the monitor that outlives the CLI, image
// config, secure defaults, volumes, concurrency, bad input and the clean-up invariant (issue
// 4). make sets BERTH_BIN, BERTH_RUNTIME, BERTH_BUNDLE and BERTH_MINBASE; without them, or
// without root, the suite is skipped.
//
// Every test gets its own data root (newEnv) under one temp dir of the run. When a test ends,
// its env removes every container with `rm -f` as a user would, then checks that nothing of
// them remains (mounts under the root, cgroups, monitor processes, runtime state, container
// directories) and fails the test if anything does; then it removes by force whatever was
// left, so that the suite can run again on the same machine. TestMain checks the whole run
// once more at the end and fails it if anything leaked.
package engine_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/network"
)

var (
	berthBin     string // bin/berth
	runtimeBin   string // bin/berth-runtime (BERTH_RUNTIME), "" to let berth find it
	bundleRootfs string // the busybox bundle's rootfs
	minbaseGz    string // the Debian minbase tarball ("" skips the Debian tests)
	baseDir      string // every data root of this run lives under it
	busyboxTar   string // the busybox image's rootfs tar (with nobody in /etc/passwd)

	// Every data root and container id this run made, for TestMain's final check.
	seenMu    sync.Mutex
	seenRoots = map[string]bool{}
	seenIDs   = map[string]bool{}

	// Each data root's default bridge gets a subnet of its own (BERTH_DEFAULT_SUBNET), as
	// do the user networks tests make (subnet()): parallel tests never share an address.
	subnetSeq atomic.Int32
)

// nextSubnet is a /24 of the tests' pool 10.251.0.0/16 not used by this run yet and not
// routed on the host (another test process, or a developer's network, may hold one). The
// sequence starts at an offset of the pid, so that two test processes rarely race for one.
func nextSubnet() string {
	routes, _ := exec.Command("ip", "-4", "route", "show").Output()
	for i := 0; i < 256; i++ {
		n := (int(subnetSeq.Add(1)) + os.Getpid()) % 256
		if !strings.Contains(string(routes), fmt.Sprintf("10.251.%d.", n)) {
			return fmt.Sprintf("10.251.%d.0/24", n)
		}
	}
	return "10.251.255.0/24"
}

func TestMain(m *testing.M) {
	skip := func(why string) {
		fmt.Fprintln(os.Stderr, "skipping the engine tests:", why)
		os.Exit(0)
	}
	if os.Geteuid() != 0 {
		skip("they need root")
	}
	berthBin, runtimeBin = os.Getenv("BERTH_BIN"), os.Getenv("BERTH_RUNTIME")
	bundle := os.Getenv("BERTH_BUNDLE")
	minbaseGz = os.Getenv("BERTH_MINBASE")
	if berthBin == "" || bundle == "" {
		skip("set BERTH_BIN and BERTH_BUNDLE (make does)")
	}
	var err error
	if berthBin, err = filepath.Abs(berthBin); err != nil {
		skip(err.Error())
	}
	for _, b := range []string{berthBin, filepath.Join(filepath.Dir(berthBin), "berth-monitor"), filepath.Join(filepath.Dir(berthBin), "berth-init")} {
		if _, err := os.Stat(b); err != nil {
			skip(fmt.Sprintf("%s missing (make build)", b))
		}
	}
	if runtimeBin == "" {
		if _, err := os.Stat(filepath.Join(filepath.Dir(berthBin), "berth-runtime")); err != nil {
			skip("no berth-runtime next to berth and BERTH_RUNTIME not set (make build)")
		}
	} else {
		if runtimeBin, err = filepath.Abs(runtimeBin); err != nil {
			skip(err.Error())
		}
		if _, err := os.Stat(runtimeBin); err != nil {
			skip(fmt.Sprintf("BERTH_RUNTIME %s missing (make build)", runtimeBin))
		}
	}
	bundleRootfs, _ = filepath.Abs(filepath.Join(bundle, "rootfs"))
	if _, err := os.Stat(filepath.Join(bundleRootfs, "bin", "busybox")); err != nil {
		skip("no busybox rootfs in BERTH_BUNDLE (make bundle)")
	}
	if minbaseGz != "" {
		if minbaseGz, err = filepath.Abs(minbaseGz); err != nil {
			skip(err.Error())
		}
	}
	if baseDir, err = os.MkdirTemp("/tmp", "berth-e2e-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// The binaries are copied first: other work on this machine may rebuild bin/ meanwhile.
	if err := copyBinaries(filepath.Join(baseDir, "bin")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(baseDir)
		os.Exit(1)
	}
	busyboxTar = filepath.Join(baseDir, "busybox.tar")
	if err := testutil.WriteRootfsTar(busyboxTar, bundleRootfs, map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1001:app:/home/app:/bin/sh\n",
		"etc/group":  "root:x:0:\nnogroup:x:65534:\nappgrp:x:1001:\n",
	}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if leaks := finalLeaks(); len(leaks) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: the engine tests left %d thing(s) behind:\n  %s\n", len(leaks), strings.Join(leaks, "\n  "))
		code = 1
	}
	os.Exit(code)
}

// copyBinaries copies berth, berth-runtime, berth-monitor and berth-init into dir and points
// berthBin and runtimeBin at the copies (berth finds the monitor and init next to itself).
func copyBinaries(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	src := filepath.Dir(berthBin)
	rt := runtimeBin
	if rt == "" {
		rt = filepath.Join(src, "berth-runtime")
	}
	for name, from := range map[string]string{
		"berth": berthBin, "berth-runtime": rt,
		"berth-monitor": filepath.Join(src, "berth-monitor"), "berth-init": filepath.Join(src, "berth-init"),
	} {
		b, err := os.ReadFile(from)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o755); err != nil {
			return err
		}
	}
	berthBin, runtimeBin = filepath.Join(dir, "berth"), filepath.Join(dir, "berth-runtime")
	return nil
}

// finalLeaks checks the whole run: no mount or process under the base dir, no runtime root of
// any data root used, no cgroup of any container made; then it removes the base dir.
func finalLeaks() []string {
	var leaks []string
	seenMu.Lock()
	defer seenMu.Unlock()
	for _, p := range procsMentioning(baseDir) {
		leaks = append(leaks, fmt.Sprintf("process %d: %s", p.pid, p.cmdline))
		syscall.Kill(p.pid, syscall.SIGKILL)
	}
	var ids []string
	for id := range seenIDs {
		ids = append(ids, id)
	}
	for _, cg := range cgroupsOf(ids) {
		leaks = append(leaks, "cgroup "+cg)
		killCgroup(cg)
	}
	if mps := testutil.MountsUnder(baseDir); len(mps) > 0 {
		leaks = append(leaks, fmt.Sprintf("mounts under %s: %v", baseDir, mps))
		testutil.UnmountUnder(baseDir)
	}
	for root := range seenRoots {
		if ns, err := network.Open(root); err == nil {
			for _, l := range ns.Leftovers() {
				leaks = append(leaks, l+" of "+root)
			}
			ns.Reset(context.Background())
		}
		rt := runtimeRootOf(root)
		if _, err := os.Stat(rt); err == nil {
			leaks = append(leaks, "runtime root "+rt)
			os.RemoveAll(rt)
		}
	}
	if err := os.RemoveAll(baseDir); err != nil {
		leaks = append(leaks, err.Error())
	}
	return leaks
}

// runtimeRootOf is where the engine keeps the runtime state of a data root
// (container/manager.go runtimeRoot).
func runtimeRootOf(root string) string {
	sum := sha256.Sum256([]byte(root))
	return "/run/berth/rt-" + hex.EncodeToString(sum[:6])
}

// env is one data root.
type env struct {
	t    *testing.T
	dir  string // the env's scratch dir (holds root)
	root string // the data root
	rt   string // its runtime root

	defaultSubnet string // of its default bridge network
}

// subnet is a fresh /24 for a user network of this test.
func (e *env) subnet() string { return nextSubnet() }

// newEnv makes a fresh data root; its cleanup removes every container and checks that
// nothing of them is left (see the package comment).
func newEnv(t *testing.T) *env {
	t.Helper()
	dir, err := os.MkdirTemp(baseDir, strings.ReplaceAll(t.Name(), "/", "_")+"-")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: dir, root: filepath.Join(dir, "root"), defaultSubnet: nextSubnet()}
	e.rt = runtimeRootOf(e.root)
	seenMu.Lock()
	seenRoots[e.root] = true
	seenMu.Unlock()
	t.Cleanup(e.cleanup)
	return e
}

// newBusyboxEnv is newEnv with busybox:latest imported.
func newBusyboxEnv(t *testing.T) *env {
	e := newEnv(t)
	e.importImage(busyboxTar, "busybox:latest", `CMD ["sh"]`)
	return e
}

// importImage imports a rootfs tarball as ref with --change lines.
func (e *env) importImage(tarball, ref string, changes ...string) string {
	e.t.Helper()
	args := []string{"import"}
	for _, c := range changes {
		args = append(args, "-c", c)
	}
	return strings.TrimSpace(e.must(append(args, tarball, ref)...))
}

// result is one berth command's outcome.
type result struct {
	Out, Err string
	Code     int // -1: killed by a signal
	Dur      time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("exit %d after %v\nstdout: %q\nstderr: %q", r.Code, r.Dur.Round(time.Millisecond), r.Out, r.Err)
}

// cmd makes a berth command for this data root (not started).
func (e *env) cmd(ctx context.Context, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, berthBin, append([]string{"--root", e.root}, args...)...)
	c.Env = e.environ()
	c.Dir = e.dir
	// Its own process group, killed as one on timeout (monitors are in their own sessions).
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	return c
}

func (e *env) environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "BERTH_RUNTIME_ROOT=") || strings.HasPrefix(kv, "BERTH_ROOT=") || strings.HasPrefix(kv, "BERTH_RUNTIME=") {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "DOCKER_CONFIG="+filepath.Join(e.dir, "docker-config"), "BERTH_CONFIG="+filepath.Join(e.dir, "berth-config.json"),
		"BERTH_DEFAULT_SUBNET="+e.defaultSubnet)
	if runtimeBin != "" {
		env = append(env, "BERTH_RUNTIME="+runtimeBin)
	}
	return env
}

// berth runs a berth command to completion (at most a minute).
func (e *env) berth(args ...string) result {
	e.t.Helper()
	return e.berthIn(nil, time.Minute, args...)
}

// berthIn runs a berth command with stdin and a timeout. stdout and stderr go to files, so a
// process that inherits them by mistake (a monitor) cannot make the test hang.
func (e *env) berthIn(stdin io.Reader, timeout time.Duration, args ...string) result {
	e.t.Helper()
	r, err := e.try(stdin, timeout, args...)
	if err != nil {
		e.t.Fatalf("berth %s: %v\n%s", strings.Join(args, " "), err, r)
	}
	return r
}

// try is berthIn for any goroutine: it never calls the test.
func (e *env) try(stdin io.Reader, timeout time.Duration, args ...string) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c := e.cmd(ctx, args...)
	outF, err := os.CreateTemp(e.dir, "stdout-")
	if err != nil {
		return result{}, err
	}
	errF, err := os.CreateTemp(e.dir, "stderr-")
	if err != nil {
		outF.Close()
		return result{}, err
	}
	defer func() {
		outF.Close()
		errF.Close()
		os.Remove(outF.Name())
		os.Remove(errF.Name())
	}()
	c.Stdout, c.Stderr = outF, errF
	if stdin != nil {
		c.Stdin = stdin
	}
	start := time.Now()
	err = c.Run()
	r := result{Dur: time.Since(start)}
	if err != nil && c.ProcessState == nil {
		return r, err
	}
	r.Code = c.ProcessState.ExitCode()
	o, _ := os.ReadFile(outF.Name())
	s, _ := os.ReadFile(errF.Name())
	r.Out, r.Err = string(o), string(s)
	noteIDs(r.Out)
	if ctx.Err() != nil {
		return r, fmt.Errorf("timed out after %v", timeout)
	}
	return r, nil
}

// must runs a berth command that must succeed and returns its stdout.
func (e *env) must(args ...string) string {
	e.t.Helper()
	r := e.berth(args...)
	if r.Code != 0 {
		e.t.Fatalf("berth %s: %s", strings.Join(args, " "), r)
	}
	return r.Out
}

// mustID runs a command that prints a container id (run -d, create) and returns it.
func (e *env) mustID(args ...string) string {
	e.t.Helper()
	out := strings.TrimSpace(e.must(args...))
	if !fullID.MatchString(out) {
		e.t.Fatalf("berth %s printed %q, want a 64-hex container id", strings.Join(args, " "), out)
	}
	return out
}

var fullID = regexp.MustCompile(`^[0-9a-f]{64}$`)
var anyID = regexp.MustCompile(`[0-9a-f]{64}`)

func noteIDs(s string) {
	ids := anyID.FindAllString(s, -1)
	if len(ids) == 0 {
		return
	}
	seenMu.Lock()
	for _, id := range ids {
		seenIDs[id] = true
	}
	seenMu.Unlock()
}

// bg is a berth command running in the background (a foreground `run`, `logs -f`, ...).
type bg struct {
	cmd  *exec.Cmd
	out  *syncBuf
	errb *syncBuf
	done chan struct{}
}

// start starts a berth command in the background; the test's end kills it if still running.
func (e *env) start(stdin io.Reader, args ...string) *bg {
	e.t.Helper()
	c := e.cmd(context.Background(), args...)
	b := &bg{cmd: c, out: &syncBuf{}, errb: &syncBuf{}, done: make(chan struct{})}
	c.Stdout, c.Stderr, c.Stdin = b.out, b.errb, stdin
	c.WaitDelay = 2 * time.Second
	if err := c.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { c.Wait(); close(b.done) }()
	e.t.Cleanup(func() {
		select {
		case <-b.done:
		default:
			syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
			<-b.done
		}
	})
	return b
}

// wait waits for the command to exit and returns its exit code (-1: killed by a signal).
func (b *bg) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-b.done:
	case <-time.After(timeout):
		t.Fatalf("%v did not exit within %v; stdout %q stderr %q", b.cmd.Args, timeout, b.out.String(), b.errb.String())
	}
	return b.cmd.ProcessState.ExitCode()
}

// syncBuf is a bytes.Buffer safe for a writer goroutine and a reading test.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls cond every 20 ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// inspectDoc is the part of docker's container inspect document the tests read.
type inspectDoc struct {
	ID      string `json:"Id"`
	Name    string
	Created string
	Path    string
	Args    []string
	Image   string
	State   struct {
		Status     string
		Running    bool
		Paused     bool
		Restarting bool
		OOMKilled  bool
		Pid        int
		ExitCode   int
		Error      string
		StartedAt  string
		FinishedAt string
		Health     *struct {
			Status        string
			FailingStreak int
			Log           []struct {
				ExitCode int
				Output   string
			}
		}
	}
	RestartCount int
	Config       struct {
		Image      string
		Hostname   string
		Env        []string
		Cmd        []string
		Entrypoint []string
		WorkingDir string
		User       string
		Labels     map[string]string
		StopSignal string
	}
	HostConfig struct {
		Memory        int64
		Privileged    bool
		RestartPolicy struct {
			Name              string
			MaximumRetryCount int
		}
	}
	Mounts []struct {
		Type        string
		Name        string
		Source      string
		Destination string
		RW          bool
	}
	LogPath string
}

// inspect returns the inspect document of one container.
func (e *env) inspect(name string) inspectDoc {
	e.t.Helper()
	var docs []inspectDoc
	out := e.must("inspect", name)
	if err := json.Unmarshal([]byte(out), &docs); err != nil || len(docs) != 1 {
		e.t.Fatalf("inspect %s: %v: %s", name, err, out)
	}
	return docs[0]
}

// status is State.Status of a container ("" when inspect fails).
func (e *env) status(name string) string {
	r := e.berth("inspect", "-f", "{{.State.Status}}", name)
	if r.Code != 0 {
		return ""
	}
	return strings.TrimSpace(r.Out)
}

// waitStatus waits until a container has the status.
func (e *env) waitStatus(name, want string, timeout time.Duration) {
	e.t.Helper()
	waitFor(e.t, timeout, name+" to be "+want, func() bool { return e.status(name) == want })
}

// waitExited waits until the container exited and its monitor finished (clean-up included).
func (e *env) waitExited(name string, timeout time.Duration) {
	e.t.Helper()
	e.waitStatus(name, "exited", timeout)
	e.waitNoMonitor(name, timeout)
}

// waitNoMonitor waits until nothing supervises the container: no monitor process of its
// own, and no supervisor in the hub (which holds <ctr>/monitor.lock while it runs).
func (e *env) waitNoMonitor(name string, timeout time.Duration) {
	e.t.Helper()
	dir := filepath.Join(e.root, "containers", e.id(name))
	waitFor(e.t, timeout, "the monitor of "+name+" to exit", func() bool {
		return len(procsMentioning(dir)) == 0 && !lockHeld(filepath.Join(dir, "monitor.lock"))
	})
}

// lockHeld says whether someone holds an flock on path.
func lockHeld(path string) bool {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer syscall.Close(fd)
	if err := syscall.Flock(fd, syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		return err == syscall.EWOULDBLOCK
	}
	return false
}

// id is a container's full id.
func (e *env) id(name string) string {
	e.t.Helper()
	return e.inspect(name).ID
}

// logs is `berth logs NAME` (stdout and stderr together).
func (e *env) logs(name string) string {
	e.t.Helper()
	r := e.berth("logs", name)
	if r.Code != 0 {
		e.t.Fatalf("logs %s: %s", name, r)
	}
	return r.Out + r.Err
}

// waitLog waits until the container's log holds s.
func (e *env) waitLog(name, s string, timeout time.Duration) {
	e.t.Helper()
	waitFor(e.t, timeout, fmt.Sprintf("%q in the logs of %s", s, name), func() bool {
		r := e.berth("logs", name)
		return strings.Contains(r.Out+r.Err, s)
	})
}

// exec runs `berth exec NAME args...` and returns its stdout; it must succeed.
func (e *env) exec(name string, args ...string) string {
	e.t.Helper()
	return e.must(append([]string{"exec", name}, args...)...)
}

// oneLine checks that a failing command said what went wrong in exactly one non-empty line
// on stderr (and nothing on stdout).
func oneLine(t *testing.T, what string, r result) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(r.Err, "\n"), "\n")
	if len(lines) != 1 || strings.TrimSpace(lines[0]) == "" {
		t.Errorf("%s: want one line on stderr, got %d: %q", what, len(lines), r.Err)
	}
	if r.Out != "" {
		t.Errorf("%s: nothing expected on stdout, got %q", what, r.Out)
	}
}

// proc is one process of the host.
type proc struct {
	pid     int
	cmdline string
}

// procsMentioning lists the processes (but this one) whose command line contains s.
func procsMentioning(s string) []proc {
	var out []proc
	ents, _ := os.ReadDir("/proc")
	self := os.Getpid()
	for _, d := range ents {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/cmdline")
		if err != nil || len(b) == 0 {
			continue
		}
		if bytes.Contains(b, []byte(s)) {
			if st, _ := os.ReadFile("/proc/" + d.Name() + "/stat"); isZombie(st) {
				continue
			}
			out = append(out, proc{pid, string(bytes.ReplaceAll(bytes.TrimRight(b, "\x00"), []byte{0}, []byte{' '}))})
		}
	}
	return out
}

func isZombie(stat []byte) bool {
	i := bytes.LastIndexByte(stat, ')')
	return i > 0 && i+2 < len(stat) && stat[i+2] == 'Z'
}

// monitorsOf lists the berth-monitor processes of a data root.
func monitorsOf(root string) []proc {
	var out []proc
	for _, p := range procsMentioning(root) {
		if strings.Contains(p.cmdline, "berth-monitor") {
			out = append(out, p)
		}
	}
	return out
}

// cgroupsOf lists the cgroup directories (every hierarchy) of the containers.
func cgroupsOf(ids []string) []string {
	var out []string
	for _, id := range ids {
		m, _ := filepath.Glob("/sys/fs/cgroup/*/berth/" + id)
		out = append(out, m...)
		if _, err := os.Stat("/sys/fs/cgroup/berth/" + id); err == nil {
			out = append(out, "/sys/fs/cgroup/berth/"+id)
		}
	}
	sort.Strings(out)
	return out
}

// killCgroup kills every process in a cgroup (and below) and removes it.
func killCgroup(dir string) {
	for range 50 {
		var pids []int
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Name() == "cgroup.procs" {
				b, _ := os.ReadFile(p)
				for _, f := range strings.Fields(string(b)) {
					if pid, err := strconv.Atoi(f); err == nil {
						pids = append(pids, pid)
					}
				}
			}
			return nil
		})
		for _, pid := range pids {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		if f := filepath.Join(dir, "freezer.state"); fileExists(f) {
			os.WriteFile(f, []byte("THAWED"), 0o644)
		}
		var dirs []string
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			syscall.Rmdir(dirs[i])
		}
		if !fileExists(dir) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func fileExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// containerIDs is every container id the data root ever had: the container directories and
// the ids in events.log.
func (e *env) containerIDs() []string {
	set := map[string]bool{}
	ents, _ := os.ReadDir(filepath.Join(e.root, "containers"))
	for _, d := range ents {
		if m := anyID.FindString(d.Name()); m != "" {
			set[m] = true
		}
	}
	if b, err := os.ReadFile(filepath.Join(e.root, "events.log")); err == nil {
		for _, id := range anyID.FindAllString(string(b), -1) {
			set[id] = true
		}
	}
	var ids []string
	for id := range set {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	seenMu.Lock()
	for _, id := range ids {
		seenIDs[id] = true
	}
	seenMu.Unlock()
	return ids
}

// leaks lists what is left of the given containers of this data root: mounts under the root,
// their cgroups, monitor (or any) processes naming the root or the runtime root, runtime
// state, container directories and names. Call it once every container has been removed.
func (e *env) leaks(ids []string) []string {
	var out []string
	for _, mp := range testutil.MountsUnder(e.root) {
		out = append(out, "mount "+mp)
	}
	for _, cg := range cgroupsOf(ids) {
		out = append(out, "cgroup "+cg)
	}
	for _, s := range []string{e.root, e.rt} {
		for _, p := range procsMentioning(s) {
			// A user network's DNS server belongs to the network, not to a container: it
			// goes with the network (checked after the clean-up's network reset).
			if strings.Contains(p.cmdline, "network dns-server") {
				continue
			}
			out = append(out, fmt.Sprintf("process %d: %s", p.pid, p.cmdline))
		}
	}
	if ents, err := os.ReadDir(e.rt); err == nil {
		for _, d := range ents {
			if !strings.HasPrefix(d.Name(), ".") { // caches (.seccomp-cache) are not container state
				out = append(out, "runtime state "+filepath.Join(e.rt, d.Name()))
			}
		}
	}
	out = append(out, e.networkLeaks(ids)...)
	for _, sub := range []string{"containers", "containers/names"} {
		ents, _ := os.ReadDir(filepath.Join(e.root, sub))
		for _, d := range ents {
			if sub == "containers" && d.Name() == "names" {
				continue
			}
			out = append(out, "left in "+sub+": "+d.Name())
		}
	}
	return out
}

// checkClean fails the test if anything of the data root's containers is left, but for what
// mentions one of except (containers the test keeps, by id and name).
func (e *env) checkClean(when string, except ...string) {
	e.t.Helper()
	for _, l := range e.leaks(e.containerIDs()) {
		if !slices.ContainsFunc(except, func(x string) bool { return strings.Contains(l, x) }) {
			e.t.Errorf("%s: left behind: %s", when, l)
		}
	}
}

// cleanup removes every container as a user would (rm -f), checks that nothing is left,
// then removes by force whatever is (processes, mounts, cgroups, runtime root, the dir).
func (e *env) cleanup() {
	t := e.t
	if fileExists(filepath.Join(e.root, "containers")) {
		r := e.berthIn(nil, 2*time.Minute, "ps", "-a", "-q", "--no-trunc")
		if ids := strings.Fields(r.Out); len(ids) > 0 {
			rr := e.berthIn(nil, 2*time.Minute, append([]string{"rm", "-f", "-v"}, ids...)...)
			if rr.Code != 0 {
				t.Errorf("clean-up: rm -f: %s", rr)
			}
			if rr.Dur > 5*time.Second {
				t.Errorf("clean-up: rm -f of %d containers took %v", len(ids), rr.Dur.Round(time.Millisecond))
			}
		}
	}
	ids := e.containerIDs()
	for _, l := range e.leaks(ids) {
		t.Errorf("after rm -f of every container: left behind: %s", l)
	}
	// The data root's networks go too: bridges, firewall table, DNS servers, run dir.
	if ns, err := network.Open(e.root); err == nil {
		if err := ns.Reset(context.Background()); err != nil {
			t.Errorf("clean-up: network reset: %v", err)
		}
		for _, l := range ns.Leftovers() {
			t.Errorf("after network reset: left behind: %s", l)
		}
		for _, p := range procsMentioning(e.root) {
			t.Errorf("after network reset: process %d: %s", p.pid, p.cmdline)
		}
	}
	// By force, so that the next run starts clean.
	for _, s := range []string{e.root, e.rt} {
		for _, p := range procsMentioning(s) {
			syscall.Kill(p.pid, syscall.SIGKILL)
		}
	}
	for _, cg := range cgroupsOf(ids) {
		killCgroup(cg)
	}
	if _, err := testutil.UnmountUnder(e.dir); err != nil {
		t.Error(err)
	}
	if err := os.RemoveAll(e.rt); err != nil {
		t.Error(err)
	}
	if err := os.RemoveAll(e.dir); err != nil {
		t.Error(err)
	}
}

// cgroupFile reads a file of the container's cgroup in one v1 hierarchy (or v2).
func cgroupFile(t *testing.T, id, controller, file string) string {
	t.Helper()
	for _, p := range []string{filepath.Join("/sys/fs/cgroup", controller, "berth", id, file), filepath.Join("/sys/fs/cgroup/berth", id, file)} {
		if b, err := os.ReadFile(p); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	t.Fatalf("no cgroup file %s/%s for %s", controller, file, id[:12])
	return ""
}

// lines splits output into its non-empty lines.
func lines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if l := strings.TrimRight(sc.Text(), "\r"); strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// parseTime reads an inspect time.
func parseTime(t *testing.T, what, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("%s %q: %v", what, s, err)
	}
	return tm
}

// networkLeaks lists what the containers ids hold on the network: leases and endpoints in
// the data root, namespace pins, firewall rules, veths (these go when the kernel has torn
// the namespace down, which it does off berth's clock: waited for, up to 5 s).
func (e *env) networkLeaks(ids []string) []string {
	var out []string
	nets, _ := filepath.Glob(filepath.Join(e.root, "networks", "*", "leases", "*"))
	eps, _ := filepath.Glob(filepath.Join(e.root, "networks", "*", "endpoints", "*"))
	for _, f := range append(nets, eps...) {
		out = append(out, "network state "+strings.TrimPrefix(f, e.root+"/"))
	}
	ns, err := network.Open(e.root)
	if err != nil {
		return append(out, err.Error())
	}
	for _, id := range ids {
		if fileExists(ns.NetnsPath(id)) {
			out = append(out, "netns pin "+ns.NetnsPath(id))
		}
	}
	if tags, err := ns.Firewall().Tags(); err == nil {
		for tag := range tags {
			if id, ok := strings.CutPrefix(tag, "c:"); ok && slices.Contains(ids, id) {
				out = append(out, "firewall rules of container "+id)
			}
		}
	}
	// The veths of containers that still exist are theirs; only removed ones are waited for.
	var gone []string
	for _, id := range ids {
		if !fileExists(filepath.Join(e.root, "containers", id)) {
			gone = append(gone, id)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var veths []string
		links, _ := os.ReadDir("/sys/class/net")
		for _, l := range links {
			for _, id := range gone {
				if strings.HasPrefix(l.Name(), "vb"+id[:8]) {
					veths = append(veths, "veth "+l.Name())
				}
			}
		}
		if len(veths) == 0 || time.Now().After(deadline) {
			return append(out, veths...)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

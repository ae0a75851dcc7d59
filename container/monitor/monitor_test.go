package monitor

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/container/logfile"
)

var (
	monitorBin string
	runtimeBin string
	bundleDir  string
	skipReason string
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	root, _ := filepath.Abs("../..")
	runtimeBin = envOr("BERTH_RUNTIME", filepath.Join(root, "bin/berth-runtime"))
	bundleDir = envOr("BERTH_BUNDLE", filepath.Join(root, "_build/busybox-bundle"))
	switch {
	case os.Geteuid() != 0:
		skipReason = "needs root"
	case !isFile(runtimeBin):
		skipReason = "no runtime at " + runtimeBin + " (make build, or set BERTH_RUNTIME)"
	case !isFile(filepath.Join(bundleDir, "config.json")):
		skipReason = "no bundle at " + bundleDir + " (make bundle, or set BERTH_BUNDLE)"
	}
	if skipReason == "" {
		tmp, err := os.MkdirTemp("", "berth-monitor-test-")
		if err != nil {
			panic(err)
		}
		defer os.RemoveAll(tmp)
		monitorBin = filepath.Join(tmp, "berth-monitor")
		cmd := exec.Command("go", "build", "-trimpath", "-o", monitorBin, "github.com/berth-dev/berth/cmd/berth-monitor")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if os.Getenv("BERTH_MONITOR_RACE") != "" { // the monitor itself under the race detector
			cmd.Args = append(cmd.Args[:2], append([]string{"-race"}, cmd.Args[2:]...)...)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building berth-monitor: %v\n%s", err, out)
			return 1
		}
	}
	return m.Run()
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func isFile(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// ctr is one container driven through its monitor as the CLI does.
type ctr struct {
	t      *testing.T
	cfg    Config
	tmp    string
	cmd    *exec.Cmd
	sync   *os.File
	syncR  *bufio.Reader
	exited chan struct{} // closed when the monitor process was reaped
	werr   error
}

func newCtr(t *testing.T, args []string, mod func(c *Config)) *ctr {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	tmp := t.TempDir()
	var rnd [6]byte
	rand.Read(rnd[:])
	id := "montest-" + hex.EncodeToString(rnd[:])
	c := &ctr{t: t, tmp: tmp, exited: make(chan struct{})}
	c.cfg = Config{
		ID:          id,
		Runtime:     runtimeBin,
		RuntimeRoot: filepath.Join(tmp, "rt"),
		Bundle:      filepath.Join(tmp, "bundle"),
		Dir:         filepath.Join(tmp, "ctr"),
		LogPath:     filepath.Join(tmp, "ctr", id+"-json.log"),
		EventsLog:   filepath.Join(tmp, "events.log"),
		Name:        "test-" + id[8:],
		Image:       "busybox",
	}
	if mod != nil {
		mod(&c.cfg)
	}
	for _, d := range []string{c.cfg.Bundle, c.cfg.Dir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(filepath.Join(bundleDir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var spec map[string]any
	if err := json.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	rootfs, _ := filepath.Abs(filepath.Join(bundleDir, "rootfs"))
	spec["root"] = map[string]any{"path": rootfs, "readonly": true}
	proc := spec["process"].(map[string]any)
	proc["args"] = args
	proc["terminal"] = c.cfg.Terminal
	b, _ = json.Marshal(spec)
	if err := os.WriteFile(filepath.Join(c.cfg.Bundle, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.cleanup)
	return c
}

// launch starts the monitor as the CLI does: new session, stdio on /dev/null, fd 3 = the
// sync socket.
func (c *ctr) launch() {
	c.t.Helper()
	b, _ := json.Marshal(c.cfg)
	mj := filepath.Join(c.cfg.Dir, "monitor.json")
	if err := os.WriteFile(mj, b, 0o600); err != nil {
		c.t.Fatal(err)
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		c.t.Fatal(err)
	}
	theirs := os.NewFile(uintptr(fds[1]), "sync-monitor")
	c.sync = os.NewFile(uintptr(fds[0]), "sync")
	c.syncR = bufio.NewReader(c.sync)
	c.cmd = exec.Command(monitorBin, mj)
	c.cmd.ExtraFiles = []*os.File{theirs}
	c.cmd.Env = append(os.Environ(), "GORACE=log_path="+filepath.Join(c.tmp, "race"))
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := c.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	theirs.Close()
	go func() {
		c.werr = c.cmd.Wait()
		close(c.exited)
	}()
}

func (c *ctr) readSync() SyncMsg {
	c.t.Helper()
	c.sync.SetReadDeadline(time.Now().Add(20 * time.Second))
	line, err := c.syncR.ReadBytes('\n')
	if err != nil {
		c.t.Fatalf("sync socket: %v (read %q)", err, line)
	}
	var m SyncMsg
	if err := json.Unmarshal(line, &m); err != nil {
		c.t.Fatalf("sync message %q: %v", line, err)
	}
	return m
}

func (c *ctr) sendStart() {
	c.t.Helper()
	if _, err := c.sync.Write([]byte(`{"start":true}` + "\n")); err != nil {
		c.t.Fatal(err)
	}
}

// begin launches the monitor, checks the create, attaches (if h != nil) and starts.
func (c *ctr) begin(h *Hello) *conn {
	c.t.Helper()
	c.launch()
	m := c.readSync()
	if m.Pid <= 0 || m.Error != "" {
		c.t.Fatalf("create: %+v", m)
	}
	var a *conn
	if h != nil {
		a = c.attach(*h)
		a.waitAttached() // as the CLI does: output before registration would be missed
	}
	c.sendStart()
	if m := c.readSync(); !m.Started {
		c.t.Fatalf("start: %+v", m)
	}
	return a
}

func (c *ctr) waitMonitor() error {
	c.t.Helper()
	select {
	case <-c.exited:
		return c.werr
	case <-time.After(30 * time.Second):
		c.t.Fatal("the monitor did not exit")
	}
	return nil
}

func (c *ctr) runtime(args ...string) error {
	return exec.Command(runtimeBin, append([]string{"--root", c.cfg.RuntimeRoot}, args...)...).Run()
}

func (c *ctr) cleanup() {
	if c.cmd != nil && c.cmd.Process != nil {
		select {
		case <-c.exited:
		default:
			c.cmd.Process.Kill()
			<-c.exited
		}
	}
	c.runtime("delete", "--force", c.cfg.ID)
	if c.sync != nil {
		c.sync.Close()
	}
	races, _ := filepath.Glob(filepath.Join(c.tmp, "race.*"))
	for _, r := range races {
		b, _ := os.ReadFile(r)
		c.t.Errorf("data race in the monitor:\n%s", b)
	}
}

func (c *ctr) state() State {
	c.t.Helper()
	b, err := os.ReadFile(filepath.Join(c.cfg.Dir, "state.json"))
	if err != nil {
		c.t.Fatal(err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		c.t.Fatalf("state.json %s: %v", b, err)
	}
	return s
}

func (c *ctr) events() []Event {
	c.t.Helper()
	b, _ := os.ReadFile(c.cfg.EventsLog)
	var out []Event
	for _, l := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var e Event
		if err := json.Unmarshal(l, &e); err != nil {
			c.t.Fatalf("event %q: %v", l, err)
		}
		out = append(out, e)
	}
	return out
}

func actions(es []Event) string {
	var a []string
	for _, e := range es {
		a = append(a, e.Action)
	}
	return strings.Join(a, ",")
}

func (c *ctr) runtimeStateGone() bool {
	_, err := os.Stat(filepath.Join(c.cfg.RuntimeRoot, c.cfg.ID))
	return os.IsNotExist(err)
}

// conn is an attach client.
type conn struct {
	t        *testing.T
	c        net.Conn
	r        *bufio.Reader
	attached bool // FrameAttached seen
}

func (c *ctr) attach(h Hello) *conn {
	c.t.Helper()
	nc, err := net.Dial("unix", filepath.Join(c.cfg.Dir, "attach.sock"))
	if err != nil {
		c.t.Fatal(err)
	}
	b, _ := json.Marshal(h)
	nc.Write(append(b, '\n'))
	return &conn{t: c.t, c: nc, r: bufio.NewReader(nc)}
}

func (a *conn) send(typ byte, p []byte) {
	a.t.Helper()
	if _, err := a.c.Write(makeFrame(typ, p)); err != nil {
		a.t.Fatal(err)
	}
}

// waitAttached reads the registration notice, the first frame.
func (a *conn) waitAttached() {
	a.t.Helper()
	a.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	var h [5]byte
	if _, err := io.ReadFull(a.r, h[:]); err != nil || h[0] != FrameAttached || binary.BigEndian.Uint32(h[1:]) != 0 {
		a.t.Fatalf("attach: first frame %v %v, want FrameAttached", h, err)
	}
	a.attached = true
}

func (a *conn) frame() (byte, []byte, error) {
	for {
		a.c.SetReadDeadline(time.Now().Add(30 * time.Second))
		var h [5]byte
		if _, err := io.ReadFull(a.r, h[:]); err != nil {
			return 0, nil, err
		}
		p := make([]byte, binary.BigEndian.Uint32(h[1:]))
		_, err := io.ReadFull(a.r, p)
		if err == nil && h[0] == FrameAttached && !a.attached {
			a.attached = true // the registration notice (first frame), not output
			continue
		}
		return h[0], p, err
	}
}

// untilExit collects stdout and stderr until FrameExit.
func (a *conn) untilExit() (stdout, stderr string, exit ExitMsg) {
	a.t.Helper()
	var o, e bytes.Buffer
	for {
		typ, p, err := a.frame()
		if err != nil {
			a.t.Fatalf("attach: %v (stdout %q stderr %q)", err, tail(o.String()), tail(e.String()))
		}
		switch typ {
		case FrameStdout:
			o.Write(p)
		case FrameStderr:
			e.Write(p)
		case FrameExit:
			if err := json.Unmarshal(p, &exit); err != nil {
				a.t.Fatalf("exit frame %q: %v", p, err)
			}
			return o.String(), e.String(), exit
		}
	}
}

func tail(s string) string {
	if len(s) > 200 {
		return "..." + s[len(s)-200:]
	}
	return s
}

// waitFor polls cond for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestExitCodeOutputLogAndEvents(t *testing.T) {
	var marker string
	c := newCtr(t, []string{"sh", "-c", "echo hi; echo err >&2; exit 3"}, func(cfg *Config) {
		marker = filepath.Join(cfg.Dir, "exit-command-ran")
		// The exit command deletes the runtime's record (berth's clean-up does it in-process).
		cfg.ExitCommand = []string{"/bin/sh", "-c", "echo cleaning; " + cfg.Runtime + " --root " + cfg.RuntimeRoot +
			" delete --force " + cfg.ID + " && touch " + marker}
	})
	a := c.begin(&Hello{Stdout: true, Stderr: true})
	out, errOut, exit := a.untilExit()
	if out != "hi\n" || errOut != "err\n" || exit.ExitCode != 3 || exit.OOMKilled {
		t.Fatalf("stdout %q stderr %q exit %+v", out, errOut, exit)
	}
	a.c.Close()
	if err := c.waitMonitor(); err != nil {
		t.Fatalf("monitor: %v", err)
	}
	s := c.state()
	if s.Status != "exited" || s.ExitCode != 3 || s.Pid != 0 || s.MonitorPid != c.cmd.Process.Pid || s.MonitorStart == 0 ||
		s.StartedAt.IsZero() || s.FinishedAt.Before(s.StartedAt) || s.RestartCount != 0 {
		t.Fatalf("state %+v", s)
	}
	if !c.runtimeStateGone() {
		t.Fatal("the runtime's state of the container is left")
	}
	if !isFile(marker) {
		t.Fatal("the exit command did not run")
	}
	if b, _ := os.ReadFile(filepath.Join(c.cfg.Dir, "cleanup.log")); string(b) != "cleaning\n" {
		t.Fatalf("cleanup.log %q", b)
	}
	if _, err := os.Stat(filepath.Join(c.cfg.Dir, "attach.sock")); !os.IsNotExist(err) {
		t.Fatal("attach.sock left")
	}
	// json-file log.
	raw, _ := os.ReadFile(c.cfg.LogPath)
	re := regexp.MustCompile(`^\{"log":"(hi|err)\\n","stream":"(stdout|stderr)","time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"\}$`)
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("log %q", raw)
	}
	for _, l := range lines {
		if !re.MatchString(l) {
			t.Fatalf("log line %q", l)
		}
	}
	var got []string
	logfile.Read(context.Background(), c.cfg.LogPath, logfile.ReadOpts{Tail: -1}, func(e logfile.Entry) error {
		got = append(got, e.Stream+":"+string(e.Line))
		return nil
	})
	if strings.Join(got, "") != "stdout:hi\nstderr:err\n" && strings.Join(got, "") != "stderr:err\nstdout:hi\n" {
		t.Fatalf("log entries %q", got)
	}
	es := c.events()
	if actions(es) != "start,die" {
		t.Fatalf("events %s", actions(es))
	}
	die := es[1]
	if die.ID != c.cfg.ID || die.Type != "container" || die.Attributes["exitCode"] != "3" || die.Attributes["name"] != c.cfg.Name || die.Attributes["image"] != "busybox" {
		t.Fatalf("die event %+v", die)
	}
}

func TestCreateError(t *testing.T) {
	c := newCtr(t, []string{"/no/such/program"}, nil)
	c.launch()
	m := c.readSync()
	if m.Pid != 0 || !strings.Contains(m.Error, "no such file") && !strings.Contains(m.Error, "not found") || strings.Contains(m.Error, "\n") {
		t.Fatalf("sync %+v", m)
	}
	var ee *exec.ExitError
	if err := c.waitMonitor(); err == nil || !errorsAs(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("monitor exit: %v", err)
	}
	if !c.runtimeStateGone() {
		t.Fatal("runtime state left")
	}
	if code := errorExitCode(m.Error); code != 127 {
		t.Fatalf("%q maps to %d", m.Error, code)
	}
}

func errorsAs(err error, target **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	*target = e
	return ok
}

func TestNoStartDeletes(t *testing.T) {
	c := newCtr(t, []string{"sleep", "100"}, nil)
	c.launch()
	m := c.readSync()
	if m.Pid <= 0 {
		t.Fatalf("sync %+v", m)
	}
	if c.runtimeStateGone() {
		t.Fatal("no runtime state after create")
	}
	c.sync.Close()
	if err := c.waitMonitor(); err != nil {
		t.Fatalf("monitor: %v", err)
	}
	if !c.runtimeStateGone() {
		t.Fatal("the created container was not deleted")
	}
	if syscall.Kill(m.Pid, 0) == nil {
		t.Fatalf("the container's init %d is alive", m.Pid)
	}
}

func TestTerminal(t *testing.T) {
	c := newCtr(t, []string{"sh", "-c", "tty; sleep 0.3; stty size"}, func(cfg *Config) { cfg.Terminal = true })
	c.launch()
	if m := c.readSync(); m.Pid <= 0 {
		t.Fatalf("sync %+v", m)
	}
	a := c.attach(Hello{Stdout: true, Stderr: true})
	a.waitAttached() // as the CLI does: tty's output may come as soon as the program starts
	c.sendStart()
	if m := c.readSync(); !m.Started {
		t.Fatalf("start %+v", m)
	}
	a.send(FrameResize, []byte(`{"rows":30,"cols":100}`))
	out, errOut, exit := a.untilExit()
	if !strings.Contains(out, "/dev/pts/0\r\n") || !strings.Contains(out, "30 100\r\n") || errOut != "" || exit.ExitCode != 0 {
		t.Fatalf("stdout %q stderr %q exit %+v", out, errOut, exit)
	}
	c.waitMonitor()
	raw, _ := os.ReadFile(c.cfg.LogPath)
	if !strings.Contains(string(raw), `"log":"/dev/pts/0\r\n","stream":"stdout"`) {
		t.Fatalf("log %s", raw)
	}
}

func TestStdin(t *testing.T) {
	c := newCtr(t, []string{"cat"}, func(cfg *Config) { cfg.OpenStdin = true })
	a := c.begin(&Hello{Stdin: true, Stdout: true, Stderr: true})
	a.send(FrameStdin, []byte("hello\n"))
	typ, p, err := a.frame()
	if err != nil || typ != FrameStdout || string(p) != "hello\n" {
		t.Fatalf("echo: %d %q %v", typ, p, err)
	}
	a.send(FrameStdin, []byte("bye"))
	a.send(FrameStdinClose, nil)
	out, _, exit := a.untilExit()
	if out != "bye" || exit.ExitCode != 0 {
		t.Fatalf("stdout %q exit %+v", out, exit)
	}
	c.waitMonitor()
	// The last line without a newline is in the log, flushed at exit.
	raw, _ := os.ReadFile(c.cfg.LogPath)
	if !strings.Contains(string(raw), `{"log":"bye","stream":"stdout"`) {
		t.Fatalf("log %s", raw)
	}
}

func TestStdinOnceDisconnect(t *testing.T) {
	c := newCtr(t, []string{"cat"}, func(cfg *Config) { cfg.OpenStdin, cfg.StdinOnce = true, true })
	w := c.begin(&Hello{Stdout: true}) // a reader
	in := c.attach(Hello{Stdin: true})
	in.send(FrameStdin, []byte("x\n"))
	time.Sleep(200 * time.Millisecond)
	in.c.Close() // StdinOnce: the container's stdin closes
	out, _, exit := w.untilExit()
	if out != "x\n" || exit.ExitCode != 0 {
		t.Fatalf("stdout %q exit %+v", out, exit)
	}
}

func TestRestartOnFailure(t *testing.T) {
	c := newCtr(t, []string{"sh", "-c", "echo run; exit 1"}, func(cfg *Config) {
		cfg.Restart = Restart{Name: "on-failure", MaxRetries: 2}
	})
	a := c.begin(&Hello{Stdout: true})
	start := time.Now()
	out, _, exit := a.untilExit()
	if out != "run\nrun\nrun\n" || exit.ExitCode != 1 {
		t.Fatalf("stdout %q exit %+v", out, exit)
	}
	// Back-off: 100 ms then 200 ms.
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Fatalf("restarted without back-off (%v)", el)
	}
	c.waitMonitor()
	s := c.state()
	if s.Status != "exited" || s.RestartCount != 2 || s.ExitCode != 1 {
		t.Fatalf("state %+v", s)
	}
	if a := actions(c.events()); a != "start,die,restart,start,die,restart,start,die" {
		t.Fatalf("events %s", a)
	}
	if !c.runtimeStateGone() {
		t.Fatal("runtime state left")
	}
}

func TestStoppedMarkerPreventsRestart(t *testing.T) {
	c := newCtr(t, []string{"sh", "-c", "exit 2"}, func(cfg *Config) { cfg.Restart = Restart{Name: "always"} })
	os.WriteFile(filepath.Join(c.cfg.Dir, "stopped"), nil, 0o644)
	a := c.begin(&Hello{})
	_, _, exit := a.untilExit()
	if exit.ExitCode != 2 {
		t.Fatalf("exit %+v", exit)
	}
	c.waitMonitor()
	if s := c.state(); s.RestartCount != 0 || s.Status != "exited" {
		t.Fatalf("state %+v", s)
	}
	if a := actions(c.events()); a != "start,die" {
		t.Fatalf("events %s", a)
	}
}

func TestRestartAlwaysThenStop(t *testing.T) {
	c := newCtr(t, []string{"sh", "-c", "exit 0"}, func(cfg *Config) { cfg.Restart = Restart{Name: "always"} })
	a := c.begin(&Hello{})
	waitFor(t, 10*time.Second, "two restarts", func() bool { return c.state().RestartCount >= 2 })
	os.WriteFile(filepath.Join(c.cfg.Dir, "stopped"), nil, 0o644)
	_, _, exit := a.untilExit()
	if exit.ExitCode != 0 {
		t.Fatalf("exit %+v", exit)
	}
	c.waitMonitor()
	if s := c.state(); s.Status != "exited" {
		t.Fatalf("state %+v", s)
	}
}

func TestHealthy(t *testing.T) {
	c := newCtr(t, []string{"sleep", "100"}, func(cfg *Config) {
		cfg.Health = &Health{Test: []string{"sh", "-c", "echo ok"}, Interval: 200 * time.Millisecond, Timeout: 5 * time.Second, Retries: 1}
	})
	a := c.begin(&Hello{})
	if s := c.state(); s.Health == nil || s.Health.Status != "starting" {
		t.Fatalf("health %+v", s.Health)
	}
	waitFor(t, 15*time.Second, "healthy", func() bool { s := c.state(); return s.Health != nil && s.Health.Status == "healthy" })
	s := c.state()
	if p := s.Health.Log[0]; p.ExitCode != 0 || p.Output != "ok\n" || p.End.Before(p.Start) {
		t.Fatalf("probe %+v", p)
	}
	// The container is stopped as the CLI does: marker, then kill.
	os.WriteFile(filepath.Join(c.cfg.Dir, "stopped"), nil, 0o644)
	if err := c.runtime("kill", c.cfg.ID, "KILL"); err != nil {
		t.Fatal(err)
	}
	_, _, exit := a.untilExit()
	if exit.ExitCode != 137 || exit.OOMKilled {
		t.Fatalf("exit %+v", exit)
	}
	c.waitMonitor()
	if a := actions(c.events()); a != "start,health_status: healthy,die" {
		t.Fatalf("events %s", a)
	}
}

func TestUnhealthyAndTimeout(t *testing.T) {
	c := newCtr(t, []string{"sleep", "100"}, func(cfg *Config) {
		cfg.Health = &Health{Test: []string{"false"}, Interval: 100 * time.Millisecond, Retries: 2, Timeout: 5 * time.Second}
	})
	c.begin(nil)
	waitFor(t, 15*time.Second, "unhealthy", func() bool { s := c.state(); return s.Health != nil && s.Health.Status == "unhealthy" })
	s := c.state()
	if s.Health.FailingStreak < 2 || s.Health.Log[0].ExitCode != 1 || len(s.Health.Log) > 5 {
		t.Fatalf("health %+v", s.Health)
	}
	if !strings.Contains(actions(c.events()), "health_status: unhealthy") {
		t.Fatalf("events %s", actions(c.events()))
	}

	// A probe that outlives its timeout is killed and fails with -1.
	c2 := newCtr(t, []string{"sleep", "100"}, func(cfg *Config) {
		cfg.Health = &Health{Test: []string{"sleep", "50"}, Interval: 100 * time.Millisecond, Retries: 1, Timeout: 500 * time.Millisecond}
	})
	c2.begin(nil)
	waitFor(t, 15*time.Second, "unhealthy after a timeout", func() bool { s := c2.state(); return s.Health != nil && s.Health.Status == "unhealthy" })
	p := c2.state().Health.Log[0]
	if p.ExitCode != -1 || !strings.Contains(p.Output, "exceeded timeout") || p.End.Sub(p.Start) > 3*time.Second {
		t.Fatalf("probe %+v", p)
	}
	// The timed-out probe's process is gone from the container.
	out, _ := exec.Command(runtimeBin, "--root", c2.cfg.RuntimeRoot, "ps", "--format", "json", c2.cfg.ID).Output()
	var pids []int
	json.Unmarshal(out, &pids)
	if len(pids) > 2 { // sleep 100, perhaps the probe running right now
		t.Fatalf("processes in the container: %v", pids)
	}
}

func TestSignalsDoNotStopMonitor(t *testing.T) {
	c := newCtr(t, []string{"sleep", "100"}, nil)
	a := c.begin(&Hello{})
	for _, s := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP} {
		c.cmd.Process.Signal(s)
	}
	time.Sleep(300 * time.Millisecond)
	select {
	case <-c.exited:
		t.Fatalf("the monitor exited: %v", c.werr)
	default:
	}
	// The container's process has the default dispositions, not the monitor's.
	pid := c.state().Pid
	if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); !regexp.MustCompile(`SigIgn:\s+0+\n`).Match(b) {
		t.Fatalf("the container ignores signals:\n%s", b)
	}
	// A SIGKILLed monitor leaves the container running.
	c.cmd.Process.Kill()
	c.waitMonitor()
	a.c.Close()
	if syscall.Kill(pid, 0) != nil {
		t.Fatal("the container died with its monitor")
	}
}

func TestCleanupClient(t *testing.T) {
	for _, cleaned := range []bool{true, false} {
		t.Run(fmt.Sprint("cleaned=", cleaned), func(t *testing.T) {
			var marker string
			c := newCtr(t, []string{"sh", "-c", "sleep 0.2; exit 5"}, func(cfg *Config) {
				marker = filepath.Join(cfg.Dir, "exit-command-ran")
				cfg.ExitCommand = []string{"/bin/sh", "-c", "touch " + marker}
			})
			a := c.begin(&Hello{Stdout: true, Cleanup: true})
			_, _, exit := a.untilExit()
			if exit.ExitCode != 5 {
				t.Fatalf("exit %+v", exit)
			}
			// While the cleanup client is connected, the monitor waits; a late client gets
			// FrameExit at once.
			late := c.attach(Hello{})
			typ, p, err := late.frame()
			if err != nil || typ != FrameExit || string(p) != `{"exit_code":5}` {
				t.Fatalf("late client: %d %q %v", typ, p, err)
			}
			time.Sleep(200 * time.Millisecond)
			if isFile(marker) {
				t.Fatal("the exit command ran while the cleanup client was connected")
			}
			if cleaned {
				os.WriteFile(filepath.Join(c.cfg.Dir, "cleaned"), nil, 0o644)
			}
			a.c.Close()
			c.waitMonitor()
			if isFile(marker) == cleaned {
				t.Fatalf("exit command ran: %v, client cleaned: %v", isFile(marker), cleaned)
			}
		})
	}
}

func TestDrainsOutputAfterExit(t *testing.T) {
	// A lot of output right before the exit, and a daemonised grandchild that keeps the
	// pipe open: every line arrives, and the monitor does not hang.
	c := newCtr(t, []string{"sh", "-c", "(sleep 100 &) ; i=0; while [ $i -lt 2000 ]; do echo line-$i; i=$((i+1)); done"}, nil)
	a := c.begin(&Hello{Stdout: true})
	start := time.Now()
	out, _, exit := a.untilExit()
	if exit.ExitCode != 0 || !strings.HasSuffix(out, "line-1999\n") || strings.Count(out, "\n") != 2000 {
		t.Fatalf("exit %+v, %d lines, ends %q", exit, strings.Count(out, "\n"), out[max(0, len(out)-20):])
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Fatalf("took %v", el)
	}
	c.waitMonitor()
}

func TestParseOOMKill(t *testing.T) {
	v1 := "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n"
	v2 := "low 0\nhigh 0\nmax 12\noom 2\noom_kill 2\noom_group_kill 0\n"
	if n := parseOOMKill([]byte(v1)); n != 3 {
		t.Fatalf("v1: %d", n)
	}
	if n := parseOOMKill([]byte(v2)); n != 2 {
		t.Fatalf("v2: %d", n)
	}
	if n := parseOOMKill([]byte("oom_kill_disable 1\nunder_oom 0\n")); n != 0 {
		t.Fatalf("no oom_kill line: %d", n)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a"), []byte(v1), 0o644)
	os.WriteFile(filepath.Join(dir, "b"), []byte(v2), 0o644)
	if n := readOOM([]string{filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "missing")}); n != 5 {
		t.Fatalf("readOOM %d", n)
	}
}

func TestSlowClientIsDropped(t *testing.T) {
	c := newCtr(t, []string{"sh", "-c", "i=0; while [ $i -lt 40000 ]; do echo 0123456789012345678901234567890123456789-$i; i=$((i+1)); done"}, nil)
	waiter := c.begin(&Hello{})
	slow := c.attach(Hello{Stdout: true}) // never reads
	start := time.Now()
	_, _, exit := waiter.untilExit()
	if exit.ExitCode != 0 {
		t.Fatalf("exit %+v", exit)
	}
	if el := time.Since(start); el > 20*time.Second {
		t.Fatalf("the container was held %v by a client that does not read", el)
	}
	// The slow client was dropped: after what fitted in its queue, EOF and no FrameExit.
	got := 0
	for {
		typ, p, err := slow.frame()
		if err != nil {
			break
		}
		if typ != FrameStdout {
			t.Fatalf("slow client got frame %d", typ)
		}
		got += len(p)
	}
	if got >= 40000*45 {
		t.Fatalf("slow client got all the output (%d bytes)", got)
	}
	c.waitMonitor()
	// The log has everything.
	n := 0
	logfile.Read(context.Background(), c.cfg.LogPath, logfile.ReadOpts{Tail: -1}, func(logfile.Entry) error { n++; return nil })
	if n != 40000 {
		t.Fatalf("%d log entries", n)
	}
}

func TestLongPaths(t *testing.T) {
	// The container's directory is too long for a unix socket address (108 bytes): the
	// sockets are bound through /proc/self/fd, and clients connect the same way.
	long := strings.Repeat("d", 60)
	c := newCtr(t, []string{"sh", "-c", "tty"}, func(cfg *Config) {
		cfg.Terminal = true
		cfg.Dir = filepath.Join(cfg.Dir, long, long)
		cfg.LogPath = filepath.Join(cfg.Dir, cfg.ID+"-json.log")
	})
	if len(filepath.Join(c.cfg.Dir, "attach.sock")) < 108 {
		t.Fatal("the path is not long enough for this test")
	}
	c.launch()
	if m := c.readSync(); m.Pid <= 0 {
		t.Fatalf("sync %+v", m)
	}
	dfd, err := syscall.Open(c.cfg.Dir, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(dfd)
	nc, err := net.Dial("unix", fmt.Sprintf("/proc/self/fd/%d/attach.sock", dfd))
	if err != nil {
		t.Fatal(err)
	}
	nc.Write([]byte(`{"stdout":true}` + "\n"))
	a := &conn{t: t, c: nc, r: bufio.NewReader(nc)}
	a.waitAttached() // as the CLI does: output may come as soon as the program starts
	c.sendStart()
	if m := c.readSync(); !m.Started {
		t.Fatalf("start %+v", m)
	}
	out, _, exit := a.untilExit()
	if !strings.Contains(out, "/dev/pts/0") || exit.ExitCode != 0 {
		t.Fatalf("stdout %q exit %+v", out, exit)
	}
	c.waitMonitor()
}

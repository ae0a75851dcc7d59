package monitor

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/berth-dev/berth/container/jsonlite"
	"github.com/berth-dev/berth/container/logfile"
)

// Docker's restart back-off.
const (
	backoffMin   = 100 * time.Millisecond
	backoffMax   = time.Minute
	backoffReset = 10 * time.Second
	// drainGrace bounds the wait for EOF on the container's output once the runtime deleted
	// the container (a process outside the cgroup could hold the pipe forever).
	drainGrace = 2 * time.Second
	// orphanTick is how often orphans reparented to the monitor are reaped while the
	// container runs (a container in the host's pid namespace can leave some).
	orphanTick = 30 * time.Second
)

// supervisor is the state of one monitor; Main runs it.
type supervisor struct {
	cfg   Config
	dir   string
	r     *reaper  // shared by the supervisors of a hub
	sync  *os.File // fd 3 until the container started
	null  int      // /dev/null, the stdio of the runtime's commands
	lnAtt *os.File
	log   *logfile.Writer

	stateMu sync.Mutex // guards st and the writes of state.json
	st      State

	mu        sync.Mutex // guards what follows
	clients   []*client
	stdin     *os.File // the container's stdin (pipe or pty master); nil once closed
	master    *os.File // the pty master with Terminal
	resize    *Resize  // the last size asked for, applied to each new pty
	final     *ExitMsg // set once the container exited for good
	cleanupN  int      // connected clients that said Cleanup
	cleanupCh chan struct{}
	writers   sync.WaitGroup

	oomBase uint64

	id   string // State.MonitorID
	held []int  // in a hub: the held descriptors (a monitor process keeps them at 4...)
	lock int    // the fd holding <ctr>/monitor.lock, -1 if none
}

// procs reaps for every supervisor of the process.
var procs reaper

// Main runs the monitor for the monitor.json given as the only argument and returns the
// process's exit status. See the package comment for what it does.
func Main(args []string) int {
	if len(args) == 3 && args[1] == "--hub" {
		// The starter's own container comes in the environment, not on the command line,
		// which must name no container (the hub outlives them).
		first := os.Getenv(HubFirstEnv)
		held, _ := strconv.Atoi(os.Getenv(HubHeldEnv))
		os.Unsetenv(HubFirstEnv)
		os.Unsetenv(HubHeldEnv)
		return HubMain(args, args[2], first, held)
	}
	tune(args) // first: it may re-execute the monitor
	ignoreSignals(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT)
	syscall.Chdir("/")
	sf := syncFile()
	if len(args) != 2 {
		sendSync(sf, &SyncMsg{Error: "usage: berth-monitor MONITOR.JSON | --hub SOCKET"})
		return 2
	}
	m := &supervisor{sync: sf, null: -1, r: &procs, lock: -1, id: strconv.Itoa(os.Getpid())}
	if fd, err := syscall.Open("/dev/null", syscall.O_RDWR|syscall.O_CLOEXEC, 0); err == nil {
		m.null = fd
	}
	if err := m.load(args[1]); err != nil {
		closeInherited(0)
		sendSync(sf, &SyncMsg{Error: "monitor: " + err.Error()})
		return 1
	}
	closeInherited(m.cfg.HeldFds)
	return m.run()
}

// syncFile returns fd 3 as a pollable file, nil if it is not open.
func syncFile() *os.File {
	if _, _, errno := syscall.RawSyscall(syscall.SYS_FCNTL, 3, syscall.F_GETFD, 0); errno != 0 {
		return nil
	}
	syscall.SetNonblock(3, true)
	return os.NewFile(3, "sync")
}

func sendSync(f *os.File, m *SyncMsg) {
	if f != nil {
		f.Write(append(m.marshal(), '\n'))
	}
}

func (m *supervisor) load(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := m.cfg.unmarshal(b); err != nil {
		return errors.New(path + ": " + err.Error())
	}
	c := &m.cfg
	if c.ID == "" || c.Runtime == "" || c.Bundle == "" || c.Dir == "" {
		return errors.New(path + ": id, runtime, bundle and dir are required")
	}
	m.dir = c.Dir
	return nil
}

func (m *supervisor) path(name string) string { return m.dir + "/" + name }

// runtimeArgs is the start of every runtime command line.
func (m *supervisor) runtimeArgs(cmd ...string) []string {
	a := []string{m.cfg.Runtime}
	if m.cfg.RuntimeRoot != "" {
		a = append(a, "--root", m.cfg.RuntimeRoot)
	}
	a = append(a, "--log", m.path("runtime.log"), "--log-format", "json")
	return append(a, cmd...)
}

func (m *supervisor) run() int {
	if err := becomeSubreaper(); err != nil {
		sendSync(m.sync, &SyncMsg{Error: "monitor: child subreaper: " + err.Error()})
		return 1
	}
	ln, err := listenUnix(m.path("attach.sock"))
	if err != nil {
		sendSync(m.sync, &SyncMsg{Error: "monitor: attach socket: " + err.Error()})
		return 1
	}
	m.lnAtt = ln
	if m.cfg.LogPath != "" {
		if m.log, err = logfile.Open(m.cfg.LogPath, m.cfg.LogMaxSize, m.cfg.LogMaxFile); err != nil {
			sendSync(m.sync, &SyncMsg{Error: "monitor: log: " + err.Error()})
			return 1
		}
	}
	m.st = State{MonitorPid: os.Getpid(), MonitorStart: procStart(os.Getpid()), MonitorID: m.id}
	m.lockMonitor()
	go m.acceptLoop()

	first := true
	var backoff time.Duration
	for {
		res := m.once(first)
		if res.abort {
			return res.code
		}
		first = false
		if !m.shouldRestart(res) {
			break
		}
		if !res.deleted {
			m.deleteContainer()
		}
		if res.ran >= backoffReset || backoff == 0 {
			backoff = backoffMin
		} else if backoff *= 2; backoff > backoffMax {
			backoff = backoffMax
		}
		m.stateMu.Lock()
		m.st.Status = "restarting"
		m.st.RestartCount++
		m.writeStateLocked()
		m.stateMu.Unlock()
		m.event("restart", nil)
		if !m.sleepUnlessStopped(backoff) {
			m.stateMu.Lock()
			m.st.Status = "exited"
			m.st.RestartCount-- // no restart after all
			m.writeStateLocked()
			m.stateMu.Unlock()
			break
		}
	}
	m.finish()
	return 0
}

// result is how one run of the container ended.
type result struct {
	abort  bool // the monitor exits with code at once (first create failed, no Start)
	code   int
	failed bool // the runtime failed to create or start it: no restart
	exit   ExitMsg
	ran    time.Duration
	// deleted: the runtime's record of this run is gone (a restart needs that first).
	deleted bool
}

func (m *supervisor) shouldRestart(res result) bool {
	if res.failed || m.stopped() {
		return false
	}
	switch m.cfg.Restart.Name {
	case "always", "unless-stopped":
		return true
	case "on-failure":
		if res.exit.ExitCode == 0 {
			return false
		}
		return m.cfg.Restart.MaxRetries <= 0 || m.st.RestartCount < m.cfg.Restart.MaxRetries
	}
	return false
}

func (m *supervisor) stopped() bool {
	_, err := os.Stat(m.path("stopped"))
	return err == nil
}

// sleepUnlessStopped waits d, or less if <dir>/stopped appears (then it returns false).
func (m *supervisor) sleepUnlessStopped(d time.Duration) bool {
	end := time.Now().Add(d)
	for {
		if m.stopped() {
			return false
		}
		left := time.Until(end)
		if left <= 0 {
			return true
		}
		time.Sleep(min(left, 200*time.Millisecond))
	}
}

// stdio is the container's side of one run's standard streams.
type stdio struct {
	files   [3]int // what the runtime's create gets
	close   []int  // the container's ends, closed once create is done
	in      *os.File
	out     *os.File
	err     *os.File
	console *os.File // the console socket listener with Terminal
}

func (m *supervisor) makeStdio() (*stdio, error) {
	s := &stdio{}
	s.files = [3]int{m.null, m.null, m.null}
	var err error
	if m.cfg.Terminal {
		if s.console, err = listenUnix(m.path("console.sock")); err != nil {
			s.release()
			return nil, err
		}
		return s, nil
	}
	if m.cfg.OpenStdin {
		w, r, err := pipe(1)
		if err != nil {
			s.release()
			return nil, err
		}
		s.in = w
		s.files[0] = r
		s.close = append(s.close, r)
	}
	for i, dst := range []**os.File{&s.out, &s.err} {
		r, w, err := pipe(0)
		if err != nil {
			s.release()
			return nil, err
		}
		*dst = r
		s.files[i+1] = w
		s.close = append(s.close, w)
	}
	return s, nil
}

// release closes the container's ends (the container holds its own copies).
func (s *stdio) release() {
	for _, fd := range s.close {
		syscall.Close(fd)
	}
	s.close = nil
	if s.console != nil {
		s.console.Close()
		s.console = nil
	}
}

// drop closes the monitor's ends too (the run failed).
func (s *stdio) drop() {
	s.release()
	for _, f := range []*os.File{s.in, s.out, s.err} {
		if f != nil {
			f.Close()
		}
	}
}

// runRuntime runs a runtime command with the given stdio and returns "" or its error: the
// last error the runtime logged, else how it exited.
func (m *supervisor) runRuntime(files [3]int, cmd ...string) string {
	logPath := m.path("runtime.log")
	var off int64
	if st, err := os.Stat(logPath); err == nil {
		off = st.Size()
	}
	p, err := m.r.spawn(m.runtimeArgs(cmd...), files[:], false)
	if err != nil {
		return m.cfg.Runtime + ": " + err.Error()
	}
	ws, err := m.r.wait(p, time.Time{}, 0)
	if err != nil {
		return err.Error()
	}
	if ws.Exited() && ws.ExitStatus() == 0 {
		return ""
	}
	if msg := lastRuntimeError(logPath, off); msg != "" {
		return msg
	}
	return "runtime " + cmd[0] + " failed: exit status " + strconv.Itoa(exitCode(ws))
}

// lastRuntimeError returns the msg of the last {"level":"error"} line of the runtime's log
// written after off.
func lastRuntimeError(path string, off int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(off, 0); err != nil {
		return ""
	}
	b := make([]byte, 64*1024)
	n, _ := f.Read(b)
	msg := ""
	for _, line := range bytes.Split(b[:n], []byte("\n")) {
		var level, text string
		if jsonlite.Object(line, func(k string, v []byte) error {
			switch k {
			case "level":
				level, _ = jsonlite.String(v)
			case "msg":
				text, _ = jsonlite.String(v)
			}
			return nil
		}) == nil && level == "error" && text != "" {
			msg = text
		}
	}
	return strings.TrimSpace(strings.ReplaceAll(msg, "\n", " "))
}

// errorExitCode is docker's exit code for a container that could not start.
func errorExitCode(msg string) int {
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file"):
		return 127
	case strings.Contains(msg, "permission denied"):
		return 126
	}
	return 128
}

func (m *supervisor) deleteContainer() {
	m.runRuntime([3]int{m.null, m.null, m.null}, "delete", "--force", m.cfg.ID)
	m.r.reapAll()
}

// once creates and starts the container and supervises it until it exits.
func (m *supervisor) once(first bool) (res result) {
	fail := func(msg string) result {
		code := errorExitCode(msg)
		if first {
			sendSync(m.sync, &SyncMsg{Error: msg})
		}
		m.stateMu.Lock()
		m.st.Status, m.st.Error, m.st.ExitCode, m.st.Pid, m.st.PidStart = "exited", msg, code, 0, 0
		m.st.FinishedAt = time.Now().UTC()
		m.writeStateLocked()
		m.stateMu.Unlock()
		return result{failed: true, exit: ExitMsg{ExitCode: code}}
	}
	// Before the container exists for the CLI, a failure is only reported: the CLI cleans up.
	createFailed := func(msg string) result {
		if first {
			sendSync(m.sync, &SyncMsg{Error: msg})
			return result{abort: true, code: 1}
		}
		return fail(msg)
	}
	os.Remove(m.path("pid"))
	s, err := m.makeStdio()
	if err != nil {
		return createFailed("monitor: stdio: " + err.Error())
	}
	create := []string{"create", "--bundle", m.cfg.Bundle, "--pid-file", m.path("pid")}
	if s.console != nil {
		addr, dirfd, err := sockAddr(m.path("console.sock"))
		if err != nil {
			s.drop()
			return createFailed("monitor: console socket: " + err.Error())
		}
		if dirfd >= 0 {
			defer syscall.Close(dirfd)
		}
		create = append(create, "--console-socket", addr)
	}
	create = append(create, m.cfg.ID)
	if msg := m.runRuntime(s.files, create...); msg != "" {
		s.drop()
		return createFailed(msg)
	}
	pid := readPid(m.path("pid"))
	var master *os.File
	if s.console != nil {
		master, err = receiveMaster(s.console)
		os.Remove(m.path("console.sock"))
	}
	s.release()
	if pid <= 0 || err != nil {
		msg := "runtime create did not report the container's pid"
		if err != nil {
			msg = err.Error()
		}
		s.drop()
		if master != nil {
			master.Close()
		}
		m.deleteContainer()
		return createFailed(msg)
	}
	init := m.r.adopt(pid)
	// What the runtime itself wrote on the container's stdio while creating it (warnings)
	// is no output of the container: the container's process runs only after start.
	discardPending(s.out)
	discardPending(s.err)
	var pumps sync.WaitGroup
	m.mu.Lock()
	m.stdin = s.in
	m.mu.Unlock()
	if master != nil {
		m.mu.Lock()
		m.master, m.stdin = master, master
		if m.resize != nil {
			setWinsize(master, m.resize.Rows, m.resize.Cols)
		}
		m.mu.Unlock()
		pumps.Add(1)
		go m.pump(master, FrameStdout, "stdout", &pumps)
	} else {
		pumps.Add(2)
		go m.pump(s.out, FrameStdout, "stdout", &pumps)
		go m.pump(s.err, FrameStderr, "stderr", &pumps)
	}
	m.oomBase = readOOM(m.cfg.OOMFiles)

	if first {
		sendSync(m.sync, &SyncMsg{Pid: pid})
		if !waitStart(m.sync) {
			// The CLI gave up: no container is left behind.
			m.deleteContainer()
			m.r.wait(init, time.Now().Add(5*time.Second), 0)
			return result{abort: true, code: 0}
		}
	}
	if msg := m.start(pid); msg != "" {
		m.deleteContainer()
		m.r.wait(init, time.Now().Add(5*time.Second), 0)
		m.endRun(&pumps, s, master)
		res := fail(msg)
		m.event("die", map[string]string{"exitCode": strconv.Itoa(res.exit.ExitCode)})
		return res
	}
	started := time.Now()
	m.stateMu.Lock()
	m.st.Status, m.st.Pid, m.st.PidStart = "running", pid, procStart(pid)
	m.st.StartedAt, m.st.FinishedAt = started.UTC(), time.Time{}
	m.st.ExitCode, m.st.OOMKilled, m.st.Error = 0, false, ""
	if m.cfg.Health != nil && len(m.cfg.Health.Test) > 0 {
		m.st.Health = &HealthState{Status: "starting", Log: []HealthProbe{}}
	}
	m.writeStateLocked()
	m.stateMu.Unlock()
	m.event("start", nil)
	if first {
		sendSync(m.sync, &SyncMsg{Started: true})
		m.sync.Close()
		m.sync = nil
		// Start-up is over: give back what it used.
		settle()
	}
	var stopHealth chan struct{}
	var healthDone sync.WaitGroup
	if m.st.Health != nil {
		stopHealth = make(chan struct{})
		healthDone.Add(1)
		go func() {
			defer healthDone.Done()
			m.healthLoop(stopHealth, started, pid)
		}()
	}

	// With health checks, the probes' processes (in the container's pid namespace) end up as
	// our orphans, and the container's init cannot finish exiting while one of them is an
	// unreaped zombie: reap often then.
	tick := orphanTick
	if stopHealth != nil {
		tick = time.Second
	}
	ws, _ := m.r.wait(init, time.Time{}, tick)
	finished := time.Now()
	code := exitCode(ws)
	if stopHealth != nil {
		close(stopHealth)
		healthDone.Wait()
	}
	oom := readOOM(m.cfg.OOMFiles) > m.oomBase
	// The runtime's delete (which kills what is left in the cgroup) is the exit command's job
	// (the CLI's clean-up deletes in-process, one process start fewer per container), unless
	// the output does not end at once: then a process outside the init's reach holds the
	// pipes, and deleting now kills it, so that the output ends.
	deleted := false
	if len(m.cfg.ExitCommand) == 0 || !waitTimeout(&pumps, 300*time.Millisecond) {
		m.deleteContainer()
		deleted = true
	}
	m.endRun(&pumps, s, master)

	exit := ExitMsg{ExitCode: code, OOMKilled: oom && code == 128+int(syscall.SIGKILL)}
	m.stateMu.Lock()
	m.st.Status, m.st.ExitCode, m.st.OOMKilled = "exited", exit.ExitCode, exit.OOMKilled
	m.st.Pid, m.st.PidStart = 0, 0
	m.st.FinishedAt = finished.UTC()
	m.writeStateLocked()
	m.stateMu.Unlock()
	if oom {
		m.event("oom", nil)
	}
	m.event("die", map[string]string{
		"exitCode":     strconv.Itoa(code),
		"execDuration": strconv.Itoa(int(finished.Sub(started).Seconds())),
	})
	return result{exit: exit, ran: finished.Sub(started), deleted: deleted}
}

// endRun waits for the container's output to end (its last lines reach the log and the
// clients), bounded by drainGrace, and closes this run's streams.
func (m *supervisor) endRun(pumps *sync.WaitGroup, s *stdio, master *os.File) {
	m.mu.Lock()
	if m.stdin != nil && m.stdin != master {
		m.stdin.Close()
	}
	m.stdin = nil
	m.mu.Unlock()
	deadline := time.Now().Add(drainGrace)
	for _, f := range []*os.File{s.out, s.err, master} {
		if f != nil {
			f.SetReadDeadline(deadline)
		}
	}
	pumps.Wait()
	for _, f := range []*os.File{s.out, s.err} {
		if f != nil {
			f.Close()
		}
	}
	if master != nil {
		m.mu.Lock()
		m.master = nil
		m.mu.Unlock()
		master.Close()
	}
	if m.log != nil {
		m.log.Flush()
	}
}

// discardPending reads what is already in the pipe f without waiting.
func discardPending(f *os.File) {
	if f == nil {
		return
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	buf := make([]byte, 4096)
	rc.Control(func(fd uintptr) {
		for {
			if n, err := syscall.Read(int(fd), buf); n <= 0 || err != nil {
				return
			}
		}
	})
}

func receiveMaster(l *os.File) (*os.File, error) {
	l.SetReadDeadline(time.Now().Add(10 * time.Second))
	c, err := accept(l)
	if err != nil {
		return nil, errors.New("console socket: " + err.Error())
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	fd, err := recvFd(c)
	if err != nil {
		return nil, err
	}
	syscall.SetNonblock(fd, true)
	return os.NewFile(uintptr(fd), "pty-master"), nil
}

func readPid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// waitStart reads SyncMsgs from the sync socket until Start (true) or its end (false).
func waitStart(f *os.File) bool {
	if f == nil {
		return true // no sync socket (started by hand): start at once
	}
	var line []byte
	b := make([]byte, 1)
	for {
		n, err := f.Read(b)
		if n == 1 {
			if b[0] != '\n' {
				if len(line) < 64*1024 {
					line = append(line, b[0])
				}
				continue
			}
			var msg SyncMsg
			if msg.unmarshal(line) == nil && msg.Start {
				return true
			}
			line = line[:0]
			continue
		}
		if err != nil {
			return false
		}
	}
}

// readOOM sums the "oom_kill N" lines of the cgroup files (v1 memory.oom_control, v2
// memory.events).
func readOOM(files []string) uint64 {
	var total uint64
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err == nil {
			total += parseOOMKill(b)
		}
	}
	return total
}

func parseOOMKill(b []byte) uint64 {
	for _, line := range bytes.Split(b, []byte("\n")) {
		k, v, ok := bytes.Cut(bytes.TrimSpace(line), []byte(" "))
		if ok && string(k) == "oom_kill" {
			n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return 0
}

// writeStateLocked writes state.json atomically (temp, rename). stateMu is held. No fsync:
// after a power loss every container is dead anyway, and the engine derives the status from
// the kernel (pid start times), not from this file alone; a lost last exit code is the
// price of two disk flushes fewer per container run.
func (m *supervisor) writeStateLocked() {
	if _, err := os.Stat(m.dir); err != nil {
		return
	}
	tmp := m.path(".state.json.tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return
	}
	_, err = f.Write(m.st.marshal())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return
	}
	os.Rename(tmp, m.path("state.json"))
}

// event appends one event to the engine's events.log with a single O_APPEND write.
func (m *supervisor) event(action string, attrs map[string]string) {
	if m.cfg.EventsLog == "" {
		return
	}
	a := map[string]string{}
	for k, v := range attrs {
		a[k] = v
	}
	if m.cfg.Name != "" {
		a["name"] = m.cfg.Name
	}
	if m.cfg.Image != "" {
		a["image"] = m.cfg.Image
	}
	e := Event{Time: time.Now().UnixNano(), Type: "container", Action: action, ID: m.cfg.ID, Attributes: a}
	f, err := os.OpenFile(m.cfg.EventsLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return
	}
	f.Write(append(e.marshal(), '\n'))
	f.Close()
}

// finish tells the clients the container exited for good, lets a client that does the
// cleanup do it, runs the exit command otherwise, and returns (the monitor exits).
func (m *supervisor) finish() {
	m.stateMu.Lock()
	exit := ExitMsg{ExitCode: m.st.ExitCode, OOMKilled: m.st.OOMKilled}
	m.stateMu.Unlock()
	m.mu.Lock()
	m.final = &exit
	cs := m.clients
	m.clients = nil
	m.mu.Unlock()
	frame := makeFrame(FrameExit, exit.marshal())
	for _, c := range cs {
		c.send(frame)
	}

	// A client that said Cleanup (a foreground run) cleans up itself: wait until every such
	// client is gone, then clean up only if it did not.
	for {
		m.mu.Lock()
		if m.cleanupN == 0 {
			m.mu.Unlock()
			break
		}
		if m.cleanupCh == nil {
			m.cleanupCh = make(chan struct{})
		}
		ch := m.cleanupCh
		m.mu.Unlock()
		<-ch
	}
	if len(m.cfg.ExitCommand) > 0 && exists(m.dir) && !exists(m.path("cleaned")) {
		m.runExitCommand()
	}
	if exists(m.dir) {
		os.Remove(m.path("attach.sock"))
	}
	// Let the last frames reach the clients.
	done := make(chan struct{})
	go func() {
		m.writers.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func (m *supervisor) runExitCommand() {
	out, err := syscall.Open(m.path("cleanup.log"), syscall.O_WRONLY|syscall.O_APPEND|syscall.O_CREAT|syscall.O_CLOEXEC, 0o644)
	if err != nil {
		out, _ = syscall.Dup(m.null)
	}
	defer syscall.Close(out)
	// The exit command says which supervisor asks: a newer run's must not be cleaned up.
	argv := append(append([]string(nil), m.cfg.ExitCommand...), "--monitor-id", m.id)
	p, err := m.r.spawn(argv, []int{m.null, out, out}, true)
	if err != nil {
		syscall.Write(out, []byte("berth-monitor: exit command: "+err.Error()+"\n"))
		return
	}
	m.r.wait(p, time.Time{}, 0)
}

// waitTimeout waits for wg at most d and reports whether it finished.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// start lets the created container run. It does what `berth-runtime start` does for a
// container without poststart hooks (the engine's never have any), without starting that
// process: open the runtime's exec fifo, which releases the init blocked on its other end,
// wait for the init's byte, and remove the fifo (the runtime reads "running" from its
// absence). Any surprise falls back to the runtime itself.
func (m *supervisor) start(pid int) string {
	fifo := m.cfg.RuntimeRoot + "/" + m.cfg.ID + "/exec.fifo"
	fd, err := syscall.Open(fifo, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil || m.cfg.RuntimeRoot == "" {
		if err == nil {
			syscall.Close(fd)
		}
		return m.runRuntime([3]int{m.null, m.null, m.null}, "start", m.cfg.ID)
	}
	defer syscall.Close(fd)
	start := procStart(pid)
	buf := make([]byte, 1)
	for deadline := time.Now().Add(30 * time.Second); ; {
		n, err := syscall.Read(fd, buf)
		if n == 1 {
			break
		}
		if err != nil && err != syscall.EAGAIN && err != syscall.EINTR {
			return "read exec fifo: " + err.Error()
		}
		if procStart(pid) != start || zombie(pid) || time.Now().After(deadline) {
			// A quick program may have been started, run and exited since the read
			// above: its byte is then waiting in the fifo.
			if n, _ := syscall.Read(fd, buf); n == 1 {
				break
			}
			return "container init exited before start"
		}
		time.Sleep(time.Millisecond)
	}
	os.Remove(fifo)
	return ""
}

// zombie reports whether pid has exited (and waits to be reaped).
func zombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || i+2 >= len(b) || b[i+2] == 'Z' || b[i+2] == 'X'
}

package monitor

// The hub: one monitor process serving every running container of a data root, so that an
// idle container costs a goroutine and a few buffers instead of a Go process (a Go process
// idles near 0.9 MiB; conmon, a C program, near 0.4). The CLI connects to <root>/monitor.sock
// and hands over what a monitor process would have been started with: the path of
// monitor.json as the message, the sync socket and the held descriptors as SCM_RIGHTS. The
// hub answers "ok\n" once it runs a supervisor for it (a closed connection without it means:
// start a new hub and ask again). Each supervisor is the same code as in a monitor process;
// its liveness is an flock it holds on <ctr>/monitor.lock (State.MonitorLock), since the
// hub's pid outlives the container. The hub exits when its last supervisor has finished.
// <root>/monitor.lock is locked by the hub for its whole life: whoever gets that lock knows
// no hub runs and may start one (StartHub's caller passes the locked file as fd 3).

import (
	"errors"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
)

// HubFirstEnv and HubHeldEnv carry the hub starter's container: its monitor.json and how
// many held descriptors follow its sync socket (fd 4).
const (
	HubFirstEnv = "_BERTH_HUB_FIRST"
	HubHeldEnv  = "_BERTH_HUB_HELD"
)

// maxHeld is how many held descriptors one request may carry (SCM_MAX_FD is 253, one is the
// sync socket).
const maxHeld = 250

// hub is the state of a hub process.
type hub struct {
	mu      sync.Mutex
	active  int
	exiting bool
	ln      *os.File
	sock    string
	seq     atomic.Uint64
}

// HubMain runs a hub listening on sock; fd 3 is <root>/monitor.lock, locked by the caller.
// The caller that starts the hub brings its own container along (no round trip on the socket
// for it): first is its monitor.json, with the sync socket at fd 4 and held descriptors
// from 5 (held of them).
func HubMain(args []string, sock, first string, held int) int {
	tune(args)
	ignoreSignals(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT)
	syscall.Chdir("/")
	keep := 0
	if first != "" {
		keep = 1 + held
	}
	closeInherited(keep) // fd 3 (the lock) and 4..3+keep stay, close-on-exec
	if err := becomeSubreaper(); err != nil {
		return 1
	}
	ln, err := listenUnix(sock)
	if err != nil {
		return 1
	}
	h := &hub{ln: ln, sock: sock}
	if first != "" {
		fds := []int{4}
		for i := 0; i < held; i++ {
			fds = append(fds, 5+i)
		}
		h.active = 1
		h.start(first, fds)
	}
	for {
		conn, err := accept(ln)
		if err != nil {
			h.mu.Lock()
			exiting := h.exiting
			h.mu.Unlock()
			if exiting {
				select {} // the last supervisor is exiting the process
			}
			continue
		}
		h.serve(conn)
	}
}

// serve takes one request: receive, start a supervisor, answer.
func (h *hub) serve(conn *os.File) {
	defer conn.Close()
	path, fds, err := recvRequest(conn)
	if err != nil {
		closeAll(fds)
		return
	}
	h.mu.Lock()
	if h.exiting {
		h.mu.Unlock()
		closeAll(fds) // no answer: the CLI starts a new hub
		return
	}
	h.active++
	h.mu.Unlock()
	h.start(path, fds)
	conn.Write([]byte("ok " + strconv.Itoa(os.Getpid()) + "\n"))
}

// start runs a supervisor for the container of monitor.json path; fds are its sync socket
// and held descriptors. The caller has counted it in active.
func (h *hub) start(path string, fds []int) {
	syscall.SetNonblock(fds[0], true)
	m := &supervisor{sync: os.NewFile(uintptr(fds[0]), "sync"), null: -1, r: &procs, lock: -1, held: fds[1:]}
	m.id = strconv.Itoa(os.Getpid()) + "-" + strconv.FormatUint(h.seq.Add(1), 10)
	if fd, err := syscall.Open("/dev/null", syscall.O_RDWR|syscall.O_CLOEXEC, 0); err == nil {
		m.null = fd
	}
	go func() {
		if err := m.load(path); err != nil {
			sendSync(m.sync, &SyncMsg{Error: "monitor: " + err.Error()})
		} else {
			m.run()
		}
		h.done(m)
	}()
}

// done counts a finished supervisor and releases what it held; the last one ends the hub,
// by exiting: its lock then goes with the process, so nobody sees the container
// unsupervised while its hub still runs.
func (h *hub) done(m *supervisor) {
	h.mu.Lock()
	h.active--
	if h.active > 0 {
		h.mu.Unlock()
		m.release()
		return
	}
	h.exiting = true
	syscall.Unlink(h.sock)
	h.ln.Close()
	os.Exit(0)
}

// release closes what a supervisor held in a hub (a monitor process just exits).
func (m *supervisor) release() {
	if m.sync != nil {
		m.sync.Close()
	}
	closeAll(m.held)
	if m.null >= 0 {
		syscall.Close(m.null)
	}
	if m.lnAtt != nil {
		m.lnAtt.Close()
	}
	if m.log != nil {
		m.log.Close()
	}
	if m.lock >= 0 {
		syscall.Close(m.lock)
	}
}

func closeAll(fds []int) {
	for _, fd := range fds {
		syscall.Close(fd)
	}
}

// recvRequest reads the path and the descriptors of one request.
func recvRequest(c *os.File) (string, []int, error) {
	b, fds, err := recvRights(c, 4096, maxHeld+1)
	if err == nil && (len(fds) == 0 || len(b) == 0) {
		err = errors.New("hub: bad request")
	}
	return string(b), fds, err
}

// lockMonitor takes <ctr>/monitor.lock for the supervisor's life; the engine tests it to know
// whether the container is supervised.
func (m *supervisor) lockMonitor() {
	p := m.path("monitor.lock")
	fd, err := syscall.Open(p, syscall.O_RDWR|syscall.O_CREAT|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return
	}
	if err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		syscall.Close(fd)
		return
	}
	m.lock = fd
	m.st.MonitorLock = p
}

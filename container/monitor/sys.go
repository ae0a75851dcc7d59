package monitor

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

const (
	sysPidfdOpen         = 434
	oPath                = 0x200000 // O_PATH (amd64, arm64)
	prSetChildSubreaper  = 36
	unixPathMax          = 108 // sizeof(sun_path)
	sigIgn               = 1
	sigsetSize           = 8
	closeExecFlag        = syscall.FD_CLOEXEC
	nonblockCloexecFlags = syscall.SOCK_CLOEXEC | syscall.SOCK_NONBLOCK
)

// kernelSigaction is the kernel's struct sigaction (amd64, arm64).
type kernelSigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

// ignoreSignals makes the kernel ignore sig for this process without telling the Go runtime:
// the runtime still believes it handles them, so a child it forks gets them back to SIG_DFL
// (os/signal.Ignore would leave them ignored in the runtime and the container).
func ignoreSignals(sigs ...syscall.Signal) {
	act := kernelSigaction{handler: sigIgn}
	for _, s := range sigs {
		syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, uintptr(s), uintptr(unsafe.Pointer(&act)), 0, sigsetSize, 0, 0)
	}
}

// closeInherited closes every descriptor above 3+held that came through exec (those lack
// FD_CLOEXEC; the Go runtime's own, such as its cgroup files, have it), and keeps fd 3 (the
// sync socket) and the held ones (4..3+held: published ports' reserved sockets) from
// leaking into children.
func closeInherited(held int) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 3 {
			continue
		}
		if fd <= 3+held {
			syscall.CloseOnExec(fd)
			continue
		}
		flags, _, errno := syscall.RawSyscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFD, 0)
		if errno == 0 && flags&closeExecFlag == 0 {
			syscall.Close(fd)
		}
	}
	syscall.CloseOnExec(3)
}

func becomeSubreaper() error {
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		return errno
	}
	return nil
}

// procStart returns the start time of pid (field 22 of /proc/<pid>/stat), 0 if unknown.
func procStart(pid int) uint64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := len(b) - 1
	for i >= 0 && b[i] != ')' {
		i--
	}
	field := 2 // the ')' ends field 2
	for j := i + 1; j < len(b); j++ {
		if b[j] != ' ' {
			continue
		}
		field++
		if field == 22 {
			k := j + 1
			for k < len(b) && b[k] >= '0' && b[k] <= '9' {
				k++
			}
			n, _ := strconv.ParseUint(string(b[j+1:k]), 10, 64)
			return n
		}
	}
	return 0
}

// pipe returns a pipe whose end ours (0: read, 1: write) is non-blocking and pollable, the
// other end blocking for the container.
func pipe(ours int) (mine *os.File, theirs int, err error) {
	var p [2]int
	if err := syscall.Pipe2(p[:], syscall.O_CLOEXEC); err != nil {
		return nil, -1, err
	}
	syscall.SetNonblock(p[ours], true)
	return os.NewFile(uintptr(p[ours]), "pipe"), p[1-ours], nil
}

// sockAddr returns a name bind(2) and connect(2) accept for path: path itself, or when it is
// too long for sun_path, a /proc/<pid>/fd/<dirfd>/<name> alias; dirfd (-1 if none) must stay
// open while the alias is used.
func sockAddr(path string) (addr string, dirfd int, err error) {
	if len(path) < unixPathMax {
		return path, -1, nil
	}
	dfd, err := syscall.Open(filepath.Dir(path), oPath|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return "", -1, err
	}
	return "/proc/" + strconv.Itoa(os.Getpid()) + "/fd/" + strconv.Itoa(dfd) + "/" + filepath.Base(path), dfd, nil
}

// listenUnix listens on the unix socket path (replacing a stale one).
func listenUnix(path string) (*os.File, error) {
	addr, dirfd, err := sockAddr(path)
	if err != nil {
		return nil, err
	}
	if dirfd >= 0 {
		defer syscall.Close(dirfd)
	}
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|nonblockCloexecFlags, 0)
	if err != nil {
		return nil, err
	}
	syscall.Unlink(path)
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: addr}); err != nil {
		syscall.Close(fd)
		return nil, &os.PathError{Op: "bind", Path: path, Err: err}
	}
	os.Chmod(path, 0o600)
	if err := syscall.Listen(fd, 64); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), path), nil
}

// accept waits for a connection on the listening socket l (honouring its deadline).
func accept(l *os.File) (*os.File, error) {
	rc, err := l.SyscallConn()
	if err != nil {
		return nil, err
	}
	nfd := -1
	var aerr error
	err = rc.Read(func(fd uintptr) bool {
		nfd, _, aerr = syscall.Accept4(int(fd), nonblockCloexecFlags)
		return aerr != syscall.EAGAIN && aerr != syscall.EINTR
	})
	if err != nil {
		return nil, err
	}
	if aerr != nil {
		return nil, aerr
	}
	return os.NewFile(uintptr(nfd), "conn"), nil
}

// recvFd receives one descriptor sent with SCM_RIGHTS on the connected socket c (as runc
// sends a pty master: the name as data, the fd in the rights).
func recvFd(c *os.File) (int, error) {
	_, fds, err := recvRights(c, 256, 4)
	if err != nil {
		return -1, err
	}
	if len(fds) == 0 {
		return -1, errors.New("console socket: no pty master received")
	}
	closeAll(fds[1:])
	return fds[0], nil
}

// recvRights reads one message of at most size bytes from c with up to maxFds descriptors
// (SCM_RIGHTS, received close-on-exec).
func recvRights(c *os.File, size, maxFds int) ([]byte, []int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, nil, err
	}
	buf := make([]byte, size)
	oob := make([]byte, syscall.CmsgSpace(4*maxFds))
	var n, oobn int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = syscall.Recvmsg(int(fd), buf, oob, syscall.MSG_CMSG_CLOEXEC)
		return rerr != syscall.EAGAIN && rerr != syscall.EINTR
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		return nil, nil, err
	}
	msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, nil, err
	}
	var fds []int
	for i := range msgs {
		if f, err := syscall.ParseUnixRights(&msgs[i]); err == nil {
			fds = append(fds, f...)
		}
	}
	return buf[:n], fds, nil
}

// setWinsize applies a window size to the pty master f.
func setWinsize(f *os.File, rows, cols uint16) {
	ws := struct{ row, col, x, y uint16 }{rows, cols, 0, 0}
	if rc, err := f.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCSWINSZ, uintptr(unsafe.Pointer(&ws)))
		})
	}
}

func shutdownWrite(f *os.File) {
	if rc, err := f.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { syscall.Shutdown(int(fd), syscall.SHUT_WR) })
	}
}

// reaper reaps the monitor's children: its own (runtime commands, probes, the exit command)
// and, as a child subreaper, the container's init and whatever else is reparented to it.
// Each child is waited for through a pidfd in the poller (no thread, no SIGCHLD handler);
// orphans are reaped by reapAll.
type reaper struct {
	mu      sync.Mutex
	watched map[int]bool               // pids someone will wait for
	status  map[int]syscall.WaitStatus // their statuses when reapAll got them first
}

// proc is a child being waited for.
type proc struct {
	pid   int
	pidfd *os.File
}

// spawn starts argv[0] with files as its descriptors 0, 1, 2, ... (the others close on exec:
// the monitor opens everything O_CLOEXEC).
func (r *reaper) spawn(argv []string, files []int, setsid bool) (*proc, error) {
	fs := make([]uintptr, len(files))
	for i, f := range files {
		fs[i] = uintptr(f)
	}
	pidfd := -1
	attr := &syscall.ProcAttr{
		Dir:   "/",
		Env:   childEnv(),
		Files: fs,
		Sys:   &syscall.SysProcAttr{PidFD: &pidfd, Setsid: setsid},
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := syscall.ForkExec(argv[0], argv, attr)
	if err != nil {
		return nil, err
	}
	r.watchLocked(pid)
	return &proc{pid: pid, pidfd: pidFile(pidfd, pid)}, nil
}

// adopt starts waiting for pid, a child the monitor did not fork (the container's init).
func (r *reaper) adopt(pid int) *proc {
	r.mu.Lock()
	r.watchLocked(pid)
	r.mu.Unlock()
	fd, _, errno := syscall.Syscall(sysPidfdOpen, uintptr(pid), 0, 0)
	if errno != 0 {
		return &proc{pid: pid, pidfd: pidFile(-1, pid)}
	}
	syscall.CloseOnExec(int(fd))
	return &proc{pid: pid, pidfd: pidFile(int(fd), pid)}
}

func (r *reaper) watchLocked(pid int) {
	if r.watched == nil {
		r.watched = map[int]bool{}
		r.status = map[int]syscall.WaitStatus{}
	}
	r.watched[pid] = true
}

func pidFile(fd, pid int) *os.File {
	if fd < 0 {
		return nil
	}
	syscall.SetNonblock(fd, true)
	return os.NewFile(uintptr(fd), "pidfd")
}

// try reaps p if it has exited.
func (r *reaper) try(p *proc) (syscall.WaitStatus, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ws, ok := r.status[p.pid]; ok {
		delete(r.status, p.pid)
		delete(r.watched, p.pid)
		return ws, true
	}
	var ws syscall.WaitStatus
	wpid, err := syscall.Wait4(p.pid, &ws, syscall.WNOHANG, nil)
	if wpid == p.pid || err == syscall.ECHILD {
		delete(r.watched, p.pid)
		if err == syscall.ECHILD {
			ws = 0
		}
		return ws, true
	}
	return 0, false
}

// reapAll reaps every exited child; the statuses of watched ones are kept for try.
func (r *reaper) reapAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
		if r.watched[pid] {
			r.status[pid] = ws
		}
	}
}

var errTimeout = errors.New("timed out")

// wait waits for p to exit, until deadline (zero: none); every tick (if > 0) it also reaps
// orphans. It closes the pidfd once p is reaped.
func (r *reaper) wait(p *proc, deadline time.Time, tick time.Duration) (syscall.WaitStatus, error) {
	for {
		if ws, ok := r.try(p); ok {
			if p.pidfd != nil {
				p.pidfd.Close()
			}
			return ws, nil
		}
		if p.pidfd == nil {
			// No pidfd (kernel without pidfd_open): poll.
			if !deadline.IsZero() && time.Now().After(deadline) {
				return 0, errTimeout
			}
			time.Sleep(20 * time.Millisecond)
			continue
		}
		d := deadline
		if tick > 0 {
			if t := time.Now().Add(tick); d.IsZero() || t.Before(d) {
				d = t
			}
		}
		p.pidfd.SetReadDeadline(d)
		rc, err := p.pidfd.SyscallConn()
		if err != nil {
			return 0, err
		}
		var ws syscall.WaitStatus
		var done bool
		err = rc.Read(func(uintptr) bool {
			ws, done = r.try(p)
			return done
		})
		if done {
			p.pidfd.Close()
			return ws, nil
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if !deadline.IsZero() && !time.Now().Before(deadline) {
				return 0, errTimeout
			}
			r.reapAll()
			continue
		}
		if err != nil {
			return 0, err
		}
	}
}

// exitCode is docker's exit code for a wait status: the status, or 128+N for signal N.
func exitCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

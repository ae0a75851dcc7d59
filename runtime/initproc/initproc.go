// Package initproc is the Go side of the process that becomes the container: the container's
// init after `create`, or the joining process of `exec`. runtime/nsenter has already put it in
// its namespaces (and cgroup); here it receives its configuration over the sync socket
// (runtime/handshake), builds the filesystem view (runtime/rootfs), and then confines itself
// in this order, as runc does, before execve of the container's program:
//
//	rootfs (mounts, createContainer hooks, pivot_root, console, sysctl, masked/ro paths)
//	-> hostname, keyring -> resolve the program
//	-> rlimits, oom_score_adj, ioprio, LSM label, cwd (verified inside the root)
//	-> [seccomp here when no_new_privs is off: loading needs CAP_SYS_ADMIN]
//	-> bounding set, keep caps across setuid, groups/gid/uid, the five capability sets
//	-> no_new_privs -> [seccomp here otherwise] -> mark every extra fd CLOEXEC
//	-> ready (every error so far reaches `create`) -> wait on exec.fifo (init only)
//	-> startContainer hooks -> execve
package initproc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/runtime/handshake"
	"github.com/berth-dev/berth/runtime/rootfs"
)

// SyncEnv names the variable that carries the sync socket's descriptor number.
const SyncEnv = "_BERTH_SYNC"

func init() {
	// Capabilities and seccomp are per thread: the thread that sets them must be the one that
	// calls execve, so the main goroutine stays on the main thread from the start.
	if os.Getenv(SyncEnv) != "" {
		goruntime.LockOSThread()
	}
}

// readySent records that the runtime no longer listens for our errors.
var readySent bool

// IsInit reports whether this process was started as a container init or exec process.
func IsInit() bool { return os.Getenv(SyncEnv) != "" }

// Main runs the container process; it returns only by exiting.
func Main() {
	fd, err := strconv.Atoi(os.Getenv(SyncEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth init: bad sync descriptor")
		os.Exit(1)
	}
	for _, k := range []string{SyncEnv, "_BERTH_JOIN", "_BERTH_UNSHARE", "_BERTH_TIMENS", "GOMAXPROCS", "GOGC"} {
		os.Unsetenv(k)
	}
	conn := handshake.New(os.NewFile(uintptr(fd), "sync"))
	m, err := conn.Expect(handshake.KindConfig)
	if err != nil || m.Config == nil {
		os.Exit(1) // the runtime went away before configuring us
	}
	closeInheritedFds(m.Config, fd)
	err = run(conn, m.Config)
	// run returns only on failure. Before ready the runtime reports the error; after it
	// (`create` has returned) nobody reads the socket, so it goes to the container's stderr.
	if readySent || conn.Send(handshake.Message{Kind: handshake.KindError, Error: err.Error()}) != nil {
		fmt.Fprintln(os.Stderr, "berth init:", err)
	}
	os.Exit(127)
}

func run(conn *handshake.Conn, cfg *handshake.Config) error {
	p := cfg.Process
	if p == nil && cfg.Spec != nil {
		p = cfg.Spec.Process
	}
	if p == nil {
		return errors.New("no process in config")
	}
	var console *os.File
	if cfg.Exec {
		if p.Terminal {
			var err error
			if console, err = openConsole(cfg.ConsoleFd, false); err != nil {
				return err
			}
		}
	} else {
		if cfg.NewCgroupNS {
			// Per thread, like every namespace: this locked thread is the one that builds
			// the mounts (a fresh cgroup mount shows this namespace's root) and execve's.
			if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
				return fmt.Errorf("unshare cgroup namespace: %w", err)
			}
		}
		spec := cfg.Spec
		opts := rootfs.Options{
			Rootfs:   cfg.Rootfs,
			NoPivot:  cfg.NoPivot,
			InUserNS: cfg.InUserNS,
			BeforePivot: func() error {
				if err := conn.Send(handshake.Message{Kind: handshake.KindHooks}); err != nil {
					return err
				}
				if _, err := conn.Expect(handshake.KindResume); err != nil {
					return err
				}
				if spec.Hooks != nil {
					return runHooks("createContainer", spec.Hooks.CreateContainer, cfg.State)
				}
				return nil
			},
			AfterPivot: func() error {
				if p.Terminal {
					var err error
					if console, err = openConsole(cfg.ConsoleFd, true); err != nil {
						return err
					}
				}
				return writeSysctls(spec.Linux)
			},
		}
		if err := rootfs.Setup(spec, opts); err != nil {
			return err
		}
		if err := setHostname(spec); err != nil {
			return err
		}
		if !cfg.NoNewKeyring {
			// A fresh session keyring per container, so containers do not share the
			// host's keys; EPERM/ENOSYS (keyring disabled or restricted) are not fatal.
			if _, err := unix.KeyctlJoinSessionKeyring("_ses.berth"); err != nil && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.EACCES) {
				return fmt.Errorf("join session keyring: %w", err)
			}
		}
	}
	if console != nil {
		if err := becomeTerminalOwner(console); err != nil {
			return err
		}
	}
	path, err := lookPath(p)
	if err != nil {
		return err
	}
	// Confine before reporting ready, as runc does: a created container is already limited,
	// and a limit the kernel refuses (an rlimit above nr_open, say) fails `create`.
	if err := finalize(cfg, p); err != nil {
		return err
	}
	if err := conn.Send(handshake.Message{Kind: handshake.KindReady}); err != nil {
		return err
	}
	readySent = !cfg.Exec // exec's runtime keeps reading until our execve
	if !cfg.Exec {
		if err := waitForStart(cfg.FifoFd); err != nil {
			return err
		}
		if cfg.Spec.Hooks != nil {
			st := *cfg.State
			st.Status = specs.StateRunning
			if err := runHooks("startContainer", cfg.Spec.Hooks.StartContainer, &st); err != nil {
				return err
			}
		}
	}
	resetIgnoredSignals()
	if err := unix.Exec(path, p.Args, p.Env); err != nil {
		return fmt.Errorf("exec %s: %w", p.Args[0], err)
	}
	return nil
}

// resetIgnoredSignals gives the container's program default signal dispositions. execve
// resets handled signals but keeps ignored ones, and whatever started the engine (a shell's
// background job ignores SIGINT and SIGQUIT, nohup SIGHUP) must not decide that a container's
// process cannot be interrupted. The Go runtime keeps an inherited SIGHUP/SIGINT ignore, so
// this is done with raw rt_sigaction calls, just before execve.
func resetIgnoredSignals() {
	type sigaction struct {
		handler  uintptr
		flags    uint64
		restorer uintptr
		mask     uint64
	}
	const sigIgn = 1
	for sig := 1; sig <= 64; sig++ {
		if sig == int(unix.SIGKILL) || sig == int(unix.SIGSTOP) {
			continue
		}
		var old sigaction
		if _, _, e := unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), 0, uintptr(unsafe.Pointer(&old)), 8, 0, 0); e != 0 {
			continue
		}
		if old.handler == sigIgn {
			dfl := sigaction{}
			unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig), uintptr(unsafe.Pointer(&dfl)), 0, 8, 0, 0)
		}
	}
}

// closeInheritedFds closes every descriptor the runtime was started with by its caller and
// passed on without meaning to (exec.Cmd passes any fd lacking CLOEXEC): only ours (the sync
// socket, fifo, console socket) and the preserved ones stay. Go's own descriptors are CLOEXEC
// and are left alone; closeExtraFds covers them before execve.
func closeInheritedFds(cfg *handshake.Config, syncFd int) {
	keep := map[int]bool{syncFd: true, cfg.FifoFd: true, cfg.ConsoleFd: true}
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < 3+cfg.PreserveFds || keep[fd] {
			continue
		}
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC == 0 {
			unix.Close(fd)
		}
	}
}

// waitForStart blocks until `start` opens exec.fifo, then says so through it.
func waitForStart(fd int) error {
	f, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", fd), os.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	defer f.Close()
	unix.Close(fd)
	_, err = f.Write([]byte{'0'})
	return err
}

func setHostname(spec *specs.Spec) error {
	if !HasNamespace(spec, specs.UTSNamespace) {
		return nil
	}
	if spec.Hostname != "" {
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			return fmt.Errorf("set hostname: %w", err)
		}
	}
	if spec.Domainname != "" {
		if err := unix.Setdomainname([]byte(spec.Domainname)); err != nil {
			return fmt.Errorf("set domainname: %w", err)
		}
	}
	return nil
}

// HasNamespace says whether the spec lists a namespace of type t (new or joined).
func HasNamespace(spec *specs.Spec, t specs.LinuxNamespaceType) bool {
	if spec.Linux == nil {
		return false
	}
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == t {
			return true
		}
	}
	return false
}

// writeSysctls runs after /proc is mounted and before /proc/sys is made read-only.
func writeSysctls(l *specs.Linux) error {
	if l == nil {
		return nil
	}
	for k, v := range l.Sysctl {
		rel := strings.ReplaceAll(k, ".", "/")
		if strings.Contains(rel, "..") || strings.HasPrefix(rel, "/") {
			return fmt.Errorf("sysctl %q: invalid name", k)
		}
		if err := os.WriteFile(filepath.Join("/proc/sys", rel), []byte(v), 0); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", k, v, err)
		}
	}
	return nil
}

// lookPath resolves the program the way execvp would, with the container's PATH, so a
// missing program is reported by `create`/`exec` instead of after start.
func lookPath(p *specs.Process) (string, error) {
	if len(p.Args) == 0 {
		return "", errors.New("process args are empty")
	}
	name := p.Args[0]
	if strings.Contains(name, "/") {
		if err := executable(name); err != nil {
			return "", fmt.Errorf("exec %q: %w", name, err)
		}
		return name, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range p.Env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		full := filepath.Join(dir, name)
		if executable(full) == nil {
			return full, nil
		}
	}
	return "", fmt.Errorf("exec %q: executable file not found in $PATH", name)
}

func executable(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st.IsDir() {
		return errors.New("is a directory")
	}
	if st.Mode()&0o111 == 0 {
		return errors.New("permission denied")
	}
	return nil
}

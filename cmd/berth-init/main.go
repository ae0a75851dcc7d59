// Command berth-init is the init process of `--init` containers (docker's docker-init, tini):
//
//	berth-init [-g] [--] CMD [ARGS...]
//
// It starts CMD as its child in a process group of its own (the terminal's foreground group
// when stdin is a terminal, so ^C and ^Z reach the command), forwards every signal it can catch
// to the child (to the child's whole process group with -g), reaps every zombie that is
// reparented to it (it is pid 1 of the container, or a child subreaper elsewhere), and exits
// with the child's exit status, 128+N when a signal N killed the child. SIGCHLD is its own;
// SIGTTIN and SIGTTOU are dropped (a background init must not stop) and SIGURG is not
// forwarded (the Go runtime uses it internally). A command that cannot be run exits 127 (not
// found) or 126 (not executable), as tini.
//
// It is built static with the standard library only:
//
//	CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o bin/berth-init ./cmd/berth-init
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"unsafe"
)

const prSetChildSubreaper = 36

func usage() {
	fmt.Fprintln(os.Stderr, "usage: berth-init [-g] [--] CMD [ARGS...]")
	os.Exit(1)
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	group := false
flags:
	for len(args) > 0 {
		switch args[0] {
		case "-g":
			group = true
		case "-s": // tini's subreaper flag: always on here
		case "-h", "--help":
			usage()
		case "--":
			args = args[1:]
			break flags
		default:
			break flags
		}
		args = args[1:]
	}
	if len(args) == 0 {
		usage()
	}

	// Reparented orphans come to us when we are not pid 1.
	if os.Getpid() != 1 {
		if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); e != 0 {
			fmt.Fprintf(os.Stderr, "berth-init: cannot become a child subreaper: %v (zombies may not be reaped)\n", e)
		}
	}

	// Catch every signal before the child exists: none may be lost, and pid 1 ignores the
	// signals it has no handler for.
	sigs := make(chan os.Signal, 128)
	signal.Notify(sigs, catchable()...)

	pid, err := start(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "berth-init: exec %s failed: %v\n", args[0], err)
		switch {
		case errors.Is(err, exec.ErrNotFound), errors.Is(err, syscall.ENOENT):
			return 127
		case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.ENOEXEC), errors.Is(err, syscall.EISDIR):
			return 126
		}
		return 1
	}

	for sig := range sigs {
		s := sig.(syscall.Signal)
		switch s {
		case syscall.SIGCHLD:
			if status, done := reap(pid); done {
				return exitCode(status)
			}
		case syscall.SIGTTIN, syscall.SIGTTOU:
		default:
			target := pid
			if group {
				target = -pid
			}
			// ESRCH: the child is gone and its SIGCHLD is on the way.
			_ = syscall.Kill(target, s)
		}
	}
	return 1
}

// catchable lists every signal to catch: all but SIGKILL and SIGSTOP, the Go runtime's SIGURG,
// and the real-time signals libc reserves (32, 33).
func catchable() []os.Signal {
	var list []os.Signal
	for n := 1; n <= 64; n++ {
		s := syscall.Signal(n)
		switch {
		case s == syscall.SIGKILL, s == syscall.SIGSTOP, s == syscall.SIGURG, n == 32, n == 33:
			continue
		}
		list = append(list, s)
	}
	return list
}

// start runs the command in a new process group, in the terminal's foreground when stdin is
// the controlling terminal.
func start(args []string) (int, error) {
	path, err := exec.LookPath(args[0])
	if err != nil {
		return 0, err
	}
	attr := &syscall.SysProcAttr{Setpgid: true}
	if isForegroundTTY(0) {
		attr.Foreground = true
		attr.Ctty = 0
	}
	return syscall.ForkExec(path, args, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{0, 1, 2},
		Sys:   attr,
	})
}

// isForegroundTTY reports whether fd is a terminal whose foreground process group is ours:
// only then can the child be made the foreground group.
func isForegroundTTY(fd int) bool {
	var pgrp int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), syscall.TIOCGPGRP, uintptr(unsafe.Pointer(&pgrp))); e != 0 {
		return false
	}
	return int(pgrp) == syscall.Getpgrp()
}

// reap collects every exited child; done is true once the command itself has exited.
func reap(child int) (status syscall.WaitStatus, done bool) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return status, done
		}
		if pid == child {
			status, done = ws, true
		}
	}
}

func exitCode(ws syscall.WaitStatus) int {
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return 128 + int(ws.Signal())
	}
	return 1
}

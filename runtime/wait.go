package runtime

import (
	"os"
	"os/signal"

	"golang.org/x/sys/unix"
)

// BecomeSubreaper makes orphaned descendants (the container's init and exec processes, which
// runtime/nsenter forks away from us) our children, so a foreground `run` or `exec` can wait
// for them. Call it before Create or Exec.
func BecomeSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// Forwarder relays the signals a foreground runtime gets to the container's process. Make it
// before Create, as runc does: from then on signals are held rather than acting on the
// runtime, and they reach the process once Wait knows it.
//
// Catching every signal costs Go one round trip to its signal thread per signal (about 60,
// two context switches each, 1-2 ms); NewForwarder does that in the background while the
// container is being created, and nothing undoes it at the end (the runtime exits).
type Forwarder struct {
	sigs  chan os.Signal
	ready chan struct{}
}

// NewForwarder starts catching signals.
func NewForwarder() *Forwarder {
	f := &Forwarder{sigs: make(chan os.Signal, 64), ready: make(chan struct{})}
	go func() {
		signal.Notify(f.sigs)
		close(f.ready)
	}()
	return f
}

// Wait waits for pid to exit while forwarding signals to it, and returns the exit code a shell
// would report (128+signal when killed).
func (f *Forwarder) Wait(pid int) int {
	go func() {
		for s := range f.sigs {
			if sig, ok := s.(unix.Signal); ok && sig != unix.SIGCHLD && sig != unix.SIGURG && sig != unix.SIGWINCH {
				unix.Kill(pid, sig)
			}
		}
	}()
	for {
		var ws unix.WaitStatus
		// Reap any other orphan that lands on us, but report only pid.
		got, err := unix.Wait4(-1, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 255
		}
		if got != pid {
			continue
		}
		if ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ws.ExitStatus()
	}
}

package runtime

import "golang.org/x/sys/unix"

// BecomeSubreaper makes orphaned descendants (the container's init and exec processes, which
// runtime/nsenter forks away from us) our children, so a foreground `run` or `exec` can wait
// for them. Call it before Create or Exec.
func BecomeSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// Wait waits for pid to exit and returns the exit code a shell would report (128+signal when
// killed). A foreground `run` or `exec` passes its signals on meanwhile (nsenter.ForwardTo).
func Wait(pid int) int {
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

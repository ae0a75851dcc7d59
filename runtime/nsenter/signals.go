package nsenter

// int berth_forward_signals(void);
// void berth_forward_to(int pid);
import "C"

import "syscall"

// ForwardSignals makes the process pass the signals it gets on to the container's process
// (signals.c says which and why it is C). Until ForwardTo names that process they are held.
// Call it before creating the container, as runc does, so that none is lost or acts on the
// runtime meanwhile.
func ForwardSignals() error {
	if errno := C.berth_forward_signals(); errno != 0 {
		return syscall.Errno(errno)
	}
	return nil
}

// ForwardTo passes held signals, and every later one, on to pid; 0 holds them again (call it
// once pid has been reaped).
func ForwardTo(pid int) {
	C.berth_forward_to(C.int(pid))
}

package seccomp

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Load installs prog on the calling thread with seccomp(2)
// (SECCOMP_SET_MODE_FILTER, flags). The caller has set no_new_privs or holds
// CAP_SYS_ADMIN, and should have locked its goroutine to the OS thread: without
// SECCOMP_FILTER_FLAG_TSYNC only this thread is filtered.
//
// With SECCOMP_FILTER_FLAG_NEW_LISTENER in flags (Flags sets it for
// SCMP_ACT_NOTIFY profiles) the listener fd is returned; otherwise -1.
func Load(prog []unix.SockFilter, flags uint) (notifyFd int, err error) {
	if len(prog) == 0 || len(prog) > bpfMaxInsns {
		return -1, fmt.Errorf("%w: %d instructions", ErrBadProgram, len(prog))
	}
	// TSYNC and NEW_LISTENER both want the return value (a failing tid vs the
	// fd); the kernel refuses the pair unless TSYNC_ESRCH moves the tid
	// report to an ESRCH error.
	if flags&unix.SECCOMP_FILTER_FLAG_TSYNC != 0 && flags&unix.SECCOMP_FILTER_FLAG_NEW_LISTENER != 0 {
		flags |= unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, uintptr(flags), uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if errno != 0 {
		return -1, fmt.Errorf("seccomp: load filter (flags %#x): %w", flags, errno)
	}
	if flags&unix.SECCOMP_FILTER_FLAG_NEW_LISTENER != 0 {
		return int(r), nil
	}
	if flags&unix.SECCOMP_FILTER_FLAG_TSYNC != 0 && r != 0 {
		// Without TSYNC_ESRCH a positive return is the thread that could not
		// be synchronised; nothing was installed.
		return -1, fmt.Errorf("seccomp: load filter: thread %d cannot be synchronised", r)
	}
	return -1, nil
}

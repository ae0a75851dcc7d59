package initproc

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// openConsole allocates a pty inside the container's own devpts, sends the master to the
// caller's console socket (runc's protocol: one message, the pty name as data, the master as
// SCM_RIGHTS), and returns the slave. The slave is opened from the master (TIOCGPTPEER), not
// by path, so no name in the container can redirect it. For init it is also bound onto
// /dev/console, as the OCI spec asks.
func openConsole(socketFd int, bindConsole bool) (*os.File, error) {
	if socketFd < 0 {
		return nil, errors.New("terminal requested but no console socket was given")
	}
	defer unix.Close(socketFd)
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/ptmx: %w", err)
	}
	master := os.NewFile(uintptr(m), "ptmx")
	defer master.Close()
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		return nil, fmt.Errorf("unlock pty: %w", err)
	}
	n, err := unix.IoctlGetInt(m, unix.TIOCGPTN)
	if err != nil {
		return nil, fmt.Errorf("pty number: %w", err)
	}
	name := fmt.Sprintf("/dev/pts/%d", n)
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(m), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	if errno != 0 {
		return nil, fmt.Errorf("open pty slave: %w", errno)
	}
	s := int(r)
	slave := os.NewFile(uintptr(s), name)
	if bindConsole {
		if err := bindDevConsole(slave); err != nil {
			slave.Close()
			return nil, err
		}
	}
	if err := unix.Sendmsg(socketFd, []byte(name), unix.UnixRights(m), nil, 0); err != nil {
		slave.Close()
		return nil, fmt.Errorf("send pty master to console socket: %w", err)
	}
	return slave, nil
}

func bindDevConsole(slave *os.File) error {
	f, err := os.OpenFile("/dev/console", os.O_CREATE|os.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create /dev/console: %w", err)
	}
	defer f.Close()
	src := fmt.Sprintf("/proc/self/fd/%d", slave.Fd())
	dst := fmt.Sprintf("/proc/self/fd/%d", f.Fd())
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind pty onto /dev/console: %w", err)
	}
	return nil
}

// becomeTerminalOwner makes the pty the controlling terminal and the stdio of the program.
func becomeTerminalOwner(slave *os.File) error {
	defer slave.Close()
	if _, err := unix.Setsid(); err != nil {
		return fmt.Errorf("setsid: %w", err)
	}
	if err := unix.IoctlSetInt(int(slave.Fd()), unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("set controlling terminal: %w", err)
	}
	for fd := 0; fd < 3; fd++ {
		if err := unix.Dup3(int(slave.Fd()), fd, 0); err != nil {
			return err
		}
	}
	return nil
}

// checkProcfs refuses a file that is not on a real procfs.
func checkProcfs(f *os.File) error {
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		return err
	}
	if st.Type != unix.PROC_SUPER_MAGIC {
		return fmt.Errorf("%s is not on procfs", f.Name())
	}
	return nil
}

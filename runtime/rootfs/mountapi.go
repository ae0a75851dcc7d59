package rootfs

// Thin wrappers over the new mount API (fsopen/fsconfig/fsmount, open_tree,
// mount_setattr, move_mount). Everything here works on fds: a detached mount
// is built and configured first, then attached to a target that was resolved
// in-root beforehand, so no path string is ever re-resolved at mount time.

import (
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

const openTreeCloexec = unix.O_CLOEXEC // OPEN_TREE_CLOEXEC is defined as O_CLOEXEC

// newFS creates a detached mount of a fresh filesystem instance. data holds
// the "key" / "key=value" options handed to fsconfig one by one, which is what
// mount(2) does internally with its comma-separated data string.
func newFS(fstype, source string, data []string, attrs uint64) (*os.File, error) {
	fsfd, err := unix.Fsopen(fstype, unix.FSOPEN_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("fsopen %s: %w", fstype, err)
	}
	defer unix.Close(fsfd)
	if source != "" {
		if err := unix.FsconfigSetString(fsfd, "source", source); err != nil {
			return nil, fsError(fsfd, "source", err)
		}
	}
	for _, opt := range data {
		k, v, hasValue := strings.Cut(opt, "=")
		if hasValue {
			err = unix.FsconfigSetString(fsfd, k, v)
		} else {
			err = unix.FsconfigSetFlag(fsfd, k)
		}
		if err != nil {
			return nil, fsError(fsfd, opt, err)
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return nil, fsError(fsfd, "create", err)
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, int(attrs))
	if err != nil {
		return nil, fsError(fsfd, "fsmount", err)
	}
	return os.NewFile(uintptr(mfd), "mount:"+fstype), nil
}

// fsError appends the messages the filesystem logged into the fs context:
// a bare EINVAL from fsconfig says nothing about which option was bad.
func fsError(fsfd int, what string, err error) error {
	var msgs []string
	buf := make([]byte, 512)
	for range 16 {
		n, rerr := unix.Read(fsfd, buf)
		if rerr != nil || n <= 0 {
			break
		}
		msgs = append(msgs, strings.TrimSpace(string(buf[:n])))
	}
	if len(msgs) == 0 {
		return fmt.Errorf("fsconfig %s: %w", what, err)
	}
	return fmt.Errorf("fsconfig %s: %w (%s)", what, err, strings.Join(msgs, "; "))
}

// cloneTree makes a detached bind mount of what src refers to.
func cloneTree(src *os.File, recursive bool) (*os.File, error) {
	flags := uint(unix.OPEN_TREE_CLONE | openTreeCloexec | unix.AT_EMPTY_PATH)
	if recursive {
		flags |= unix.AT_RECURSIVE
	}
	fd, err := unix.OpenTree(int(src.Fd()), "", flags)
	if err != nil {
		return nil, fmt.Errorf("open_tree: %w", err)
	}
	return os.NewFile(uintptr(fd), "tree:"+src.Name()), nil
}

// setAttr changes only the attributes named in set/clr. Unlike a
// MS_REMOUNT|MS_BIND, it leaves every other flag alone, so flags locked by a
// user namespace (nosuid, nodev, noexec, atime) are preserved for free.
func setAttr(mnt *os.File, set, clr uint64, recursive bool) error {
	if set == 0 && clr == 0 {
		return nil
	}
	flags := uint(unix.AT_EMPTY_PATH)
	if recursive {
		flags |= unix.AT_RECURSIVE
	}
	attr := unix.MountAttr{Attr_set: set, Attr_clr: clr}
	if err := unix.MountSetattr(int(mnt.Fd()), "", flags, &attr); err != nil {
		return fmt.Errorf("mount_setattr: %w", err)
	}
	return nil
}

func setPropagation(mnt *os.File, prop uint64, recursive bool) error {
	flags := uint(unix.AT_EMPTY_PATH)
	if recursive {
		flags |= unix.AT_RECURSIVE
	}
	attr := unix.MountAttr{Propagation: prop}
	if err := unix.MountSetattr(int(mnt.Fd()), "", flags, &attr); err != nil {
		return fmt.Errorf("mount_setattr propagation: %w", err)
	}
	return nil
}

// attach moves a detached mount onto target (an O_PATH fd resolved in-root).
func attach(mnt, target *os.File) error {
	err := unix.MoveMount(int(mnt.Fd()), "", int(target.Fd()), "",
		unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
	if err != nil {
		return fmt.Errorf("move_mount: %w", err)
	}
	return nil
}

package rootfs

// Step 5: read-only paths, masked paths and the read-only root, applied after
// the pivot so "/" is the container root and every lookup is in-root.

import (
	"errors"
	"fmt"
	"os"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// openExisting resolves p in the (new) root; ok is false when it does not
// exist, which masked and read-only paths silently tolerate.
func openExisting(p string) (f *os.File, ok bool, err error) {
	f, err = pathrs.OpenInRoot("/", cleanInRoot(p))
	if errors.Is(err, unix.ENOENT) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return f, true, nil
}

// readonlyPath binds p onto itself (recursively, so mounts below it keep
// being visible) and makes the top of the copy read-only. mount_setattr only
// adds RDONLY, so flags locked by a user namespace need no special care.
func readonlyPath(p string) error {
	p = cleanInRoot(p)
	f, ok, err := openExisting(p)
	if err != nil || !ok {
		return wrapErr("readonly", p, err)
	}
	defer f.Close()
	tree, err := cloneTree(f, true)
	if err != nil {
		return wrapErr("readonly", p, err)
	}
	defer tree.Close()
	if err := setAttr(tree, unix.MOUNT_ATTR_RDONLY, 0, true); err != nil {
		return wrapErr("readonly", p, err)
	}
	return wrapErr("readonly", p, attach(tree, f))
}

// openDevNull opens the container's /dev/null without following a final
// symlink and proves it is the 1:3 character device: the image (or a
// /dev bind mount) may have replaced it with a symlink to a file the
// container could then write through every masked path (CVE-2025-31133).
func openDevNull() (*os.File, error) {
	fd, err := unix.Open("/dev/null", unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotDevNull, err)
	}
	f := os.NewFile(uintptr(fd), "/dev/null")
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		f.Close()
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
		f.Close()
		return nil, fmt.Errorf("%w (mode %#o, rdev %d:%d)", ErrNotDevNull, st.Mode&unix.S_IFMT,
			unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	return f, nil
}

// maskPaths hides files behind /dev/null and directories behind an empty
// read-only tmpfs.
func maskPaths(paths []string) error {
	var null *os.File
	defer func() {
		if null != nil {
			null.Close()
		}
	}()
	for _, p := range paths {
		p = cleanInRoot(p)
		f, ok, err := openExisting(p)
		if err != nil {
			return wrapErr("mask", p, err)
		}
		if !ok {
			continue
		}
		err = maskOne(f, &null)
		f.Close()
		if err != nil {
			return wrapErr("mask", p, err)
		}
	}
	return nil
}

func maskOne(target *os.File, null **os.File) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(target.Fd()), &st); err != nil {
		return err
	}
	var mnt *os.File
	var err error
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		mnt, err = newFS("tmpfs", "tmpfs", nil, unix.MOUNT_ATTR_RDONLY)
	} else {
		if *null == nil {
			if *null, err = openDevNull(); err != nil {
				return err
			}
		}
		mnt, err = cloneTree(*null, false)
	}
	if err != nil {
		return err
	}
	defer mnt.Close()
	return attach(mnt, target)
}

// readonlyRoot flips only the root mount (not the mounts on it) to
// read-only, like runc's MS_BIND|MS_REMOUNT|MS_RDONLY on "/".
func readonlyRoot() error {
	f, err := os.OpenFile("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return wrapErr("readonly root", "/", err)
	}
	defer f.Close()
	return wrapErr("readonly root", "/", setAttr(f, unix.MOUNT_ATTR_RDONLY, 0, false))
}

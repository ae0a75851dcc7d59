// Package exeseal hands out a descriptor of the berth executable that a container cannot write
// through, for the processes (init, exec) that run inside containers before they execve the
// container's program (CVE-2019-5736: a container rewrote the host runtime via /proc/self/exe).
//
// Preferred: a detached, read-only overlayfs mount (new mount API, never attached to any path)
// whose only lower layer is the directory holding the binary. The child is executed from that
// mount, so /proc/<pid>/exe points into a read-only filesystem: opening it for writing fails
// with EROFS and nothing is copied per start. The mount disappears when the last reference
// (the descriptor, then the running image) goes away. Fallback, for kernels without overlayfs
// or the new mount API: a sealed memfd copy of the binary (one copy per start, about 1 ms per
// 10 MB).
package exeseal

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Open returns an O_PATH (or memfd) descriptor of the running executable that cannot be used to
// modify it, and whether the overlay method was used.
func Open() (*os.File, bool, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, false, err
	}
	exe, err = filepath.EvalSymlinks(exe)
	if err != nil {
		return nil, false, err
	}
	if f, err := overlay(exe); err == nil {
		return f, true, nil
	}
	f, err := memfd(exe)
	return f, false, err
}

func overlay(exe string) (*os.File, error) {
	// Overlay needs two lower layers when it has no upper one, and refuses a directory given
	// twice; the second layer is an empty detached tmpfs, so no directory of ours is involved.
	empty, err := detachedMount("tmpfs")
	if err != nil {
		return nil, err
	}
	defer unix.Close(empty)
	mnt, err := detachedMount("overlay", filepath.Dir(exe), fmt.Sprintf("/proc/self/fd/%d", empty))
	if err != nil {
		return nil, err
	}
	defer unix.Close(mnt)
	fd, err := unix.Openat(mnt, filepath.Base(exe), unix.O_PATH|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), "berth (sealed)"), nil
}

// detachedMount creates a read-only mount of fstype, attached nowhere, with the given overlay
// lower layers (top first; lowerdir+ needs Linux 6.8, older kernels take the memfd path).
func detachedMount(fstype string, lowers ...string) (int, error) {
	ctx, err := unix.Fsopen(fstype, unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, err
	}
	defer unix.Close(ctx)
	for _, dir := range lowers {
		if err := unix.FsconfigSetString(ctx, "lowerdir+", dir); err != nil {
			return -1, err
		}
	}
	if err := unix.FsconfigCreate(ctx); err != nil {
		return -1, err
	}
	return unix.Fsmount(ctx, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOSUID)
}

func memfd(exe string) (*os.File, error) {
	src, err := os.Open(exe)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	fd, err := unix.MemfdCreate("berth", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("exeseal: no overlayfs and no memfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), "berth (memfd)")
	if _, err := io.Copy(f, src); err != nil {
		f.Close()
		return nil, err
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

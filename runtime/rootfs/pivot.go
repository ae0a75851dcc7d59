package rootfs

// Step 4: switching "/" to the rootfs.

import (
	"os"
	"sort"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// pivotRoot uses pivot_root(".", "."): the old root ends up stacked on top
// of the new one at "/", so no put_old directory has to exist in (or be
// created in) the image, and a lazy unmount of "." then drops it.
func pivotRoot(root *os.File) error {
	oldroot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return wrapErr("open old root", "/", err)
	}
	defer unix.Close(oldroot)
	if err := unix.Fchdir(int(root.Fd())); err != nil {
		return wrapErr("chdir to rootfs", "/", err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return wrapErr("pivot_root", "/", err)
	}
	// After pivot_root our cwd may still reference the new root under the
	// old one; move to the old root so "." below names it unambiguously.
	if err := unix.Fchdir(oldroot); err != nil {
		return wrapErr("chdir to old root", "/", err)
	}
	// The old root is still a peer of the host's mounts if it was shared;
	// unmounting a peer would propagate the unmount to the host.
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return wrapErr("make old root rslave", "/", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return wrapErr("unmount old root", "/", err)
	}
	return wrapErr("chdir", "/", unix.Chdir("/"))
}

// moveRoot is the --no-pivot path (for roots pivot_root refuses, such as an
// initramfs). The host mounts stay in the namespace, only unreachable by
// path after chroot, so host proc and sysfs instances are detached first:
// they would otherwise stay reachable through fds and count as "fully
// visible" proc/sysfs for the kernel's mount restrictions.
func moveRoot(root *os.File, rootfs string) error {
	mounts, err := mountinfo.GetMounts(func(m *mountinfo.Info) (skip, stop bool) {
		if m.FSType != "proc" && m.FSType != "sysfs" {
			return true, false
		}
		return m.Mountpoint == rootfs || strings.HasPrefix(m.Mountpoint, rootfs+"/"), false
	})
	if err != nil {
		return wrapErr("read mountinfo", "/", err)
	}
	// Deepest first, so a parent is never detached before its children are
	// visited.
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].Mountpoint) > len(mounts[j].Mountpoint) })
	for _, m := range mounts {
		p := m.Mountpoint
		_ = unix.Mount("", p, "", unix.MS_SLAVE|unix.MS_REC, "")
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil {
			if !isErrno(err, unix.EINVAL, unix.EPERM, unix.ENOENT) {
				return wrapErr("unmount host "+m.FSType, p, err)
			}
			if isErrno(err, unix.EPERM) {
				// Locked in a user namespace: cover it instead.
				if err := unix.Mount("tmpfs", p, "tmpfs", 0, ""); err != nil {
					return wrapErr("cover host "+m.FSType, p, err)
				}
			}
		}
	}
	if err := unix.Fchdir(int(root.Fd())); err != nil {
		return wrapErr("chdir to rootfs", "/", err)
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return wrapErr("move rootfs to /", "/", err)
	}
	if err := unix.Chroot("."); err != nil {
		return wrapErr("chroot", "/", err)
	}
	return wrapErr("chdir", "/", unix.Chdir("/"))
}

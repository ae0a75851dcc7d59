package rootfs

// tmpcopyup (podman's --tmpfs and --read-only use it): the new tmpfs starts with a copy of
// what the image has at the destination, so /tmp or /run keep their files and modes.

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// mountTmpfsCopyUp creates the tmpfs detached, copies the destination's content into it while
// it is still writable and attached nowhere, then applies the options and attaches it.
func mountTmpfsCopyUp(target *os.File, source string, o *mountOpts) error {
	mnt, err := newFS("tmpfs", source, o.data, o.attrSet&^unix.MOUNT_ATTR_RDONLY)
	if err != nil {
		return err
	}
	defer mnt.Close()
	// Both sides are addressed through their descriptors: target was resolved in-root, and
	// the walk below never follows a symlink (it copies symlinks as symlinks).
	src := fmt.Sprintf("/proc/self/fd/%d", target.Fd())
	dst := fmt.Sprintf("/proc/self/fd/%d", mnt.Fd())
	if err := copyTree(src, dst); err != nil {
		return fmt.Errorf("tmpcopyup: %w", err)
	}
	if o.attrSet&unix.MOUNT_ATTR_RDONLY != 0 {
		if err := setAttr(mnt, unix.MOUNT_ATTR_RDONLY, 0, false); err != nil {
			return err
		}
	}
	return attachWithOptions(mnt, target, o)
}

func copyTree(src, dst string) error {
	var st unix.Stat_t
	if err := unix.Stat(src, &st); err != nil {
		return err
	}
	// The tmpfs root takes the mode and owner of the directory it covers.
	if err := unix.Chmod(dst, st.Mode&0o7777); err != nil {
		return err
	}
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil || rel == "." {
			return err
		}
		to := filepath.Join(dst, rel)
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			return err
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			err = unix.Mkdir(to, st.Mode&0o7777)
		case unix.S_IFREG:
			err = copyRegular(path, to, st.Mode&0o7777)
		case unix.S_IFLNK:
			var link string
			if link, err = os.Readlink(path); err == nil {
				err = unix.Symlink(link, to)
			}
		default:
			err = unix.Mknod(to, st.Mode, int(st.Rdev))
		}
		if err != nil {
			return err
		}
		if err := unix.Lchown(to, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			// chown clears setuid/setgid bits: set the mode again.
			return unix.Chmod(to, st.Mode&0o7777)
		}
		return nil
	})
}

func copyRegular(from, to string, mode uint32) error {
	in, err := os.OpenFile(from, os.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, os.FileMode(mode))
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	return errors.Join(err, out.Close())
}

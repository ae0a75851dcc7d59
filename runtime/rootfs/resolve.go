package rootfs

// In-root resolution of untrusted (image-controlled) paths. The rootfs is
// owned by the image, so any component may be a symlink pointing anywhere;
// pathrs-lite resolves with openat2(RESOLVE_IN_ROOT) (or an emulation), which
// treats the rootfs as "/" for every ".." and absolute symlink.

import (
	"errors"
	"os"
	"path/filepath"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// ResolveInRoot opens unsafePath inside root, never leaving it, and returns an
// O_PATH|O_CLOEXEC handle. Symlinks are followed, but resolved against root.
func ResolveInRoot(root, unsafePath string) (*os.File, error) {
	return pathrs.OpenInRoot(root, unsafePath)
}

type targetKind int

const (
	targetDir       targetKind = iota // create as directory, follow symlinks in-root
	targetFile                        // create as empty file, follow symlinks in-root
	targetStrictDir                   // proc/sysfs: last component must be a real directory
)

// cleanInRoot makes an untrusted path absolute and lexically clean, so that
// "../../x" becomes "/x": the same thing RESOLVE_IN_ROOT does to "..", done
// early so error messages and the parent/base split use the final name.
func cleanInRoot(p string) string {
	return filepath.Clean("/" + p)
}

// openTarget resolves (creating if needed) a mount destination inside root
// and returns an O_PATH handle to it.
func openTarget(root *os.File, dest string, kind targetKind) (*os.File, error) {
	dest = cleanInRoot(dest)
	if dest == "/" {
		if kind == targetFile {
			return nil, ErrNotDirectory
		}
		return pathrs.OpenatInRoot(root, "/")
	}
	switch kind {
	case targetDir:
		return pathrs.MkdirAllHandle(root, dest, 0o755)
	case targetStrictDir:
		return openStrictDir(root, dest)
	}
	return openFileTarget(root, dest)
}

// openStrictDir refuses a symlink or non-directory as the last component:
// following an in-root symlink would keep us inside the rootfs, but a proc or
// sysfs mounted somewhere unexpected (e.g. /proc -> /tmp) defeats masked and
// read-only paths, which are applied to the canonical locations.
func openStrictDir(root *os.File, dest string) (*os.File, error) {
	dir, base := filepath.Split(dest)
	parent, err := pathrs.MkdirAllHandle(root, dir, 0o755)
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	var st unix.Stat_t
	err = unix.Fstatat(int(parent.Fd()), base, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case errors.Is(err, unix.ENOENT):
		if err := unix.Mkdirat(int(parent.Fd()), base, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, err
		}
	case err != nil:
		return nil, err
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		return nil, ErrSymlinkDestination
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		return nil, ErrNotDirectory
	}
	// O_NOFOLLOW|O_DIRECTORY re-checks what we just stat'ed, closing the
	// window in which the entry could have been swapped for a symlink.
	fd, err := unix.Openat(int(parent.Fd()), base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
			return nil, ErrSymlinkDestination
		}
		return nil, err
	}
	return os.NewFile(uintptr(fd), dest), nil
}

// openFileTarget creates an empty file (for bind mounts of files and device
// nodes) unless something is already there, then resolves it in-root.
func openFileTarget(root *os.File, dest string) (*os.File, error) {
	dir, base := filepath.Split(dest)
	parent, err := pathrs.MkdirAllHandle(root, dir, 0o755)
	if err != nil {
		return nil, err
	}
	// O_EXCL|O_NOFOLLOW: never create through a dangling symlink, which is
	// how a naive create would write outside the root.
	fd, err := unix.Openat(int(parent.Fd()), base, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	parent.Close()
	if err == nil {
		unix.Close(fd)
	} else if !errors.Is(err, unix.EEXIST) {
		return nil, err
	}
	return pathrs.OpenatInRoot(root, dest)
}

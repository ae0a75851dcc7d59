package files

// In-root resolution of container paths and fd-level helpers shared by the
// archiver and the extractor.

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"
)

// Stat describes a path in a container: docker's X-Docker-Container-Path-Stat
// (name, size, mode, mtime, linkTarget).
type Stat = container.PathStat

// openDir opens a trusted directory (a rootfs or a host destination) as an
// O_PATH handle that untrusted paths are then resolved in.
func openDir(dir string) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return os.NewFile(uintptr(fd), dir), nil
}

// cleanPath makes a container path absolute and lexically clean, as docker
// does with filepath.Join("/", p): "../../x" is "/x".
func cleanPath(p string) string {
	return path.Clean("/" + p)
}

// assertsDir reports whether p names a directory by its spelling: a trailing
// "/" or a last component ".".
func assertsDir(p string) bool {
	return strings.HasSuffix(p, "/") || path.Base(p) == "."
}

// preserveTrailing is moby's PreserveTrailingDotOrSeparator for an
// already-cleaned path.
func preserveTrailing(clean, orig string) string {
	if path.Base(orig) == "." && path.Base(clean) != "." {
		if !strings.HasSuffix(clean, "/") {
			clean += "/"
		}
		clean += "."
	}
	if strings.HasSuffix(orig, "/") && !strings.HasSuffix(clean, "/") {
		clean += "/"
	}
	return clean
}

// splitPathDirEntry is moby's SplitPathDirEntry: the parent and the base
// name, keeping a trailing "." as the base.
func splitPathDirEntry(p string) (dir, base string) {
	clean := path.Clean(p)
	if path.Base(p) == "." {
		clean += "/."
	}
	return path.Dir(clean), path.Base(clean)
}

// topName is the name of a copy source's top entry in the archive: the base
// name of the path as the user wrote it, "." for "dir/." and for "/".
func topName(p string) string {
	_, base := splitPathDirEntry(p)
	if base == "/" {
		return "."
	}
	return base
}

// openInRoot resolves the clean absolute path p inside root and returns an
// O_PATH handle. Every symlink is resolved against root; the last component is
// followed only if follow is set (otherwise a symlink there is returned
// itself).
func openInRoot(root *os.File, p string, follow bool) (*os.File, error) {
	if p == "/" || follow {
		return inRoot(root, p)
	}
	dir, base := path.Split(p)
	parent, err := inRoot(root, dir)
	if err != nil {
		return nil, err
	}
	defer parent.Close()
	fd, err := unix.Openat(int(parent.Fd()), base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "openat", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}

// inRoot is openat2(root, p, O_PATH, RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS),
// falling back to pathrs-lite's emulation where openat2 is unavailable and
// retrying the EAGAIN the kernel returns when a rename races with "..".
func inRoot(root *os.File, p string) (*os.File, error) {
	how := &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	for range 32 {
		fd, err := unix.Openat2(int(root.Fd()), p, how)
		switch err {
		case nil:
			return os.NewFile(uintptr(fd), p), nil
		case unix.EAGAIN, unix.EINTR:
			continue
		case unix.ENOSYS, unix.EPERM, unix.E2BIG, unix.EINVAL:
			return pathrs.OpenatInRoot(root, p)
		}
		return nil, &os.PathError{Op: "openat2", Path: p, Err: err}
	}
	return pathrs.OpenatInRoot(root, p)
}

// notFound maps a lookup failure to ErrNotFound where it means "no such path".
func notFound(p string, err error) error {
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return fmt.Errorf("%w: %s", ErrNotFound, p)
	}
	return fmt.Errorf("%s: %w", p, err)
}

func fstat(f *os.File) (*unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// fileMode converts a stat mode to Go's os.FileMode (as os.Lstat does).
func fileMode(m uint32) os.FileMode {
	mode := os.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFBLK:
		mode |= os.ModeDevice
	case unix.S_IFCHR:
		mode |= os.ModeDevice | os.ModeCharDevice
	case unix.S_IFDIR:
		mode |= os.ModeDir
	case unix.S_IFIFO:
		mode |= os.ModeNamedPipe
	case unix.S_IFLNK:
		mode |= os.ModeSymlink
	case unix.S_IFSOCK:
		mode |= os.ModeSocket
	}
	if m&unix.S_ISGID != 0 {
		mode |= os.ModeSetgid
	}
	if m&unix.S_ISUID != 0 {
		mode |= os.ModeSetuid
	}
	if m&unix.S_ISVTX != 0 {
		mode |= os.ModeSticky
	}
	return mode
}

func statOf(name string, st *unix.Stat_t) Stat {
	return Stat{
		Name:  name,
		Size:  st.Size,
		Mode:  fileMode(st.Mode),
		Mtime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec),
	}
}

// StatPath describes path in the container whose rootfs is mounted at
// rootfs, like docker's HEAD /containers/{id}/archive: a symlink as the last
// component is described itself (with LinkTarget, its in-root resolution as
// an absolute container path) unless the path ends in "/" or "/.".
func StatPath(rootfs, p string) (Stat, error) {
	root, err := openDir(rootfs)
	if err != nil {
		return Stat{}, err
	}
	defer root.Close()
	return statPath(root, rootfs, p)
}

func statPath(root *os.File, rootfs, p string) (Stat, error) {
	clean := cleanPath(p)
	abs := preserveTrailing(clean, p)
	h, err := openInRoot(root, clean, assertsDir(p))
	if err != nil {
		return Stat{}, notFound(abs, err)
	}
	defer h.Close()
	st, err := fstat(h)
	if err != nil {
		return Stat{}, fmt.Errorf("%s: %w", abs, err)
	}
	if assertsDir(p) && st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return Stat{}, fmt.Errorf("%w: %s", ErrNotDirectory, abs)
	}
	s := statOf(path.Base(abs), st)
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		s.LinkTarget, err = linkTarget(rootfs, clean)
		if err != nil {
			return Stat{}, fmt.Errorf("%s: %w", abs, err)
		}
	}
	return s, nil
}

// linkTarget resolves p in-root by name (it need not exist, as with docker)
// and returns it as an absolute container path. It is information for the
// caller, which resolves the answer in-root again before using it.
func linkTarget(rootfs, p string) (string, error) {
	joined, err := securejoin.SecureJoin(rootfs, p)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(filepath.Clean(rootfs), joined)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("cannot resolve symlink %s in the container", p)
	}
	return path.Clean("/" + rel), nil
}

// reopen opens the inode behind an O_PATH fd for real I/O through its
// /proc/self/fd magic link (the host's /proc, which the container cannot
// touch). The inode is fixed: only call it after fstat proved the type.
func reopen(fd int, flags int) (*os.File, error) {
	p := fmt.Sprintf("/proc/self/fd/%d", fd)
	nfd, err := unix.Open(p, flags|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(nfd), p), nil
}

func readlinkat(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// readDirNames lists a directory opened for reading, sorted.
func readDirNames(dirfd int) ([]string, error) {
	dup, err := unix.Dup(dirfd)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(dup), "dir")
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}

// carriedXattr reports whether an xattr travels in archives: user.* and file
// capabilities. trusted.* belongs to overlay and other security.* names are
// host policy (LSM labels).
func carriedXattr(name string) bool {
	return strings.HasPrefix(name, "user.") || name == "security.capability"
}

// fdXattrs returns the carried xattrs of an open (non-O_PATH) fd.
func fdXattrs(fd int) (map[string]string, error) {
	var buf []byte
	for size := 1024; ; size *= 4 {
		buf = make([]byte, size)
		n, err := unix.Flistxattr(fd, buf)
		if err == unix.ERANGE {
			continue
		}
		if err == unix.ENOTSUP {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		buf = buf[:n]
		break
	}
	var out map[string]string
	for name := range strings.SplitSeq(string(buf), "\x00") {
		if name == "" || !carriedXattr(name) {
			continue
		}
		val, err := fgetxattr(fd, name)
		if err == unix.ENODATA {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("xattr %s: %w", name, err)
		}
		if out == nil {
			out = map[string]string{}
		}
		out[name] = string(val)
	}
	return out, nil
}

func fgetxattr(fd int, name string) ([]byte, error) {
	for size := 256; ; size *= 4 {
		buf := make([]byte, size)
		n, err := unix.Fgetxattr(fd, name, buf)
		if err == unix.ERANGE && size < 1<<20 {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

package volume

// Copy-up: when an empty volume is mounted over a directory of the image,
// docker first copies that directory's content into the volume. The rootfs
// is untrusted (the image chose every symlink in it) and the volume may be
// shared with a running container, so both sides are handled fd-relative:
// the image path is resolved in-root (openat2 RESOLVE_IN_ROOT through
// pathrs-lite: a symlink to /etc means the rootfs's /etc, never the host's),
// every source entry is opened O_PATH|O_NOFOLLOW and copied as what fstat
// says it is, and every destination entry is created relative to its parent
// fd with O_EXCL/O_NOFOLLOW, mknodat or symlinkat.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// CopyUp copies the content of directory p of the image mounted at rootfs
// into the empty volume directory dst, preserving modes, owners, times,
// xattrs (user.* and security.capability), symlinks, hard links and device
// nodes, and gives dst the owner and mode of p, as docker does. It does
// nothing if p does not exist in the image or is not a directory, or if dst
// is not empty.
func CopyUp(ctx context.Context, rootfs, p string, dst string) error {
	root, err := os.OpenFile(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("volume: copy-up: %w", err)
	}
	defer root.Close()
	src, err := pathrs.OpenatInRoot(root, path.Clean("/"+p))
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return nil
		}
		return fmt.Errorf("volume: copy-up %s: %w", p, err)
	}
	defer src.Close()
	var sst unix.Stat_t
	if err := unix.Fstat(int(src.Fd()), &sst); err != nil {
		return fmt.Errorf("volume: copy-up %s: %w", p, err)
	}
	if sst.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil
	}
	sfd, err := unix.Openat(int(src.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("volume: copy-up %s: %w", p, err)
	}
	defer unix.Close(sfd)
	dfd, err := unix.Open(dst, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("volume: copy-up: %w", err)
	}
	defer unix.Close(dfd)
	names, err := readDir(dfd)
	if err != nil {
		return fmt.Errorf("volume: copy-up: %w", err)
	}
	if len(names) > 0 {
		return nil
	}
	c := &copier{ctx: ctx, dst: dfd, links: map[[2]uint64]string{}, buf: make([]byte, 128<<10)}
	if err := c.dir(sfd, dfd, ""); err != nil {
		return fmt.Errorf("volume: copy-up %s: %w", p, err)
	}
	// The volume's root takes the owner and mode of the image directory.
	if err := setAttrs(sfd, dfd, &sst); err != nil {
		return fmt.Errorf("volume: copy-up %s: %w", p, err)
	}
	return nil
}

type copier struct {
	ctx   context.Context
	dst   int                  // the volume root (for hard links)
	links map[[2]uint64]string // first destination path of each multiply-linked inode
	buf   []byte
}

func readDir(fd int) ([]string, error) {
	dup, err := unix.Dup(fd)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(dup), "dir")
	defer f.Close()
	names, err := f.Readdirnames(-1)
	slices.Sort(names)
	return names, err
}

// dir copies the entries of source directory sfd into dfd; rel is their
// path below the volume root ("" or "a/b/").
func (c *copier) dir(sfd, dfd int, rel string) error {
	names, err := readDir(sfd)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		if err := c.entry(sfd, dfd, n, rel+n); err != nil {
			return fmt.Errorf("%s: %w", rel+n, err)
		}
	}
	return nil
}

func (c *copier) entry(sfd, dfd int, name, rel string) error {
	h, err := unix.Openat(sfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == unix.ENOENT {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(h)
	var st unix.Stat_t
	if err := unix.Fstat(h, &st); err != nil {
		return err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := unix.Mkdirat(dfd, name, 0o700); err != nil {
			return err
		}
		nd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(nd)
		sd, err := unix.Openat(h, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(sd)
		if err := c.dir(sd, nd, rel+"/"); err != nil {
			return err
		}
		return setAttrs(sd, nd, &st) // times last: the children changed them
	case unix.S_IFREG:
		if st.Nlink > 1 {
			id := [2]uint64{st.Dev, st.Ino}
			if first, ok := c.links[id]; ok && c.link(first, dfd, name) == nil {
				return nil
			}
			c.links[id] = rel
		}
		return c.file(h, dfd, name, &st)
	case unix.S_IFLNK:
		target, err := readlinkat(h)
		if err != nil {
			return err
		}
		if err := unix.Symlinkat(target, dfd, name); err != nil {
			return err
		}
		return nodeAttrs(dfd, name, &st, false)
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
		if err := unix.Mknodat(dfd, name, st.Mode&unix.S_IFMT|0o600, int(st.Rdev)); err != nil {
			return err
		}
		return nodeAttrs(dfd, name, &st, true)
	}
	return nil // sockets belong to a running process, not to content
}

// link makes name in dfd a hard link to rel (a file this copy created),
// reaching rel's parent from the volume root without following symlinks.
func (c *copier) link(rel string, dfd int, name string) error {
	dir, base := path.Split(rel)
	pfd := c.dst
	if dir = strings.TrimSuffix(dir, "/"); dir != "" {
		fd, err := unix.Openat2(c.dst, dir, &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
		})
		if err != nil {
			return err // no openat2: the caller copies instead
		}
		defer unix.Close(fd)
		pfd = fd
	}
	return unix.Linkat(pfd, base, dfd, name, 0)
}

// file copies a regular file; h is its O_PATH handle, opened for reading
// through /proc/self/fd only now that fstat proved it regular.
func (c *copier) file(h, dfd int, name string, st *unix.Stat_t) error {
	sfd, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", h), unix.O_RDONLY|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	src := os.NewFile(uintptr(sfd), name)
	defer src.Close()
	fd, err := unix.Openat(dfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	dst := os.NewFile(uintptr(fd), name)
	defer dst.Close()
	if _, err := io.CopyBuffer(dst, src, c.buf); err != nil {
		return err
	}
	return setAttrs(sfd, fd, st)
}

// setAttrs gives open file or directory dfd the owner, mode, carried xattrs
// and times of sfd (whose stat is st). chown comes before chmod because it
// clears setuid/setgid.
func setAttrs(sfd, dfd int, st *unix.Stat_t) error {
	if err := unix.Fchown(dfd, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if err := unix.Fchmod(dfd, st.Mode&0o7777); err != nil {
		return err
	}
	if err := copyXattrs(sfd, dfd); err != nil {
		return err
	}
	// The magic link of a real (non-O_PATH) fd is the inode itself.
	return unix.UtimesNanoAt(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", dfd), []unix.Timespec{st.Atim, st.Mtim}, 0)
}

// nodeAttrs sets owner, times and (for devices and FIFOs) mode of an entry
// that cannot be opened for I/O, without ever following a symlink: chmod
// goes through an O_PATH|O_NOFOLLOW fd whose type was checked.
func nodeAttrs(dfd int, name string, st *unix.Stat_t, chmod bool) error {
	if err := unix.Fchownat(dfd, name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	if chmod {
		fd, err := unix.Openat(dfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		var nst unix.Stat_t
		err = unix.Fstat(fd, &nst)
		if err == nil && nst.Mode&unix.S_IFMT != st.Mode&unix.S_IFMT {
			err = fmt.Errorf("%s was replaced while being created", name)
		}
		if err == nil {
			err = unix.Chmod(fmt.Sprintf("/proc/self/fd/%d", fd), st.Mode&0o7777)
		}
		unix.Close(fd)
		if err != nil {
			return err
		}
	}
	return unix.UtimesNanoAt(dfd, name, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW)
}

// copyXattrs copies user.* and security.capability (trusted.* belongs to
// overlay, other security.* names are host policy).
func copyXattrs(sfd, dfd int) error {
	size, err := unix.Flistxattr(sfd, nil)
	if err == unix.ENOTSUP || size == 0 {
		return nil
	}
	if err != nil {
		return err
	}
	buf := make([]byte, size)
	if size, err = unix.Flistxattr(sfd, buf); err != nil {
		return err
	}
	for name := range strings.SplitSeq(string(buf[:size]), "\x00") {
		if !strings.HasPrefix(name, "user.") && name != "security.capability" {
			continue
		}
		n, err := unix.Fgetxattr(sfd, name, nil)
		if err == unix.ENODATA {
			continue
		}
		if err != nil {
			return fmt.Errorf("xattr %s: %w", name, err)
		}
		val := make([]byte, n)
		if n, err = unix.Fgetxattr(sfd, name, val); err != nil {
			return fmt.Errorf("xattr %s: %w", name, err)
		}
		if err := unix.Fsetxattr(dfd, name, val[:n], 0); err != nil && err != unix.ENOTSUP {
			return fmt.Errorf("xattr %s: %w", name, err)
		}
	}
	return nil
}

func readlinkat(h int) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(h, "", buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

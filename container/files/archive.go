package files

// The archiver: a tree, reached through an O_PATH handle, as a tar stream.
//
// Entry format (docker's, from moby's archive package): PAX headers, numeric
// uid/gid with empty user/group names, mtime truncated to seconds and no
// atime/ctime, directories named with a trailing "/", the second and later
// names of a multiply-linked inode as hard-link entries to the first name,
// character/block devices and FIFOs kept, sockets left out, the xattrs user.*
// and security.capability as SCHILY.xattr.* records. Children are emitted in
// byte order of their names, so the same tree always gives the same stream.
//
// Every child is opened with O_PATH|O_NOFOLLOW relative to its parent's fd
// and archived as what fstat of that fd says it is: an entry swapped for a
// symlink while we walk is archived as a symlink, never followed.

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"time"

	"golang.org/x/sys/unix"
)

// CopyOutOpts configures CopyOut.
type CopyOutOpts struct {
	// FollowLink archives the target of a symlink given as the source path
	// (docker cp -L), under the source's name.
	FollowLink bool
}

// CopyOut writes srcPath of the container whose rootfs is mounted at rootfs
// to w as a tar stream (docker cp CONTAINER:SRC -), named relative to the
// base name of srcPath ("." for "dir/."), and returns the source's Stat.
func CopyOut(ctx context.Context, rootfs, srcPath string, w io.Writer, opts CopyOutOpts) (Stat, error) {
	root, err := openDir(rootfs)
	if err != nil {
		return Stat{}, err
	}
	defer root.Close()
	src, err := openSource(root, rootfs, srcPath, opts.FollowLink)
	if err != nil {
		return Stat{}, err
	}
	defer src.h.Close()
	if err := archiveTo(ctx, src.h, src.st, topName(src.abs), w); err != nil {
		return Stat{}, fmt.Errorf("copy %s from container: %w", src.abs, err)
	}
	return src.stat, nil
}

// source is an opened copy source in a container.
type source struct {
	h    *os.File     // O_PATH handle
	st   *unix.Stat_t // of h
	abs  string       // absolute path as asked, trailing "/" or "/." kept
	stat Stat         // for the caller
}

func openSource(root *os.File, rootfs, p string, follow bool) (*source, error) {
	clean := cleanPath(p)
	abs := preserveTrailing(clean, p)
	h, err := openInRoot(root, clean, follow || assertsDir(p))
	if err != nil {
		return nil, notFound(abs, err)
	}
	st, err := fstat(h)
	if err != nil {
		h.Close()
		return nil, fmt.Errorf("%s: %w", abs, err)
	}
	if assertsDir(p) && st.Mode&unix.S_IFMT != unix.S_IFDIR {
		h.Close()
		return nil, fmt.Errorf("%w: %s", ErrNotDirectory, abs)
	}
	s := &source{h: h, st: st, abs: abs, stat: statOf(path.Base(abs), st)}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		if s.stat.LinkTarget, err = linkTarget(rootfs, clean); err != nil {
			h.Close()
			return nil, fmt.Errorf("%s: %w", abs, err)
		}
	}
	return s, nil
}

// Export writes the whole merged rootfs to w as a tar (docker export):
// entries named relative to the root ("bin/", "etc/passwd"), no entry for
// the root itself.
func Export(ctx context.Context, rootfs string, w io.Writer) error {
	root, err := openDir(rootfs)
	if err != nil {
		return err
	}
	defer root.Close()
	fd, err := unix.Openat(int(root.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("export %s: %w", rootfs, err)
	}
	defer unix.Close(fd)
	tw := tar.NewWriter(w)
	a := newArchiver(ctx, tw)
	if err := a.children(fd, ""); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return tw.Close()
}

// archiveTo writes the object behind O_PATH handle h as a tar named name.
func archiveTo(ctx context.Context, h *os.File, st *unix.Stat_t, name string, w io.Writer) error {
	tw := tar.NewWriter(w)
	if err := newArchiver(ctx, tw).add(int(h.Fd()), st, name); err != nil {
		return err
	}
	return tw.Close()
}

type archiver struct {
	ctx   context.Context
	tw    *tar.Writer
	links map[[2]uint64]string // first tar name of each multiply-linked inode
	buf   []byte
}

func newArchiver(ctx context.Context, tw *tar.Writer) *archiver {
	return &archiver{ctx: ctx, tw: tw, links: map[[2]uint64]string{}, buf: make([]byte, 128<<10)}
}

// entryError names the entry an error is about, once.
type entryError struct {
	name string
	err  error
}

func (e *entryError) Error() string { return e.name + ": " + e.err.Error() }
func (e *entryError) Unwrap() error { return e.err }

func named(name string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(*entryError); ok {
		return err
	}
	return &entryError{name: name, err: err}
}

// children archives the entries of directory dirfd (opened for reading),
// named prefix+name.
func (a *archiver) children(dirfd int, prefix string) error {
	names, err := readDirNames(dirfd)
	if err != nil {
		return named(prefix, err)
	}
	for _, n := range names {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		fd, err := unix.Openat(dirfd, n, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == unix.ENOENT {
			continue // removed while we walk
		}
		if err != nil {
			return named(prefix+n, err)
		}
		var st unix.Stat_t
		if err = unix.Fstat(fd, &st); err == nil {
			err = a.add(fd, &st, prefix+n)
		}
		unix.Close(fd)
		if err != nil {
			return named(prefix+n, err)
		}
	}
	return nil
}

// add archives the object behind O_PATH handle h (whose stat is st) as name,
// with a directory's tree below it.
func (a *archiver) add(h int, st *unix.Stat_t, name string) error {
	hdr := &tar.Header{
		Name:    name,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Sec, 0),
		Format:  tar.FormatPAX,
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		fd, err := unix.Openat(h, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
		if err := a.xattrs(fd, hdr); err != nil {
			return err
		}
		if err := a.tw.WriteHeader(hdr); err != nil {
			return err
		}
		return a.children(fd, hdr.Name)
	case unix.S_IFREG:
		if st.Nlink > 1 {
			id := [2]uint64{st.Dev, st.Ino}
			if first, ok := a.links[id]; ok {
				hdr.Typeflag = tar.TypeLink
				hdr.Linkname = first
				return a.tw.WriteHeader(hdr)
			}
			a.links[id] = name
		}
		f, err := reopen(h, unix.O_RDONLY)
		if err != nil {
			return err
		}
		defer f.Close()
		return a.file(f, hdr, st.Size)
	case unix.S_IFLNK:
		target, err := readlinkat(h, "")
		if err != nil {
			return err
		}
		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname = target
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor = int64(unix.Major(st.Rdev))
		hdr.Devminor = int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	default:
		return nil // sockets cannot be archived; docker skips them too
	}
	return a.tw.WriteHeader(hdr)
}

func (a *archiver) xattrs(fd int, hdr *tar.Header) error {
	xa, err := fdXattrs(fd)
	if err != nil {
		return err
	}
	for k, v := range xa {
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = map[string]string{}
		}
		hdr.PAXRecords["SCHILY.xattr."+k] = v
	}
	return nil
}

// file writes a regular file of size bytes (its size when stat'ed). A file
// that shrinks meanwhile is padded with zeros and one that grows is cut, as
// GNU tar does: a running container may be writing it.
func (a *archiver) file(f *os.File, hdr *tar.Header, size int64) error {
	if err := a.xattrs(int(f.Fd()), hdr); err != nil {
		return err
	}
	hdr.Typeflag = tar.TypeReg
	hdr.Size = size
	if err := a.tw.WriteHeader(hdr); err != nil {
		return err
	}
	n, err := io.CopyBuffer(onlyWriter{a.tw}, io.LimitReader(f, size), a.buf)
	if err != nil {
		return err
	}
	for n < size {
		clear(a.buf)
		chunk := min(int64(len(a.buf)), size-n)
		if _, err := a.tw.Write(a.buf[:chunk]); err != nil {
			return err
		}
		n += chunk
	}
	return nil
}

// onlyWriter hides tar.Writer's ReadFrom so CopyBuffer uses our buffer.
type onlyWriter struct{ w io.Writer }

func (o onlyWriter) Write(p []byte) (int, error) { return o.w.Write(p) }

package files

// docker cp between the host and a container: the CLI's decisions
// (moby's archive.CopyInfoDestinationPath and PrepareArchiveCopy) on top of
// CopyOut's archiver and CopyIn's extractor. Instead of rewriting the names
// of a tar stream afterwards, the archiver is told the top-level name the
// destination needs.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// CopyOpts configures CopyToContainer and CopyFromContainer.
type CopyOpts struct {
	// FollowLink copies the target of a symlink given as the source path
	// (docker cp -L), under the source's name.
	FollowLink bool
	CopyInOpts
}

// destInfo is a copy destination as the docker CLI sees it.
type destInfo struct {
	path   string // after following a symlink at the destination
	exists bool
	isDir  bool
}

// prepareCopy decides where the archive of a source is extracted and under
// which top-level name (moby's PrepareArchiveCopy).
func prepareCopy(srcIsDir bool, srcBase string, dst destInfo) (dir, top string, err error) {
	dstDir, dstBase := splitPathDirEntry(dst.path)
	switch {
	case dst.exists && dst.isDir:
		return dst.path, srcBase, nil
	case dst.exists && srcIsDir:
		return "", "", fmt.Errorf("%w %s: %s exists and is not a directory", ErrCannotCopyDir, srcBase, dst.path)
	case dst.exists, srcIsDir:
		return dstDir, dstBase, nil
	case assertsDir(dst.path):
		return "", "", fmt.Errorf("%w: %s", ErrDirNotExists, dst.path)
	}
	return dstDir, dstBase, nil
}

// CopyToContainer copies hostSrc (a host path: trusted, read directly) to
// ctrDst in the container whose rootfs is mounted at rootfs, with docker cp's
// rules (see the package documentation).
func CopyToContainer(ctx context.Context, rootfs, hostSrc, ctrDst string, opts CopyOpts) error {
	root, err := openDir(rootfs)
	if err != nil {
		return err
	}
	defer root.Close()
	dst, err := containerDest(root, rootfs, ctrDst)
	if err != nil {
		return err
	}
	src, err := openHostSource(hostSrc, opts.FollowLink)
	if err != nil {
		return err
	}
	defer src.h.Close()
	dir, top, err := prepareCopy(src.st.Mode&unix.S_IFMT == unix.S_IFDIR, topName(src.abs), dst)
	if err != nil {
		return err
	}
	return pipeCopy(
		func(w io.Writer) error { return archiveTo(ctx, src.h, src.st, top, w) },
		func(r io.Reader) error { return extract(ctx, root, cleanPath(dir), r, opts.CopyInOpts) },
	)
}

// CopyFromContainer copies ctrSrc of the container whose rootfs is mounted at
// rootfs to hostDst, with docker cp's rules. The content is untrusted: it is
// extracted fd-relative below the host destination directory, so a symlink
// from the container becomes a symlink on the host and is never followed.
func CopyFromContainer(ctx context.Context, rootfs, ctrSrc, hostDst string, opts CopyOpts) error {
	root, err := openDir(rootfs)
	if err != nil {
		return err
	}
	defer root.Close()
	src, err := openSource(root, rootfs, ctrSrc, opts.FollowLink)
	if err != nil {
		return err
	}
	defer src.h.Close()
	dst, err := hostDest(hostDst)
	if err != nil {
		return err
	}
	dir, top, err := prepareCopy(src.st.Mode&unix.S_IFMT == unix.S_IFDIR, topName(src.abs), dst)
	if err != nil {
		return err
	}
	hostRoot, err := openDir(dir)
	if err != nil {
		return err
	}
	defer hostRoot.Close()
	return pipeCopy(
		func(w io.Writer) error { return archiveTo(ctx, src.h, src.st, top, w) },
		func(r io.Reader) error { return extract(ctx, hostRoot, "/", r, opts.CopyInOpts) },
	)
}

// containerDest stats a destination in the container as the docker CLI does:
// a symlink is followed (in-root); an existing destination must be a
// directory or a regular file; a missing one needs an existing parent
// directory.
func containerDest(root *os.File, rootfs, p string) (destInfo, error) {
	info := destInfo{path: preserveTrailing(cleanPath(p), p)}
	st, err := statPath(root, rootfs, info.path)
	if err == nil && st.Mode&os.ModeSymlink != 0 {
		info.path = st.LinkTarget
		st, err = statPath(root, rootfs, info.path)
	}
	switch {
	case err == nil:
		if !st.Mode.IsDir() && !st.Mode.IsRegular() {
			return info, fmt.Errorf("%w: %s", ErrInvalidDestination, p)
		}
		info.exists, info.isDir = true, st.Mode.IsDir()
		return info, nil
	case !errors.Is(err, ErrNotFound):
		return info, err
	}
	parent, _ := splitPathDirEntry(info.path)
	if _, err := statPath(root, rootfs, parent+"/"); err != nil {
		if errors.Is(err, ErrNotFound) {
			return info, fmt.Errorf("%w: %s", ErrDirNotExists, parent)
		}
		return info, err
	}
	return info, nil
}

// hostDest is moby's CopyInfoDestinationPath: the host side is trusted, so
// symlinks at the destination are followed with plain os calls.
func hostDest(p string) (destInfo, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return destInfo{}, err
	}
	p = preserveTrailing(abs, p)
	orig := p
	st, err := os.Lstat(p)
	for n := 0; err == nil && st.Mode()&os.ModeSymlink != 0; n++ {
		if n > 10 {
			return destInfo{}, fmt.Errorf("too many symlinks in %s", orig)
		}
		target, rerr := os.Readlink(p)
		if rerr != nil {
			return destInfo{}, rerr
		}
		if !filepath.IsAbs(target) {
			parent, _ := splitPathDirEntry(p)
			target = filepath.Join(parent, target)
		}
		p = target
		st, err = os.Lstat(p)
	}
	if err == nil {
		return destInfo{path: p, exists: true, isDir: st.IsDir()}, nil
	}
	if errors.Is(err, unix.ENOTDIR) {
		return destInfo{}, fmt.Errorf("%w: %w", ErrNotDirectory, err)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return destInfo{}, err
	}
	parent, _ := splitPathDirEntry(p)
	pst, err := os.Stat(parent)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return destInfo{}, fmt.Errorf("%w: %s", ErrDirNotExists, parent)
		}
		return destInfo{}, err
	}
	if !pst.IsDir() {
		return destInfo{}, fmt.Errorf("%w: %s", ErrNotDirectory, parent)
	}
	return destInfo{path: p}, nil
}

// openHostSource opens a host copy source: symlinks before the last
// component are followed (trusted), the last one only with follow or a
// trailing "/" or "/.".
func openHostSource(p string, follow bool) (*source, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return nil, err
	}
	abs = preserveTrailing(abs, p)
	flags := unix.O_PATH | unix.O_CLOEXEC
	switch {
	case assertsDir(p):
		flags |= unix.O_DIRECTORY
	case !follow:
		flags |= unix.O_NOFOLLOW
	}
	fd, err := unix.Open(filepath.Clean(abs), flags, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: abs, Err: err}
	}
	h := os.NewFile(uintptr(fd), abs)
	st, err := fstat(h)
	if err != nil {
		h.Close()
		return nil, err
	}
	return &source{h: h, st: st, abs: abs, stat: statOf(filepath.Base(abs), st)}, nil
}

// pipeCopy runs produce and consume connected by a pipe and returns the
// error that explains a failure best: the producer's when the consumer only
// saw the stream break.
func pipeCopy(produce func(io.Writer) error, consume func(io.Reader) error) error {
	pr, pw := io.Pipe()
	perrc := make(chan error, 1)
	go func() {
		err := produce(pw)
		pw.CloseWithError(err)
		perrc <- err
	}()
	cerr := consume(pr)
	if cerr != nil {
		pr.CloseWithError(cerr)
	} else {
		// The consumer stops at the end-of-archive marker; drain the rest.
		_, cerr = io.Copy(io.Discard, pr)
	}
	perr := <-perrc
	if perr != nil && (cerr == nil || errors.Is(cerr, ErrInvalidArchive)) {
		return perr
	}
	return cerr
}

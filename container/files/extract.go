package files

// The extractor: a tar stream into a directory that untrusted code can
// modify while we write.
//
// Each entry's parent directory is resolved in-root (openat2
// RESOLVE_IN_ROOT against the resolution root, by the container path
// dst/dir) and created in-root if missing; the entry itself is created
// relative to that fd and never through a symlink: an existing entry that is
// not a directory is unlinked first, files are created O_EXCL|O_NOFOLLOW,
// directories are opened O_NOFOLLOW|O_DIRECTORY. Symlinks created by this
// archive are remembered and an entry whose path goes through one is
// refused, so a tar cannot point a link somewhere and then write through it.
// Names are cleaned like docker does (leading "/" dropped, path cleaned);
// names and hard-link targets still climbing out with ".." are refused.

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// CopyInOpts configures the extraction of an archive.
type CopyInOpts struct {
	// CopyUIDGID keeps the uid/gid recorded in the archive (docker cp -a).
	CopyUIDGID bool
	// UID and GID own every extracted entry unless CopyUIDGID is set: in a
	// container, its root as seen from the host (0 without a user
	// namespace); on the host, the user who asked for the copy.
	UID, GID int
	// AllowOverwriteDirWithFile lets an entry replace an existing directory
	// with a non-directory and the reverse (docker's API parameter
	// noOverwriteDirNonDir=false). The docker CLI never sets it.
	AllowOverwriteDirWithFile bool
}

// CopyIn extracts the tar stream r into directory dstPath of the container
// whose rootfs is mounted at rootfs (docker cp - CONTAINER:DEST). dstPath is
// resolved in-root with every symlink followed and must be a directory.
func CopyIn(ctx context.Context, rootfs, dstPath string, r io.Reader, opts CopyInOpts) error {
	root, err := openDir(rootfs)
	if err != nil {
		return err
	}
	defer root.Close()
	return extract(ctx, root, cleanPath(dstPath), r, opts)
}

type dirTime struct {
	rel string
	ts  []unix.Timespec
}

type extractor struct {
	ctx    context.Context
	root   *os.File // resolution root (O_PATH)
	dst    string   // clean absolute path of the extraction dir in root
	opts   CopyInOpts
	links  map[string]bool // names (relative to dst) of symlinks this archive created
	dirs   []dirTime
	buf    []byte
	isRoot bool
}

// extract unpacks r into dst, a clean absolute path resolved in root.
func extract(ctx context.Context, root *os.File, dst string, r io.Reader, opts CopyInOpts) error {
	h, err := inRoot(root, dst)
	if err != nil {
		return notFound(dst, err)
	}
	st, err := fstat(h)
	h.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", dst, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("%w: %s", ErrExtractPointNotDirectory, dst)
	}
	x := &extractor{
		ctx:    ctx,
		root:   root,
		dst:    dst,
		opts:   opts,
		links:  map[string]bool{},
		buf:    make([]byte, 128<<10),
		isRoot: os.Geteuid() == 0,
	}
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidArchive, err)
		}
		if err := x.entry(hdr, tr); err != nil {
			return err
		}
	}
	return x.finish()
}

// cleanName normalises a tar name like docker: leading "/" dropped, cleaned;
// "" is the destination itself. A name climbing out with ".." is refused.
func cleanName(name string) (string, error) {
	c := path.Clean(strings.TrimLeft(name, "/"))
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", errors.New("path escapes the destination directory")
	}
	if c == "." {
		return "", nil
	}
	return c, nil
}

func unsafeEntry(name, why string) error {
	return fmt.Errorf("%w %q: %s", ErrUnsafeEntry, name, why)
}

// throughLink returns the first prefix of rel that is a symlink created by
// this archive ("" if none).
func (x *extractor) throughLink(rel string) string {
	if rel == "" || len(x.links) == 0 {
		return ""
	}
	for i := 0; i <= len(rel); i++ {
		if i == len(rel) || rel[i] == '/' {
			if x.links[rel[:i]] {
				return rel[:i]
			}
		}
	}
	return ""
}

// parent returns an O_PATH handle on directory dst/rel, resolved in-root and
// created (0755) if missing and create is set.
func (x *extractor) parent(rel string, create bool) (*os.File, error) {
	p := path.Join(x.dst, rel)
	f, err := inRoot(x.root, p)
	if errors.Is(err, unix.ENOENT) && create {
		f, err = pathrs.MkdirAllHandle(x.root, p, 0o755)
	}
	if err != nil {
		return nil, err
	}
	st, err := fstat(f)
	if err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
		err = fmt.Errorf("%w: %s", ErrNotDirectory, p)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (x *extractor) entry(hdr *tar.Header, data io.Reader) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	rel, err := cleanName(hdr.Name)
	if err != nil {
		return unsafeEntry(hdr.Name, err.Error())
	}
	if rel == "" {
		if hdr.Typeflag == tar.TypeDir {
			return nil // the destination itself: keep it as it is, like docker
		}
		return unsafeEntry(hdr.Name, "names the destination directory itself")
	}
	dir, base := path.Split(rel)
	dir = strings.TrimSuffix(dir, "/")
	if l := x.throughLink(dir); l != "" {
		return unsafeEntry(hdr.Name, fmt.Sprintf("its path goes through %q, a symlink created by this archive", l))
	}
	pf, err := x.parent(dir, true)
	if err != nil {
		return named(hdr.Name, err)
	}
	defer pf.Close()
	if err := x.create(hdr, data, int(pf.Fd()), rel, base); err != nil {
		if errors.Is(err, ErrUnsafeEntry) || errors.Is(err, ErrTypeConflict) {
			return err
		}
		return named(hdr.Name, err)
	}
	if hdr.Typeflag == tar.TypeSymlink {
		x.links[rel] = true
	} else {
		delete(x.links, rel)
	}
	return nil
}

func (x *extractor) owner(hdr *tar.Header) (int, int) {
	if x.opts.CopyUIDGID {
		return hdr.Uid, hdr.Gid
	}
	return x.opts.UID, x.opts.GID
}

func timespecs(hdr *tar.Header) []unix.Timespec {
	mt := hdr.ModTime
	at := hdr.AccessTime
	if at.IsZero() {
		at = mt
	}
	return []unix.Timespec{toTimespec(at), toTimespec(mt)}
}

func toTimespec(t time.Time) unix.Timespec {
	if t.IsZero() {
		return unix.Timespec{}
	}
	return unix.NsecToTimespec(t.UnixNano())
}

func (x *extractor) create(hdr *tar.Header, data io.Reader, pfd int, rel, base string) error {
	isDir := hdr.Typeflag == tar.TypeDir
	var ex unix.Stat_t
	exists := true
	if err := unix.Fstatat(pfd, base, &ex, unix.AT_SYMLINK_NOFOLLOW); err == unix.ENOENT {
		exists = false
	} else if err != nil {
		return err
	}
	exDir := exists && ex.Mode&unix.S_IFMT == unix.S_IFDIR
	if exists {
		if !x.opts.AllowOverwriteDirWithFile {
			target := path.Join(x.dst, rel)
			if exDir && !isDir {
				return fmt.Errorf("%w directory %q with non-directory %q", ErrTypeConflict, target, hdr.Name)
			}
			if !exDir && isDir {
				return fmt.Errorf("%w non-directory %q with directory %q", ErrTypeConflict, target, hdr.Name)
			}
		}
		if !(exDir && isDir) {
			if err := removeAt(pfd, base); err != nil {
				return err
			}
		}
	}

	mode := uint32(hdr.Mode) & 0o7777
	uid, gid := x.owner(hdr)
	switch hdr.Typeflag {
	case tar.TypeDir:
		if !exDir {
			if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
				return err
			}
		}
		fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := x.fdAttrs(hdr, fd, uid, gid, mode); err != nil {
			return err
		}
		x.dirs = append(x.dirs, dirTime{rel: rel, ts: timespecs(hdr)})
		return nil

	case tar.TypeReg, tar.TypeGNUSparse:
		fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return err
		}
		f := os.NewFile(uintptr(fd), base)
		_, err = io.CopyBuffer(onlyWriter{f}, data, x.buf)
		if err != nil && !isFSErr(err) {
			err = fmt.Errorf("%w: %w", ErrInvalidArchive, err)
		}
		if err == nil {
			err = x.fdAttrs(hdr, fd, uid, gid, mode)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}

	case tar.TypeSymlink:
		if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
			return err
		}
		if err := x.chown(pfd, base, uid, gid); err != nil {
			return err
		}

	case tar.TypeLink:
		// A hard link shares its target's inode, and so its metadata.
		return x.hardlink(hdr, pfd, rel, base)

	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		ftype := uint32(unix.S_IFIFO)
		switch hdr.Typeflag {
		case tar.TypeChar:
			ftype = unix.S_IFCHR
		case tar.TypeBlock:
			ftype = unix.S_IFBLK
		}
		dev := int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))
		if err := unix.Mknodat(pfd, base, ftype|0o600, dev); err != nil {
			return err
		}
		if err := x.chown(pfd, base, uid, gid); err != nil {
			return err
		}
		if err := chmodNode(pfd, base, ftype, mode); err != nil {
			return err
		}

	default:
		return fmt.Errorf("%w: entry %q: unsupported type %q", ErrInvalidArchive, hdr.Name, hdr.Typeflag)
	}
	return unix.UtimesNanoAt(pfd, base, timespecs(hdr), unix.AT_SYMLINK_NOFOLLOW)
}

// isFSErr tells a write error of ours from a read error of the archive.
func isFSErr(err error) bool {
	var pe *os.PathError
	return errors.As(err, &pe)
}

// chmodNode sets the mode of a device or FIFO we just created. fchmodat
// would follow a symlink swapped in meanwhile, so the node is opened O_PATH
// without following, checked, and changed through its fd's magic link.
func chmodNode(pfd int, base string, ftype, mode uint32) error {
	fd, err := unix.Openat(pfd, base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != ftype {
		return fmt.Errorf("%s was replaced while being created", base)
	}
	return unix.Chmod(fmt.Sprintf("/proc/self/fd/%d", fd), mode)
}

// chown sets the owner of name without following it (only as root).
func (x *extractor) chown(pfd int, name string, uid, gid int) error {
	if !x.isRoot {
		return nil
	}
	return unix.Fchownat(pfd, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
}

// fdAttrs sets owner, mode and xattrs on an open file or directory; chown
// comes first because it clears setuid/setgid.
func (x *extractor) fdAttrs(hdr *tar.Header, fd, uid, gid int, mode uint32) error {
	if x.isRoot {
		if err := unix.Fchown(fd, uid, gid); err != nil {
			return err
		}
	}
	if err := unix.Fchmod(fd, mode); err != nil {
		return err
	}
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok || !carriedXattr(name) {
			continue
		}
		if err := unix.Fsetxattr(fd, name, []byte(v), 0); err != nil && err != unix.ENOTSUP {
			return fmt.Errorf("xattr %s: %w", name, err)
		}
	}
	return nil
}

// hardlink links rel to the entry's Linkname, which must already exist
// under the destination and be reachable without a symlink of this archive.
func (x *extractor) hardlink(hdr *tar.Header, pfd int, rel, base string) error {
	target, err := cleanName(hdr.Linkname)
	if err != nil {
		return unsafeEntry(hdr.Name, fmt.Sprintf("hard link target %q escapes the destination directory", hdr.Linkname))
	}
	if target == "" || target == rel {
		return unsafeEntry(hdr.Name, fmt.Sprintf("invalid hard link target %q", hdr.Linkname))
	}
	tdir, tbase := path.Split(target)
	tdir = strings.TrimSuffix(tdir, "/")
	if l := x.throughLink(tdir); l != "" {
		return unsafeEntry(hdr.Name, fmt.Sprintf("hard link target goes through %q, a symlink created by this archive", l))
	}
	tf, err := x.parent(tdir, false)
	if err != nil {
		return unsafeEntry(hdr.Name, fmt.Sprintf("hard link target %q: %v", hdr.Linkname, err))
	}
	defer tf.Close()
	var st unix.Stat_t
	if err := unix.Fstatat(int(tf.Fd()), tbase, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return unsafeEntry(hdr.Name, fmt.Sprintf("hard link target %q: %v", hdr.Linkname, err))
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return unsafeEntry(hdr.Name, fmt.Sprintf("hard link target %q is a directory", hdr.Linkname))
	}
	// flags 0: a symlink as the target is linked itself, never followed.
	return unix.Linkat(int(tf.Fd()), tbase, pfd, base, 0)
}

// finish sets directory times last: creating entries in a directory
// changes its mtime.
func (x *extractor) finish() error {
	for _, d := range x.dirs {
		dir, base := path.Split(d.rel)
		dir = strings.TrimSuffix(dir, "/")
		if x.throughLink(dir) != "" {
			continue
		}
		pf, err := x.parent(dir, false)
		if err != nil {
			continue // removed by a later entry
		}
		var st unix.Stat_t
		if unix.Fstatat(int(pf.Fd()), base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			err = unix.UtimesNanoAt(int(pf.Fd()), base, d.ts, unix.AT_SYMLINK_NOFOLLOW)
		}
		pf.Close()
		if err != nil && err != unix.ENOENT {
			return named(d.rel, err)
		}
	}
	return nil
}

// removeAt deletes name (recursively for a directory) below dirfd without
// following symlinks.
func removeAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err != unix.EISDIR {
		return err
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	names, err := readDirNames(fd)
	if err == nil {
		for _, n := range names {
			if err = removeAt(fd, n); err != nil {
				break
			}
		}
	}
	unix.Close(fd)
	if err != nil {
		return err
	}
	return unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
}

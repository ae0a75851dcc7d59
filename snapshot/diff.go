package snapshot

// Diff: an active snapshot's upper dir back into an OCI layer tar.
//
//	upper dir (overlay format)              layer tar (OCI)
//	DIR/NAME char device 0/0 (whiteout)     DIR/.wh.NAME  (empty regular file)
//	DIR with trusted.overlay.opaque=y       DIR/ then DIR/.wh..wh..opq
//	second path of an inode with nlink > 1  hard link entry to the first path
//
// The output is deterministic for a given upper dir: names are sorted,
// user/group names are left empty, mtimes are truncated to seconds, and
// atime/ctime are omitted (as docker's archive package does). Only user.*
// and security.capability xattrs are carried (PAX SCHILY.xattr.*): trusted.*
// belongs to overlay itself and other security.* labels are host policy.
//
// The upper dir may be in use by a running container that can plant
// symlinks in it, so it is read fd-relative with O_NOFOLLOW throughout.

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// Diff writes the changes of active snapshot key (its upper dir) as an
// uncompressed OCI layer tar to w and returns its diffID (sha256 of the tar)
// and size in bytes.
func (s *Store) Diff(ctx context.Context, key string, w io.Writer) (digest.Digest, int64, error) {
	return s.DiffExcluding(ctx, key, w, nil)
}

// DiffExcluding is Diff without the entries named in exclude (tar names like "etc/hosts"):
// a container's upper dir holds the mount points its runtime created (/etc/hosts, ...),
// which are not changes of the container (docker keeps them in a separate init layer).
func (s *Store) DiffExcluding(ctx context.Context, key string, w io.Writer, exclude map[string]bool) (digest.Digest, int64, error) {
	if err := checkKey(key); err != nil {
		return "", 0, err
	}
	if _, err := s.readActive(key); err != nil {
		return "", 0, fmt.Errorf("snapshot: diff: %w", err)
	}
	upper := filepath.Join(s.activePath(key), "upper")
	fd, err := unix.Open(upper, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", 0, fmt.Errorf("snapshot: diff %s: %w", key, err)
	}
	defer unix.Close(fd)

	dg := digest.SHA256.Digester()
	cw := &countingWriter{w: io.MultiWriter(w, dg.Hash())}
	d := &differ{
		ctx:     ctx,
		tw:      tar.NewWriter(cw),
		links:   map[[2]uint64]string{},
		buf:     make([]byte, 256<<10),
		exclude: exclude,
	}
	if err := d.dir(fd, ""); err != nil {
		return "", 0, fmt.Errorf("snapshot: diff %s: %w", key, err)
	}
	if err := d.tw.Close(); err != nil {
		return "", 0, fmt.Errorf("snapshot: diff %s: %w", key, err)
	}
	return dg.Digest(), cw.n, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

type differ struct {
	ctx     context.Context
	tw      *tar.Writer
	links   map[[2]uint64]string // first tar name of each multiply-linked inode
	buf     []byte
	exclude map[string]bool
}

// dir emits the entries of directory dirfd, whose tar name prefix is rel
// ("" or "a/b/").
func (d *differ) dir(dirfd int, rel string) error {
	dup, err := unix.Dup(dirfd)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(dup), rel)
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return err
	}
	slices.Sort(names)
	for _, name := range names {
		if err := d.ctx.Err(); err != nil {
			return err
		}
		if err := d.entry(dirfd, rel, name); err != nil {
			return fmt.Errorf("%s%s: %w", rel, name, err)
		}
	}
	return nil
}

func (d *differ) entry(dirfd int, rel, name string) error {
	if d.exclude[rel+name] {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if err == unix.ENOENT {
			return nil // deleted while we walk
		}
		return err
	}
	mtime := time.Unix(st.Mtim.Sec, 0)
	if isOverlayWhiteout(&st) {
		return d.tw.WriteHeader(&tar.Header{
			Typeflag: tar.TypeReg, Name: rel + whiteoutPrefix + name, ModTime: mtime, Format: tar.FormatPAX,
		})
	}
	hdr := &tar.Header{
		Name:    rel + name,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: mtime,
		Format:  tar.FormatPAX,
	}
	procPath := fmt.Sprintf("/proc/self/fd/%d/%s", dirfd, name)
	if err := readXattrs(procPath, hdr); err != nil {
		return err
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
		if err := d.tw.WriteHeader(hdr); err != nil {
			return err
		}
		if isOpaqueDir(procPath) {
			if err := d.tw.WriteHeader(&tar.Header{
				Typeflag: tar.TypeReg, Name: hdr.Name + whiteoutOpaque, ModTime: mtime, Format: tar.FormatPAX,
			}); err != nil {
				return err
			}
		}
		sub, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(sub)
		return d.dir(sub, hdr.Name)
	case unix.S_IFREG:
		if st.Nlink > 1 {
			id := [2]uint64{st.Dev, st.Ino}
			if first, ok := d.links[id]; ok {
				hdr.Typeflag = tar.TypeLink
				hdr.Linkname = first
				hdr.PAXRecords = nil
				return d.tw.WriteHeader(hdr)
			}
			d.links[id] = hdr.Name
		}
		return d.file(dirfd, name, hdr, st.Size)
	case unix.S_IFLNK:
		target, err := readlinkat(dirfd, name)
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
		return nil // sockets cannot be archived
	}
	return d.tw.WriteHeader(hdr)
}

// file emits a regular file, exactly size bytes (the size in its header).
func (d *differ) file(dirfd int, name string, hdr *tar.Header, size int64) error {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	hdr.Typeflag = tar.TypeReg
	hdr.Size = size
	if err := d.tw.WriteHeader(hdr); err != nil {
		return err
	}
	n, err := io.CopyBuffer(onlyWriter{d.tw}, io.LimitReader(f, size), d.buf)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("file shrank from %d to %d bytes while archiving", size, n)
	}
	return nil
}

// onlyWriter hides tar.Writer's ReadFrom so CopyBuffer uses our buffer.
type onlyWriter struct{ w io.Writer }

func (o onlyWriter) Write(p []byte) (int, error) { return o.w.Write(p) }

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

// readXattrs adds the user.* and security.capability xattrs of path (not
// followed) to hdr as PAX records.
func readXattrs(path string, hdr *tar.Header) error {
	list, err := lxattrList(path)
	if err != nil {
		if err == unix.ENOTSUP {
			return nil
		}
		return err
	}
	for _, name := range list {
		if !strings.HasPrefix(name, "user.") && name != "security.capability" {
			continue
		}
		val, err := lxattrGet(path, name)
		if err == unix.ENODATA {
			continue
		}
		if err != nil {
			return fmt.Errorf("xattr %s: %w", name, err)
		}
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = map[string]string{}
		}
		hdr.PAXRecords["SCHILY.xattr."+name] = string(val)
	}
	return nil
}

func lxattrList(path string) ([]string, error) {
	size, err := unix.Llistxattr(path, nil)
	if err != nil || size == 0 {
		return nil, err
	}
	buf := make([]byte, size)
	n, err := unix.Llistxattr(path, buf)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, b := range bytes.Split(buf[:n], []byte{0}) {
		if len(b) > 0 {
			out = append(out, string(b))
		}
	}
	return out, nil
}

func lxattrGet(path, name string) ([]byte, error) {
	size, err := unix.Lgetxattr(path, name, nil)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, size)
	n, err := unix.Lgetxattr(path, name, buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}

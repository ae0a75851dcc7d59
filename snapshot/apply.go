package snapshot

// Layer apply: an OCI layer tar stream becomes a directory in overlay
// format. The directory is hostile-input territory, so every file-system
// operation is relative to a directory fd that was reached from the layer
// root without following any symlink (openat2 RESOLVE_BENEATH|
// RESOLVE_NO_SYMLINKS, or a component-by-component openat(O_NOFOLLOW) walk
// where openat2 is missing). Symlinks in the layer may point anywhere — they
// are resolved inside the container at run time — but no entry is ever
// written through one: an entry whose parent path contains a symlink is
// refused, and an entry that replaces an existing symlink unlinks it first
// and creates with O_EXCL/O_NOFOLLOW. Names are normalised like docker does
// (leading "/" stripped, path cleaned); a name or hard-link target that
// still climbs out with ".." is refused.
//
// Durability: files are not fsynced one by one. Apply calls syncfs(2) once
// on the layer's file system after the whole layer is written and before the
// rename that publishes it; syncfs returns only when all dirty data and
// metadata of that file system are on disk, which covers every file of the
// layer at the cost of one flush instead of thousands.

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// LayerDigests are the digests a caller expects of a layer blob.
type LayerDigests struct {
	// Compressed is the digest of the blob as stored (may be "").
	Compressed digest.Digest
	// DiffID is the sha256 of the uncompressed tar (may be "": computed).
	DiffID digest.Digest
}

// Apply unpacks layer r (plain tar, gzip or zstd, detected by magic bytes)
// as the child of parent ("" for a base layer). It verifies the compressed
// digest and the diffID while streaming; a mismatch is an error and leaves
// nothing. It returns the new chain ID and the unpacked size. If the chain
// already exists it returns at once without reading r. If want.DiffID is ""
// it is computed and the chain ID derived from it.
func (s *Store) Apply(ctx context.Context, parent digest.Digest, r io.Reader, want LayerDigests) (chainID digest.Digest, size int64, err error) {
	if parent != "" {
		if err := checkChainID(parent); err != nil {
			return "", 0, err
		}
		if !s.Exists(parent) {
			return "", 0, fmt.Errorf("snapshot: apply: parent %s: %w", parent, ErrNotFound)
		}
	}
	if want.Compressed != "" {
		if err := want.Compressed.Validate(); err != nil {
			return "", 0, fmt.Errorf("%w: compressed digest %q: %v", ErrInvalidArgument, want.Compressed, err)
		}
	}
	if want.DiffID != "" {
		if err := checkChainID(want.DiffID); err != nil {
			return "", 0, err
		}
		chain := ChainID(parent, want.DiffID)
		if info, err := s.Info(chain); err == nil {
			return chain, info.Size, nil
		}
	}
	if err := ctx.Err(); err != nil {
		return "", 0, err
	}

	w, err := s.newWorkDir("apply")
	if err != nil {
		return "", 0, fmt.Errorf("snapshot: apply: %w", err)
	}
	defer w.discard() // no-op once renamed away
	fsDir := filepath.Join(w.path, layerFSDir)
	if err := os.Mkdir(fsDir, 0o755); err != nil {
		return "", 0, fmt.Errorf("snapshot: apply: %w", err)
	}
	diffID, size, err := unpack(ctx, fsDir, r, want)
	if err != nil {
		return "", 0, fmt.Errorf("snapshot: apply layer %s: %w", describe(want), err)
	}
	chain := ChainID(parent, diffID)
	if err := writeJSON(filepath.Join(w.path, metaFile), Info{Parent: parent, DiffID: diffID, Size: size}); err != nil {
		return "", 0, fmt.Errorf("snapshot: apply: %w", err)
	}
	if err := unix.Syncfs(w.fd); err != nil {
		return "", 0, fmt.Errorf("snapshot: apply: syncfs: %w", err)
	}

	unlock, err := s.lock()
	if err != nil {
		return "", 0, err
	}
	defer unlock()
	if parent != "" && !s.Exists(parent) {
		return "", 0, fmt.Errorf("snapshot: apply: parent %s removed meanwhile: %w", parent, ErrNotFound)
	}
	if err := os.Rename(w.path, s.chainPath(chain)); err != nil {
		if errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) {
			// A concurrent Apply of the same layer won; use its copy.
			info, ierr := s.Info(chain)
			if ierr != nil {
				return "", 0, ierr
			}
			return chain, info.Size, nil
		}
		return "", 0, fmt.Errorf("snapshot: apply: commit %s: %w", chain, err)
	}
	w.published()
	if err := fsyncDir(filepath.Join(s.root, committedDir)); err != nil {
		return "", 0, fmt.Errorf("snapshot: apply: %w", err)
	}
	return chain, size, nil
}

func describe(want LayerDigests) string {
	switch {
	case want.Compressed != "":
		return want.Compressed.String()
	case want.DiffID != "":
		return want.DiffID.String()
	}
	return "(no digest given)"
}

// unpack streams r into dir and verifies the digests.
func unpack(ctx context.Context, dir string, r io.Reader, want LayerDigests) (digest.Digest, int64, error) {
	var comp digest.Digester
	if want.Compressed != "" {
		if !want.Compressed.Algorithm().Available() {
			return "", 0, fmt.Errorf("%w: digest algorithm %s", ErrInvalidArgument, want.Compressed.Algorithm())
		}
		comp = want.Compressed.Algorithm().Digester()
		r = io.TeeReader(r, comp.Hash())
	}
	br := bufio.NewReaderSize(r, readBufSize)
	src, release, err := decompressor(br)
	if err != nil {
		return "", 0, err
	}
	diff := digest.SHA256.Digester()
	p := startPipe(src, diff.Hash(), br, release)
	defer p.stop()

	u, err := newUnpacker(dir)
	if err != nil {
		return "", 0, err
	}
	defer u.close()
	tr := tar.NewReader(p)
	for {
		if err := ctx.Err(); err != nil {
			return "", 0, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", 0, fmt.Errorf("%w: reading tar: %w", ErrInvalidLayer, err)
		}
		if err := u.entry(hdr, tr); err != nil {
			return "", 0, err
		}
	}
	if err := u.finish(); err != nil {
		return "", 0, err
	}
	// Everything after the end-of-archive blocks is still part of the
	// diffID; read it all, which also surfaces decompression errors.
	if _, err := io.Copy(io.Discard, p); err != nil {
		return "", 0, fmt.Errorf("%w: %w", ErrInvalidLayer, err)
	}
	p.stop()
	if comp != nil && comp.Digest() != want.Compressed {
		return "", 0, fmt.Errorf("%w: compressed digest is %s, want %s", ErrDigestMismatch, comp.Digest(), want.Compressed)
	}
	got := diff.Digest()
	if want.DiffID != "" && got != want.DiffID {
		return "", 0, fmt.Errorf("%w: diffID is %s, want %s", ErrDigestMismatch, got, want.DiffID)
	}
	return got, u.size, nil
}

// unpacker writes tar entries below one root directory fd.
type unpacker struct {
	root     int            // O_PATH fd of the layer dir
	dirs     map[string]int // cached O_PATH fds of parent dirs, by clean relative path
	dirTimes []dirTime      // directory times, applied after all content
	buf      []byte
	isRoot   bool
	size     int64
	noOpen2  bool // openat2 unavailable: walk components
}

type dirTime struct {
	name string
	ts   []unix.Timespec
}

const maxCachedDirs = 256

func newUnpacker(dir string) (*unpacker, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	return &unpacker{
		root:   fd,
		dirs:   map[string]int{},
		buf:    make([]byte, pipeChunk),
		isRoot: os.Geteuid() == 0,
	}, nil
}

func (u *unpacker) close() {
	u.dropCache("")
	unix.Close(u.root)
}

// dropCache closes the cached fds of prefix and everything below it (all
// of them for ""), because that subtree was just removed.
func (u *unpacker) dropCache(prefix string) {
	for k, fd := range u.dirs {
		if prefix == "" || k == prefix || strings.HasPrefix(k, prefix+"/") {
			unix.Close(fd)
			delete(u.dirs, k)
		}
	}
}

// cleanName normalises a tar name like docker: leading slashes stripped,
// cleaned; "" is the layer root. A name climbing out with ".." is refused.
func cleanName(name string) (string, error) {
	c := path.Clean(strings.TrimLeft(name, "/"))
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", errors.New("path escapes the layer root")
	}
	if c == "." {
		return "", nil
	}
	return c, nil
}

func unsafeEntry(name, why string) error {
	return fmt.Errorf("%w: entry %q: %s", ErrUnsafeEntry, name, why)
}

// parentFD returns an O_PATH fd of directory rel ("" = root), reached
// without following symlinks; missing directories are created (0755) when
// create is set. The fd belongs to the cache: do not close it.
func (u *unpacker) parentFD(rel string, create bool) (int, error) {
	if rel == "" {
		return u.root, nil
	}
	if fd, ok := u.dirs[rel]; ok {
		return fd, nil
	}
	var fd int
	var err error
	if !u.noOpen2 {
		fd, err = unix.Openat2(u.root, rel, &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
		})
		if err == unix.ENOSYS || err == unix.EPERM || err == unix.E2BIG {
			u.noOpen2 = true // old kernel or seccomp: walk instead
		}
	}
	if u.noOpen2 || (err == unix.ENOENT && create) {
		fd, err = u.walk(rel, create)
	}
	switch err {
	case nil:
	case unix.ELOOP, unix.ENOTDIR, unix.EXDEV:
		return -1, fmt.Errorf("parent %q is a symlink or not a directory", rel)
	default:
		return -1, fmt.Errorf("parent %q: %w", rel, err)
	}
	u.dirs[rel] = fd
	return fd, nil
}

// walk opens rel one component at a time with O_NOFOLLOW, creating missing
// directories if create is set.
func (u *unpacker) walk(rel string, create bool) (int, error) {
	fd := u.root
	for comp := range strings.SplitSeq(rel, "/") {
		next, err := unix.Openat(fd, comp, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == unix.ENOENT && create {
			if err = unix.Mkdirat(fd, comp, 0o755); err == nil || err == unix.EEXIST {
				// umask may have trimmed the mode; docker's is 0755.
				unix.Fchmodat(fd, comp, 0o755, 0)
				next, err = unix.Openat(fd, comp, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			}
		}
		if fd != u.root {
			unix.Close(fd)
		}
		if err != nil {
			return -1, err
		}
		fd = next
	}
	return fd, nil
}

// removeAt deletes name (recursively for a directory) below dirfd without
// following symlinks. It reports whether a directory was removed.
func removeAt(dirfd int, name string) (bool, error) {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || err == unix.ENOENT {
		return false, nil
	}
	if err != unix.EISDIR {
		return false, err
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, err
	}
	f := os.NewFile(uintptr(fd), name)
	names, err := f.Readdirnames(-1)
	if err == nil {
		for _, n := range names {
			if _, err = removeAt(fd, n); err != nil {
				break
			}
		}
	}
	f.Close()
	if err != nil {
		return true, err
	}
	return true, unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR)
}

// replace makes room for a new non-directory entry.
func (u *unpacker) replace(pfd int, rel, base string) error {
	wasDir, err := removeAt(pfd, base)
	if wasDir {
		u.dropCache(rel)
	}
	return err
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
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

// entry applies one tar entry.
func (u *unpacker) entry(hdr *tar.Header, data io.Reader) error {
	if len(u.dirs) > maxCachedDirs {
		u.dropCache("")
	}
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	rel, err := cleanName(hdr.Name)
	if err != nil {
		return unsafeEntry(hdr.Name, err.Error())
	}
	if rel == "" {
		if hdr.Typeflag == tar.TypeDir {
			return nil // the layer root itself: keep ours, like docker
		}
		return unsafeEntry(hdr.Name, "names the layer root")
	}
	dir, base := path.Split(rel)
	dir = strings.TrimSuffix(dir, "/")
	pfd, err := u.parentFD(dir, true)
	if err != nil {
		return unsafeEntry(hdr.Name, err.Error())
	}
	if err := u.create(hdr, data, pfd, dir, rel, base); err != nil {
		if errors.Is(err, ErrUnsafeEntry) || errors.Is(err, ErrInvalidLayer) {
			return err
		}
		return fmt.Errorf("entry %q: %w", hdr.Name, err)
	}
	return nil
}

func (u *unpacker) create(hdr *tar.Header, data io.Reader, pfd int, dir, rel, base string) error {
	if isWhiteoutName(base) {
		switch {
		case base == whiteoutOpaque:
			return setOpaque(pfd)
		case strings.HasPrefix(base, whiteoutMetaPrefix):
			return nil
		}
		target := base[len(whiteoutPrefix):]
		if target == "" || target == "." || target == ".." {
			return unsafeEntry(hdr.Name, "invalid whiteout")
		}
		if wasDir, err := removeAt(pfd, target); err != nil {
			return err
		} else if wasDir {
			u.dropCache(path.Join(dir, target))
		}
		return mkWhiteout(pfd, target)
	}

	mode := uint32(hdr.Mode) & 0o7777
	switch hdr.Typeflag {
	case tar.TypeDir:
		err := unix.Mkdirat(pfd, base, 0o700)
		if err == unix.EEXIST {
			var st unix.Stat_t
			if err = unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return err
			}
			if st.Mode&unix.S_IFMT != unix.S_IFDIR {
				if err := u.replace(pfd, rel, base); err != nil {
					return err
				}
				err = unix.Mkdirat(pfd, base, 0o700)
			}
		}
		if err != nil {
			return err
		}
		fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := u.attrs(hdr, fd, mode); err != nil {
			return err
		}
		u.dirTimes = append(u.dirTimes, dirTime{name: rel, ts: timespecs(hdr)})
		return nil

	case tar.TypeReg, tar.TypeCont, tar.TypeGNUSparse: // the reader maps old TypeRegA to TypeReg
		const flags = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
		fd, err := unix.Openat(pfd, base, flags, 0o600)
		if err == unix.EEXIST {
			if err := u.replace(pfd, rel, base); err != nil {
				return err
			}
			fd, err = unix.Openat(pfd, base, flags, 0o600)
		}
		if err != nil {
			return err
		}
		n, err := u.copyData(fd, data)
		u.size += n
		if err == nil {
			err = u.attrs(hdr, fd, mode)
		}
		if cerr := unix.Close(fd); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}

	case tar.TypeSymlink:
		err := unix.Symlinkat(hdr.Linkname, pfd, base)
		if err == unix.EEXIST {
			if err := u.replace(pfd, rel, base); err != nil {
				return err
			}
			err = unix.Symlinkat(hdr.Linkname, pfd, base)
		}
		if err != nil {
			return err
		}
		if err := u.pathAttrs(hdr, pfd, base, 0, false); err != nil {
			return err
		}

	case tar.TypeLink:
		if err := u.hardlink(hdr, pfd, rel, base); err != nil {
			return err
		}
		// A hard link shares its target's inode: metadata comes from the
		// target's own entry, as with docker and GNU tar.
		return nil

	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		ftype := uint32(unix.S_IFIFO)
		switch hdr.Typeflag {
		case tar.TypeChar:
			ftype = unix.S_IFCHR
		case tar.TypeBlock:
			ftype = unix.S_IFBLK
		}
		if ftype != unix.S_IFIFO && !u.isRoot {
			return nil // mknod of devices needs CAP_MKNOD; docker skips too
		}
		dev := int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))
		err := unix.Mknodat(pfd, base, ftype|0o600, dev)
		if err == unix.EEXIST {
			if err := u.replace(pfd, rel, base); err != nil {
				return err
			}
			err = unix.Mknodat(pfd, base, ftype|0o600, dev)
		}
		if err != nil {
			return err
		}
		if err := u.pathAttrs(hdr, pfd, base, mode, true); err != nil {
			return err
		}

	default:
		return fmt.Errorf("%w: entry %q: unknown type flag %q", ErrInvalidLayer, hdr.Name, hdr.Typeflag)
	}
	return unix.UtimesNanoAt(pfd, base, timespecs(hdr), unix.AT_SYMLINK_NOFOLLOW)
}

// copyData writes the entry's content to fd with our own buffer (io.Copy
// on an *os.File would allocate a fresh one per file via ReadFrom).
func (u *unpacker) copyData(fd int, data io.Reader) (int64, error) {
	var total int64
	for {
		n, rerr := data.Read(u.buf)
		for off := 0; off < n; {
			w, err := unix.Write(fd, u.buf[off:n])
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return total, err
			}
			off += w
		}
		total += int64(n)
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, fmt.Errorf("%w: %w", ErrInvalidLayer, rerr)
		}
	}
}

// hardlink links rel to the entry's Linkname, which must already exist in
// this layer and be reachable without symlinks.
func (u *unpacker) hardlink(hdr *tar.Header, pfd int, rel, base string) error {
	target, err := cleanName(hdr.Linkname)
	if err != nil {
		return unsafeEntry(hdr.Name, fmt.Sprintf("hard link target %q escapes the layer root", hdr.Linkname))
	}
	if target == "" || target == rel {
		return unsafeEntry(hdr.Name, fmt.Sprintf("invalid hard link target %q", hdr.Linkname))
	}
	// Make room first: removing a directory may invalidate cached fds,
	// including the target's parent.
	if err := u.replace(pfd, rel, base); err != nil {
		return err
	}
	tdir, tbase := path.Split(target)
	tpfd, err := u.parentFD(strings.TrimSuffix(tdir, "/"), false)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return unsafeEntry(hdr.Name, fmt.Sprintf("hard link target %q does not exist in the layer", hdr.Linkname))
		}
		return unsafeEntry(hdr.Name, "hard link target: "+err.Error())
	}
	var st unix.Stat_t
	if err := unix.Fstatat(tpfd, tbase, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return unsafeEntry(hdr.Name, fmt.Sprintf("hard link target %q does not exist in the layer", hdr.Linkname))
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return unsafeEntry(hdr.Name, fmt.Sprintf("hard link target %q is a directory", hdr.Linkname))
	}
	// flags 0: a symlink target is linked itself, never followed.
	return unix.Linkat(tpfd, tbase, pfd, base, 0)
}

// attrs sets owner, mode and xattrs on an open fd (file or directory).
// chown comes before chmod because chown clears setuid/setgid.
func (u *unpacker) attrs(hdr *tar.Header, fd int, mode uint32) error {
	if u.isRoot {
		if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
			return err
		}
	}
	if err := unix.Fchmod(fd, mode); err != nil {
		return err
	}
	return applyXattrs(hdr, func(k string, v []byte) error { return unix.Fsetxattr(fd, k, v, 0) })
}

// pathAttrs is attrs for entries we cannot open (symlinks, devices,
// fifos): *at calls with AT_SYMLINK_NOFOLLOW on a name we just created.
func (u *unpacker) pathAttrs(hdr *tar.Header, pfd int, base string, mode uint32, chmod bool) error {
	if u.isRoot {
		if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
	}
	if chmod {
		// Never a symlink here (we just made a device or fifo), so the
		// follow semantics of fchmodat do not matter.
		if err := unix.Fchmodat(pfd, base, mode, 0); err != nil {
			return err
		}
	}
	if len(hdr.PAXRecords) == 0 {
		return nil
	}
	// /proc/self/fd/N/base: the magic link resolves to the verified parent
	// directory, and lsetxattr does not follow base.
	p := fmt.Sprintf("/proc/self/fd/%d/%s", pfd, base)
	return applyXattrs(hdr, func(k string, v []byte) error { return unix.Lsetxattr(p, k, v, 0) })
}

// applyXattrs applies the entry's SCHILY.xattr.* PAX records. Failures are
// errors except where the file system or inode type cannot hold the
// attribute (ENOTSUP, and EPERM for user.* on symlinks and devices) and for
// security.* other than capabilities (LSM labels are host policy).
func applyXattrs(hdr *tar.Header, set func(string, []byte) error) error {
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok || strings.HasPrefix(name, overlayXattrPrefix) {
			continue
		}
		err := set(name, []byte(v))
		if err == nil || err == unix.ENOTSUP {
			continue
		}
		if strings.HasPrefix(name, "security.") && name != "security.capability" {
			continue
		}
		if err == unix.EPERM && strings.HasPrefix(name, "user.") && hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeDir {
			continue
		}
		return fmt.Errorf("xattr %s: %w", name, err)
	}
	return nil
}

// finish sets directory times last, because creating entries inside a
// directory updates its mtime.
func (u *unpacker) finish() error {
	for _, d := range u.dirTimes { // in tar order: a repeated entry's last times win
		if len(u.dirs) > maxCachedDirs {
			u.dropCache("")
		}
		dir, base := path.Split(d.name)
		pfd, err := u.parentFD(strings.TrimSuffix(dir, "/"), false)
		if err != nil {
			continue // removed by a later entry
		}
		var st unix.Stat_t
		if unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW) != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue // replaced by a later non-directory entry
		}
		err = unix.UtimesNanoAt(pfd, base, d.ts, unix.AT_SYMLINK_NOFOLLOW)
		if err != nil && err != unix.ENOENT {
			return fmt.Errorf("entry %q: times: %w", d.name, err)
		}
	}
	return nil
}

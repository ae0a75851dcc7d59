package build

// COPY and ADD: the sources are resolved in a source root (the context directory, or the
// mounted rootfs of a stage or image for --from), with docker's rules, and written as one tar
// stream whose names are the final paths in the image (relative to "/"). The stream is
// spooled to a file while a content hash of it is taken (names, types, modes, owners, sizes,
// link targets and file contents; not mtimes), which is the COPY's part of the cache key;
// on a cache miss the spool is extracted into the step's rootfs in-root.
//
// Docker's rules implemented here:
//   - a relative destination is relative to WORKDIR; a destination ending in "/" is a
//     directory, as is one that exists as a directory;
//   - several sources (listed or from a wildcard) need a directory destination ending in "/";
//   - a directory source copies its contents, not itself;
//   - a file source goes to DEST/BASENAME when DEST is a directory, else to DEST;
//   - owner 0:0 for files from the context unless --chown; --from keeps the owners;
//     --chmod sets the mode of every copied entry;
//   - ADD unpacks a local tar archive (plain, gzip, bzip2) into the destination directory.

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"

	"github.com/berth-dev/berth/container/files"
)

// srcRoot is where COPY reads from.
type srcRoot struct {
	dir string
	ctx *Context // the build context (its .dockerignore applies); nil for --from
}

// copySpec is one COPY/ADD as executed.
type copySpec struct {
	Sources   []string
	Dest      string // as written (expanded), possibly relative
	Workdir   string
	Chown     *owner // nil: 0:0 from the context, kept from --from
	Chmod     *os.FileMode
	Add       bool // unpack local archives
	DestIsDir bool // the destination exists in the image as a directory (after symlinks)
	// Rootfs, when set, is the rootfs the copy goes to: with Chown, the directories missing
	// on the way to the destination are written too, with that owner.
	Rootfs string
	Cmd    string
	// Inline are heredoc sources (COPY <<EOF /dest): files of mode 0644 (or --chmod),
	// owned by root (or --chown), named by the heredoc's word.
	Inline []inlineFile
	// Remote are ADD's downloaded URLs.
	Remote []remoteFile
}

type inlineFile struct{ Name, Data string }

type owner struct{ UID, GID int }

// destPath is the absolute, clean destination and whether it names a directory by syntax.
func (c *copySpec) destPath() (string, bool) {
	d := c.Dest
	dirSyntax := strings.HasSuffix(d, "/") || strings.HasSuffix(d, "/.") || d == "." || d == ".."
	if !path.IsAbs(d) {
		wd := c.Workdir
		if wd == "" {
			wd = "/"
		}
		d = path.Join(wd, d)
		if d == path.Clean(wd) {
			dirSyntax = true
		}
	}
	d = path.Clean(d)
	if d == "/" {
		dirSyntax = true
	}
	return d, dirSyntax
}

func hasWildcard(s string) bool { return strings.ContainsAny(s, "*?[") }

// match is one resolved source: rel is its clean slash path in the root, real its host path.
type match struct {
	rel, real string
	fi        fs.FileInfo
}

// resolve resolves one source (wildcards expanded) in root.
func (r srcRoot) resolve(src string) ([]match, error) {
	clean := strings.TrimPrefix(path.Clean("/"+filepath.ToSlash(src)), "/")
	var rels []string
	if hasWildcard(clean) {
		var err error
		if rels, err = r.glob(clean); err != nil {
			return nil, err
		}
	} else {
		rels = []string{clean}
	}
	var out []match
	for _, rel := range rels {
		if r.ctx.Excluded(rel) {
			if hasWildcard(clean) {
				continue
			}
			return nil, srcErr("file not found in build context or excluded by .dockerignore: stat %s: file does not exist", src)
		}
		real, err := securejoin.SecureJoin(r.dir, rel)
		if err != nil {
			return nil, srcErr("%s: %v", src, err)
		}
		fi, err := os.Lstat(real)
		if err != nil {
			if r.ctx != nil {
				return nil, srcErr("file not found in build context or excluded by .dockerignore: stat %s: file does not exist", src)
			}
			return nil, srcErr("%s: not found", src)
		}
		out = append(out, match{rel: rel, real: real, fi: fi})
	}
	return out, nil
}

// glob expands a pattern component by component, each directory resolved in-root.
func (r srcRoot) glob(pattern string) ([]string, error) {
	parts := strings.Split(pattern, "/")
	cur := []string{""}
	for i, part := range parts {
		var next []string
		for _, base := range cur {
			if !hasWildcard(part) {
				next = append(next, path.Join(base, part))
				continue
			}
			dir, err := securejoin.SecureJoin(r.dir, base)
			if err != nil {
				continue
			}
			ents, err := os.ReadDir(dir)
			if err != nil {
				continue
			}
			for _, e := range ents {
				ok, err := path.Match(part, e.Name())
				if err != nil {
					return nil, srcErr("bad pattern %q: %v", pattern, err)
				}
				if ok && (i == len(parts)-1 || e.IsDir() || e.Type()&fs.ModeSymlink != 0) {
					next = append(next, path.Join(base, e.Name()))
				}
			}
		}
		cur = next
	}
	var out []string
	for _, p := range cur {
		real, err := securejoin.SecureJoin(r.dir, p)
		if err != nil {
			continue
		}
		if _, err := os.Lstat(real); err == nil {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out, nil
}

// hashingTar writes a tar stream and hashes what the cache key covers.
type hashingTar struct {
	tw   *tar.Writer
	h    hash.Hash
	dirs map[string]bool // directories already written (absolute paths)
}

func newHashingTar(w io.Writer) *hashingTar {
	return &hashingTar{tw: tar.NewWriter(w), h: sha256.New(), dirs: map[string]bool{}}
}

func (t *hashingTar) header(h *tar.Header) error {
	fmt.Fprintf(t.h, "%s\x00%c\x00%o\x00%d:%d\x00%d\x00%s\n", h.Name, h.Typeflag, h.Mode, h.Uid, h.Gid, h.Size, h.Linkname)
	return t.tw.WriteHeader(h)
}

func (t *hashingTar) body(r io.Reader) error {
	_, err := io.Copy(io.MultiWriter(t.tw, t.h), r)
	return err
}

func (t *hashingTar) sum() string { return hex.EncodeToString(t.h.Sum(nil)) }

// writeCopy writes the tar of spec's sources from root to w and returns the content hash.
func writeCopy(root srcRoot, spec *copySpec, w io.Writer) (string, error) {
	dest, dirSyntax := spec.destPath()
	destIsDir := dirSyntax || spec.DestIsDir
	var all []match
	for _, s := range spec.Sources {
		if spec.Add && isURL(s) {
			continue // downloaded by the caller into spec.Remote
		}
		ms, err := root.resolve(s)
		if err != nil {
			return "", err
		}
		all = append(all, ms...)
	}
	if len(all)+len(spec.Inline)+len(spec.Remote) == 0 {
		return "", srcErr("no source files were specified")
	}
	name := "COPY"
	if spec.Add {
		name = "ADD"
	}
	multi := len(all)+len(spec.Inline)+len(spec.Remote) > 1
	if multi && !dirSyntax {
		return "", srcErr("when using %s with more than one source file, the destination must be a directory and end with a /", name)
	}
	t := newHashingTar(w)
	if spec.Chown != nil && spec.Rootfs != "" {
		// Docker creates the missing directories on the way to a --chown destination with
		// that owner, 0755 (MkdirAllAndChownNew); podman does too. Without this they were
		// root's. (Without --chown the extractor makes them 0755 root, as docker.)
		top := dest
		if !destIsDir {
			top = path.Dir(dest)
		}
		var missing []string
		for p := top; p != "/"; p = path.Dir(p) {
			if _, err := files.StatPath(spec.Rootfs, p); err == nil {
				break
			}
			missing = append(missing, p)
		}
		for i := len(missing) - 1; i >= 0; i-- {
			h := &tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(missing[i], "/") + "/", Mode: 0o755,
				Uid: spec.Chown.UID, Gid: spec.Chown.GID, ModTime: time.Now(), Format: tar.FormatPAX}
			if err := t.header(h); err != nil {
				return "", err
			}
			t.dirs[missing[i]] = true
		}
	}
	written := map[string]bool{}
	for _, m := range all {
		if m.fi.IsDir() {
			if err := t.dir(root, spec, m, dest); err != nil {
				return "", err
			}
			continue
		}
		target := dest
		if destIsDir {
			target = path.Join(dest, path.Base("/"+m.rel))
		}
		if spec.Add && m.fi.Mode().IsRegular() {
			if rc, ok := isArchive(m.real); ok {
				err := t.unpack(rc, dest, spec)
				rc.Close()
				if err != nil {
					return "", err
				}
				continue
			}
		}
		if written[target] {
			continue
		}
		written[target] = true
		if err := t.entry(root, spec, m.real, m.fi, target); err != nil {
			return "", err
		}
	}
	for _, f := range spec.Inline {
		target := dest
		if destIsDir {
			target = path.Join(dest, path.Base("/"+f.Name))
		}
		if written[target] {
			continue
		}
		written[target] = true
		h := &tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(target, "/"), Mode: 0o644,
			Size: int64(len(f.Data)), ModTime: time.Now(), Format: tar.FormatPAX}
		if spec.Chown != nil {
			h.Uid, h.Gid = spec.Chown.UID, spec.Chown.GID
		}
		if spec.Chmod != nil {
			h.Mode = int64(*spec.Chmod)
		}
		if err := t.header(h); err != nil {
			return "", err
		}
		if err := t.body(strings.NewReader(f.Data)); err != nil {
			return "", err
		}
	}
	for _, f := range spec.Remote {
		target := dest
		if destIsDir {
			target = path.Join(dest, f.Name)
		}
		if err := t.remote(spec, f, target); err != nil {
			return "", err
		}
	}
	if err := t.tw.Close(); err != nil {
		return "", err
	}
	return t.sum(), nil
}

// dir copies the contents of directory m under dest.
func (t *hashingTar) dir(root srcRoot, spec *copySpec, m match, dest string) error {
	if dest != "/" && !spec.DestIsDir && !t.dirs[dest] {
		// The destination directory itself, when missing: docker creates it 0755, owned by
		// --chown's owner or root (MkdirAllAndChownNew(dest, 0755, identity)), whatever the
		// source directory's mode and owner or --chmod (they went to it before: a 0700
		// source, or --chmod=0750, made a 0700/0750 destination; podman agrees with docker).
		h := &tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(dest, "/") + "/", Mode: 0o755,
			ModTime: m.fi.ModTime(), Format: tar.FormatPAX}
		if spec.Chown != nil {
			h.Uid, h.Gid = spec.Chown.UID, spec.Chown.GID
		}
		if err := t.header(h); err != nil {
			return err
		}
	}
	return filepath.WalkDir(m.real, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == m.real {
			return nil
		}
		relIn, _ := filepath.Rel(m.real, p)
		relIn = filepath.ToSlash(relIn)
		if root.ctx != nil {
			ctxRel := path.Join(m.rel, relIn)
			if root.ctx.Excluded(ctxRel) {
				if d.IsDir() && root.ctx.skipDir(ctxRel) {
					return filepath.SkipDir
				}
				if !d.IsDir() {
					return nil
				}
				// An excluded directory with exception patterns: walk it, but do not
				// create it unless something under it is copied (done by the extractor).
				return nil
			}
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return t.entry(root, spec, p, fi, path.Join(dest, relIn))
	})
}

// entry writes one file, directory or symlink at target (an absolute image path).
func (t *hashingTar) entry(root srcRoot, spec *copySpec, real string, fi fs.FileInfo, target string) error {
	link := ""
	if fi.Mode()&fs.ModeSymlink != 0 {
		l, err := os.Readlink(real)
		if err != nil {
			return err
		}
		link = l
	}
	h, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return srcErr("%s: %v", real, err)
	}
	h.Name = strings.TrimPrefix(target, "/")
	h.Uname, h.Gname = "", ""
	h.Format = tar.FormatPAX
	h.AccessTime, h.ChangeTime = time.Time{}, time.Time{}
	switch {
	case spec.Chown != nil:
		h.Uid, h.Gid = spec.Chown.UID, spec.Chown.GID
	case root.ctx != nil:
		h.Uid, h.Gid = 0, 0
	}
	if spec.Chmod != nil && h.Typeflag != tar.TypeSymlink {
		h.Mode = int64(*spec.Chmod)
	}
	if fi.IsDir() {
		h.Name += "/"
	}
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeDir, tar.TypeSymlink:
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		if root.ctx != nil {
			return nil // docker skips special files of the context
		}
	default:
		return nil // sockets
	}
	if err := t.header(h); err != nil {
		return err
	}
	if h.Typeflag == tar.TypeReg {
		f, err := os.Open(real)
		if err != nil {
			return err
		}
		defer f.Close()
		return t.body(io.LimitReader(f, h.Size))
	}
	return nil
}

// remote writes a downloaded ADD source: 0600 (or --chmod), root's (or --chown's), with the
// server's Last-Modified time.
func (t *hashingTar) remote(spec *copySpec, f remoteFile, target string) error {
	r, err := os.Open(f.File)
	if err != nil {
		return err
	}
	defer r.Close()
	fi, err := r.Stat()
	if err != nil {
		return err
	}
	h := &tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(target, "/"), Mode: 0o600,
		Size: fi.Size(), ModTime: f.ModTime, Format: tar.FormatPAX}
	if spec.Chown != nil {
		h.Uid, h.Gid = spec.Chown.UID, spec.Chown.GID
	}
	if spec.Chmod != nil {
		h.Mode = int64(*spec.Chmod)
	}
	if err := t.header(h); err != nil {
		return err
	}
	return t.body(io.LimitReader(r, h.Size))
}

// unpack re-writes the entries of a local archive (ADD) under dest.
func (t *hashingTar) unpack(r io.Reader, dest string, spec *copySpec) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return srcErr("unpack archive: %v", err)
		}
		name := path.Clean("/" + h.Name)
		if name == "/" {
			continue
		}
		isDir := h.Typeflag == tar.TypeDir
		h.Name = strings.TrimPrefix(path.Join(dest, name), "/")
		if isDir {
			h.Name += "/"
		}
		if h.Typeflag == tar.TypeLink {
			h.Linkname = strings.TrimPrefix(path.Join(dest, path.Clean("/"+h.Linkname)), "/")
		}
		if spec.Chown != nil {
			h.Uid, h.Gid = spec.Chown.UID, spec.Chown.GID
		}
		h.Uname, h.Gname = "", ""
		h.Format = tar.FormatPAX
		if err := t.header(h); err != nil {
			return err
		}
		if h.Typeflag == tar.TypeReg {
			if err := t.body(tr); err != nil {
				return err
			}
		}
	}
}

// parseChmod reads --chmod's octal mode.
func parseChmod(s string) (*os.FileMode, error) {
	if s == "" {
		return nil, nil
	}
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o7777 {
		return nil, fmt.Errorf("invalid --chmod %q: use an octal mode like 0755", s)
	}
	m := os.FileMode(n)
	return &m, nil
}

// sourceError is a COPY/ADD source problem; it matches ErrSource.
type sourceError struct{ msg string }

func (e *sourceError) Error() string { return e.msg }
func (e *sourceError) Unwrap() error { return ErrSource }

func srcErr(format string, a ...any) error { return &sourceError{fmt.Sprintf(format, a...)} }

package archive

// The spool: an archive arrives as a stream, but neither format can be
// processed in stream order — docker writes manifest.json after the layers
// it names, and an OCI layout's index.json may come anywhere. So Load first
// copies every regular member into a private directory and hashes it on the
// way, then reads the metadata, checks everything it can (paths, presence,
// digests, media types) and only then touches the stores.
//
// The directory lives in the image store's ingest/ directory, next to the
// blobs the members will become: the copy into blobs/ stays on one file
// system, and a load killed at any instant leaves its spool where
// image.Open and image GC already clean up crashed writes (they only do so
// while no lease is held, and Load holds one for its whole run).
//
// Members are never materialized under their own names: each regular file
// is spool/<n>, and the archive's names only key a map. A hostile name can
// therefore not write anywhere; it is still refused (ErrUnsafePath) when
// absolute or containing "..", because no legitimate writer produces one.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/berth-dev/berth/image"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
)

// maxLinkDepth bounds link-to-link resolution, so a cycle of links in a
// hostile archive ends in an error instead of a loop.
const maxLinkDepth = 16

type memberKind int

const (
	kindFile  memberKind = iota
	kindLink             // symlink or hard link to another member
	kindOther            // directory, device, fifo: never a file a manifest may name
)

// member is one tar entry of the archive.
type member struct {
	name   string // cleaned name ("blobs/sha256/ab..", "manifest.json")
	kind   memberKind
	file   string        // spool file holding the content (kindFile)
	digest digest.Digest // sha256 of the content (kindFile)
	size   int64         // content size (kindFile)
	target string        // cleaned member name a link resolves to (kindLink)
}

// spool holds an archive's members on disk.
type spool struct {
	dir     string
	members map[string]*member
}

var (
	magicGzip = []byte{0x1f, 0x8b}
	magicZstd = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// newSpool reads the whole tar stream r (plain, gzip or zstd) into a new
// spool directory under the image store's ingest/. On error nothing is left.
func newSpool(ctx context.Context, images *image.Store, r io.Reader, prefix string) (sp *spool, err error) {
	dir, err := os.MkdirTemp(filepath.Join(images.Root(), "ingest"), prefix+"-")
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	sp = &spool{dir: dir, members: map[string]*member{}}
	src, release, err := decompress(bufio.NewReaderSize(ctxReader{ctx, r}, 1<<20))
	if err != nil {
		return nil, err
	}
	defer release()
	tr := tar.NewReader(src)
	buf := make([]byte, 256<<10)
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		// With GODEBUG=tarinsecurepath=0 the reader flags unsafe names
		// itself; cleanMemberName below refuses them with our error.
		if err != nil && !(errors.Is(err, tar.ErrInsecurePath) && hdr != nil) {
			return nil, readError("read archive", err)
		}
		name, err := cleanMemberName(hdr.Name)
		if err != nil {
			return nil, err
		}
		if name == "." {
			continue // the "./" entry of `tar -C dir .`
		}
		m := &member{name: name, kind: kindOther}
		switch hdr.Typeflag {
		case tar.TypeReg:
			m.kind = kindFile
			m.file = filepath.Join(dir, strconv.Itoa(n))
			if m.digest, m.size, err = spoolFile(m.file, tr, buf); err != nil {
				return nil, readError("read archive member "+hdr.Name, err)
			}
		case tar.TypeSymlink:
			// A symlink's target is relative to its own directory; docker's
			// legacy save links identical layers as "../<id>/layer.tar".
			if path.IsAbs(hdr.Linkname) {
				return nil, fmt.Errorf("%w: member %q links to absolute path %q", ErrUnsafePath, hdr.Name, hdr.Linkname)
			}
			m.kind = kindLink
			if m.target, err = cleanLinkTarget(hdr.Name, path.Join(path.Dir(name), hdr.Linkname)); err != nil {
				return nil, err
			}
		case tar.TypeLink:
			// A hard link's target is a member name, relative to the root.
			if path.IsAbs(hdr.Linkname) {
				return nil, fmt.Errorf("%w: member %q links to absolute path %q", ErrUnsafePath, hdr.Name, hdr.Linkname)
			}
			m.kind = kindLink
			if m.target, err = cleanLinkTarget(hdr.Name, hdr.Linkname); err != nil {
				return nil, err
			}
		}
		// A later member of the same name replaces an earlier one, as when
		// extracting; the earlier spool file is no longer needed.
		if old := sp.members[name]; old != nil && old.file != "" {
			os.Remove(old.file)
		}
		sp.members[name] = m
	}
	return sp, nil
}

// close removes the spool directory.
func (sp *spool) close() error {
	if sp == nil {
		return nil
	}
	return os.RemoveAll(sp.dir)
}

// has reports whether name (a path as written in a manifest) is a member
// that resolves to a regular file.
func (sp *spool) has(name string) bool {
	_, err := sp.lookup(name)
	return err == nil
}

// lookup resolves name (a path as written in manifest.json or derived from a
// digest) to the regular-file member holding its content, following links.
func (sp *spool) lookup(name string) (*member, error) {
	clean, err := cleanMemberName(name)
	if err != nil {
		return nil, err
	}
	for range maxLinkDepth {
		m := sp.members[clean]
		switch {
		case m == nil:
			return nil, fmt.Errorf("%w: %s", ErrMissingFile, name)
		case m.kind == kindFile:
			return m, nil
		case m.kind == kindOther:
			return nil, fmt.Errorf("%w: %s is not a regular file", ErrInvalidArchive, name)
		}
		clean = m.target
	}
	return nil, fmt.Errorf("%w: %s: too many levels of links", ErrInvalidArchive, name)
}

// readSmall reads a metadata member whole (manifest.json, index.json, a
// config or manifest blob), refusing ones over image.MaxReadBlob: these are
// parsed in memory, and a hostile archive must not make us allocate a
// layer-sized buffer.
func (sp *spool) readSmall(m *member) ([]byte, error) {
	if m.size > image.MaxReadBlob {
		return nil, fmt.Errorf("%w: %s is %d bytes, more than the %d a metadata file may have", ErrInvalidArchive, m.name, m.size, image.MaxReadBlob)
	}
	b, err := os.ReadFile(m.file)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", m.name, err)
	}
	return b, nil
}

// spoolFile copies r to a new file at p and returns its digest and size.
func spoolFile(p string, r io.Reader, buf []byte) (digest.Digest, int64, error) {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", 0, err
	}
	dg := digest.SHA256.Digester()
	n, err := io.CopyBuffer(io.MultiWriter(f, dg.Hash()), r, buf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", 0, err
	}
	return dg.Digest(), n, nil
}

// cleanMemberName normalizes an archive member name or a path from a
// manifest: "./a//b" and "a/b/" are "a/b". Absolute names and names with a
// ".." component are ErrUnsafePath: no writer of either format makes them,
// and extracting tools would write outside their target directory.
func cleanMemberName(name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("%w: empty name", ErrInvalidArchive)
	}
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("%w: absolute name %q", ErrUnsafePath, name)
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", fmt.Errorf("%w: %q contains \"..\"", ErrUnsafePath, name)
		}
	}
	return path.Clean(name), nil
}

// cleanLinkTarget cleans a link target already made relative to the archive
// root; it may use ".." internally but must stay inside the archive.
func cleanLinkTarget(member, target string) (string, error) {
	t := path.Clean(target)
	if t == ".." || strings.HasPrefix(t, "../") || path.IsAbs(t) {
		return "", fmt.Errorf("%w: member %q links outside the archive (%q)", ErrUnsafePath, member, target)
	}
	return t, nil
}

// decompress detects gzip or zstd by magic bytes (docker load accepts a
// compressed archive, e.g. `docker save | gzip`) and returns the tar stream.
func decompress(br *bufio.Reader) (io.Reader, func(), error) {
	magic, err := br.Peek(4)
	if err != nil && err != io.EOF {
		return nil, nil, readError("read archive", err)
	}
	switch {
	case bytes.HasPrefix(magic, magicGzip):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, readError("read archive: gzip", err)
		}
		return zr, func() { zr.Close() }, nil
	case bytes.HasPrefix(magic, magicZstd):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, nil, readError("read archive: zstd", err)
		}
		return zr, zr.Close, nil
	}
	return br, func() {}, nil
}

// readError classifies an error from reading the archive stream: an early
// end is ErrTruncated; cancellation and file-system errors (a full disk
// while spooling) pass through; anything else comes from the tar, gzip or
// zstd decoder and means the input is malformed: ErrInvalidArchive.
func readError(op string, err error) error {
	var pathErr *fs.PathError
	var errno syscall.Errno
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%s: %w: %w", op, ErrTruncated, err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &pathErr), errors.As(err, &errno):
		return fmt.Errorf("%s: %w", op, err)
	}
	return fmt.Errorf("%s: %w: %w", op, ErrInvalidArchive, err)
}

// ctxReader makes a long copy stop when ctx is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

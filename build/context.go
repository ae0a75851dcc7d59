package build

// The build context: a directory on the host (or a tarball / stdin unpacked into a private
// directory under the data root), with .dockerignore's patterns applied as docker does
// (github.com/moby/patternmatcher: later patterns win, "!" re-includes, a directory excluded
// without any exception pattern is skipped as a whole). Paths in the context are resolved
// in-root (filepath-securejoin): a symlink never leads out of the context.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"

	"github.com/berth-dev/berth/container/files"
)

// Context is an opened build context.
type Context struct {
	Dir     string // the context's root directory on the host
	matcher *patternmatcher.PatternMatcher
	cleanup func()
}

// Close removes a context unpacked from a tarball.
func (c *Context) Close() {
	if c.cleanup != nil {
		c.cleanup()
	}
}

// OpenDir opens a directory as the context and reads its .dockerignore.
func OpenDir(dir string) (*Context, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("unable to prepare context: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("unable to prepare context: %s is not a directory", dir)
	}
	c := &Context{Dir: abs}
	if err := c.readIgnore(); err != nil {
		return nil, err
	}
	return c, nil
}

// OpenTar unpacks a tar stream (plain, gzip or bzip2) into a new directory under tmpDir and
// opens it as the context.
func OpenTar(ctx context.Context, r io.Reader, tmpDir string) (*Context, error) {
	if err := os.MkdirAll(tmpDir, 0o700); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(tmpDir, "context-")
	if err != nil {
		return nil, err
	}
	rc, err := decompress(r)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := files.CopyIn(ctx, dir, "/", rc, files.CopyInOpts{UID: os.Getuid(), GID: os.Getgid()}); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("unable to unpack the build context: %w", err)
	}
	c := &Context{Dir: dir, cleanup: func() { os.RemoveAll(dir) }}
	if err := c.readIgnore(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// decompress detects gzip and bzip2 by their magic numbers; anything else is read as is.
func decompress(r io.Reader) (io.Reader, error) {
	br := bufio.NewReader(r)
	magic, _ := br.Peek(3)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		return gzip.NewReader(br)
	case bytes.HasPrefix(magic, []byte("BZh")):
		return bzip2.NewReader(br), nil
	}
	return br, nil
}

// isArchive reports whether the file at p is a tar archive (possibly compressed) that ADD
// unpacks, and returns a reader of the tar.
func isArchive(p string) (io.ReadCloser, bool) {
	f, err := os.Open(p)
	if err != nil {
		return nil, false
	}
	r, err := decompress(f)
	if err != nil {
		f.Close()
		return nil, false
	}
	br := bufio.NewReaderSize(r, 1024)
	head, _ := br.Peek(512)
	if len(head) < 512 {
		f.Close()
		return nil, false
	}
	if _, err := tar.NewReader(bytes.NewReader(head)).Next(); err != nil {
		f.Close()
		return nil, false
	}
	return struct {
		io.Reader
		io.Closer
	}{br, f}, true
}

func (c *Context) readIgnore() error {
	f, err := os.Open(filepath.Join(c.Dir, ".dockerignore"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		return fmt.Errorf("error reading .dockerignore: %w", err)
	}
	return c.SetIgnore(patterns)
}

// SetIgnore replaces the exclusion patterns.
func (c *Context) SetIgnore(patterns []string) error {
	if len(patterns) == 0 {
		c.matcher = nil
		return nil
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return fmt.Errorf("invalid .dockerignore: %w", err)
	}
	c.matcher = pm
	return nil
}

// Excluded reports whether rel (a slash path relative to the context root) is excluded.
func (c *Context) Excluded(rel string) bool {
	if c == nil || c.matcher == nil {
		return false
	}
	rel = strings.TrimPrefix(path.Clean("/"+rel), "/")
	if rel == "" {
		return false
	}
	m, err := c.matcher.MatchesOrParentMatches(rel)
	return err == nil && m
}

// skipDir reports whether a whole excluded directory can be skipped (no exception pattern
// could re-include something under it).
func (c *Context) skipDir(rel string) bool {
	return c.Excluded(rel) && !c.matcher.Exclusions()
}

package image

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	digest "github.com/opencontainers/go-digest"
)

// MaxReadBlob caps ReadBlob: manifests and configs are small, and a cap keeps
// a hostile or corrupt store from making us allocate a layer-sized buffer.
const MaxReadBlob = 8 << 20

// validateDigest accepts only well-formed sha256 digests. It is also what
// keeps blob paths inside blobs/: a validated digest is "sha256:" + 64 hex.
func validateDigest(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("%w: %q: %v", ErrInvalidDigest, d, err)
	}
	if d.Algorithm() != digest.SHA256 {
		return fmt.Errorf("%w: %q: only sha256 is supported", ErrInvalidDigest, d)
	}
	return nil
}

// BlobPath returns where the blob with digest dgst lives (present or not), for
// readers such as the layer unpacker. It returns "" for an invalid digest.
func (s *Store) BlobPath(dgst digest.Digest) string {
	if validateDigest(dgst) != nil {
		return ""
	}
	return filepath.Join(s.blobDir, dgst.Encoded())
}

// Has reports whether the blob is in the store.
func (s *Store) Has(dgst digest.Digest) bool {
	p := s.BlobPath(dgst)
	if p == "" {
		return false
	}
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// Open opens a blob for reading. A missing blob is ErrNotFound.
func (s *Store) Open(dgst digest.Digest) (*os.File, error) {
	if err := validateDigest(dgst); err != nil {
		return nil, fmt.Errorf("open blob: %w", err)
	}
	f, err := os.Open(s.BlobPath(dgst))
	if os.IsNotExist(err) {
		return nil, fmt.Errorf("blob %s: %w", dgst, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open blob %s: %w", dgst, err)
	}
	return f, nil
}

// ReadBlob reads a small blob (manifest, config, index) whole, refusing blobs
// over MaxReadBlob and verifying the digest: these bytes drive decisions, so a
// corrupt copy must not be trusted silently.
func (s *Store) ReadBlob(dgst digest.Digest) ([]byte, error) {
	f, err := s.Open(dgst)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", dgst, err)
	}
	if fi.Size() > MaxReadBlob {
		return nil, fmt.Errorf("read blob %s: %w: %d bytes (limit %d)", dgst, ErrBlobTooLarge, fi.Size(), MaxReadBlob)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxReadBlob+1))
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", dgst, err)
	}
	if len(b) > MaxReadBlob {
		return nil, fmt.Errorf("read blob %s: %w: grew past %d bytes", dgst, ErrBlobTooLarge, MaxReadBlob)
	}
	if got := digest.FromBytes(b); got != dgst {
		return nil, fmt.Errorf("read blob %s: %w: content hashes to %s", dgst, ErrDigestMismatch, got)
	}
	return b, nil
}

// Ingest copies r into the store as the blob dgst, verifying size (when
// size >= 0) and digest while streaming. On any failure nothing is left in
// blobs/ or ingest/. Content already present returns at once without reading
// r. Concurrent ingests of one digest all succeed.
//
// A lone Ingest is safe against GC (it holds gc.lock shared), but the blob is
// unreferenced once it returns: hold a Lease until PutImage if it must survive.
func (s *Store) Ingest(ctx context.Context, dgst digest.Digest, size int64, r io.Reader) (err error) {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if err := validateDigest(dgst); err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	if s.Has(dgst) {
		return nil
	}
	unlock, err := s.lock(ctx, lockShared)
	if err != nil {
		return fmt.Errorf("ingest %s: %w", dgst, err)
	}
	defer unlock()

	f, err := os.CreateTemp(s.ingestDir, dgst.Encoded()[:12]+"-*")
	if err != nil {
		return fmt.Errorf("ingest %s: %w", dgst, err)
	}
	tmp := f.Name()
	defer func() {
		if f != nil {
			f.Close()
		}
		if err != nil {
			os.Remove(tmp)
		}
	}()

	var src io.Reader = ctxReader{ctx, r}
	if size >= 0 {
		// Read one byte past the announced size to detect overlong content
		// without trusting the source to stop.
		src = io.LimitReader(src, size+1)
	}
	dg := digest.SHA256.Digester()
	buf := make([]byte, 256<<10)
	n, err := io.CopyBuffer(io.MultiWriter(f, dg.Hash()), src, buf)
	if err != nil {
		return fmt.Errorf("ingest %s: %w", dgst, err)
	}
	if size >= 0 && n != size {
		if n > size {
			return fmt.Errorf("ingest %s: %w: expected %d bytes, got more", dgst, ErrSizeMismatch, size)
		}
		return fmt.Errorf("ingest %s: %w: expected %d bytes, got %d", dgst, ErrSizeMismatch, size, n)
	}
	if got := dg.Digest(); got != dgst {
		return fmt.Errorf("ingest %s: %w: content hashes to %s", dgst, ErrDigestMismatch, got)
	}
	// Blobs are immutable; the read-only mode documents that and protects
	// against non-root tools writing to them by mistake.
	if err := f.Chmod(0o444); err != nil {
		return fmt.Errorf("ingest %s: %w", dgst, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("ingest %s: %w", dgst, err)
	}
	if err := f.Close(); err != nil {
		f = nil
		return fmt.Errorf("ingest %s: %w", dgst, err)
	}
	f = nil
	if err := os.Rename(tmp, filepath.Join(s.blobDir, dgst.Encoded())); err != nil {
		return fmt.Errorf("ingest %s: %w", dgst, err)
	}
	if err := syncDir(s.blobDir); err != nil {
		return fmt.Errorf("ingest %s: %w", dgst, err)
	}
	return nil
}

// IngestBytes is Ingest for content already in memory (manifests, configs).
func (s *Store) IngestBytes(ctx context.Context, b []byte) (digest.Digest, error) {
	d := digest.FromBytes(b)
	return d, s.Ingest(ctx, d, int64(len(b)), bytes.NewReader(b))
}

// ctxReader stops a copy when its context ends, so a cancelled pull does not
// keep draining a slow source.
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

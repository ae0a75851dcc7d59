package image

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	digest "github.com/opencontainers/go-digest"
)

func TestIngest(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	content := []byte("hello, blob")
	d := digest.FromBytes(content)

	if err := s.Ingest(ctx, d, int64(len(content)), bytes.NewReader(content)); err != nil {
		t.Fatal(err)
	}
	if !s.Has(d) {
		t.Fatal("Has = false after Ingest")
	}
	got, err := s.ReadBlob(d)
	if err != nil || !bytes.Equal(got, content) {
		t.Fatalf("ReadBlob = %q, %v", got, err)
	}
	f, err := s.Open(d)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if s.BlobPath(d) != filepath.Join(s.Root(), "blobs", "sha256", d.Encoded()) {
		t.Errorf("BlobPath = %s", s.BlobPath(d))
	}
	if s.BlobPath("sha256:../../etc") != "" {
		t.Error("BlobPath accepted an invalid digest")
	}

	// Present content returns at once without reading.
	if err := s.Ingest(ctx, d, int64(len(content)), noRead{t}); err != nil {
		t.Fatal(err)
	}
	// Unknown size is fine.
	other := []byte("size unknown")
	if err := s.Ingest(ctx, digest.FromBytes(other), -1, bytes.NewReader(other)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(digest.FromString("absent")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open(absent) = %v, want ErrNotFound", err)
	}
}

// noRead is a reader that fails the test if read.
type noRead struct{ t *testing.T }

func (r noRead) Read([]byte) (int, error) {
	r.t.Error("reader was read for content already present")
	return 0, io.EOF
}

func TestIngestRejects(t *testing.T) {
	ctx := context.Background()
	content := []byte("the real content")
	d := digest.FromBytes(content)
	cases := []struct {
		name string
		dgst digest.Digest
		size int64
		want error
	}{
		{"wrong digest", digest.FromString("something else"), int64(len(content)), ErrDigestMismatch},
		{"short", d, int64(len(content)) + 1, ErrSizeMismatch},
		{"long", d, int64(len(content)) - 1, ErrSizeMismatch},
		{"invalid digest", "sha256:1234", -1, ErrInvalidDigest},
		{"sha512", digest.SHA512.FromBytes(content), -1, ErrInvalidDigest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newStore(t)
			err := s.Ingest(ctx, c.dgst, c.size, bytes.NewReader(content))
			if !errors.Is(err, c.want) {
				t.Fatalf("Ingest = %v, want %v", err, c.want)
			}
			if n := blobNames(t, s); len(n) != 0 {
				t.Errorf("blobs/ holds %v after a failed ingest", n)
			}
			if n := ingestNames(t, s); len(n) != 0 {
				t.Errorf("ingest/ holds %v after a failed ingest", n)
			}
		})
	}
}

func TestIngestCancelled(t *testing.T) {
	s := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	content := []byte("never stored")
	if err := s.Ingest(ctx, digest.FromBytes(content), -1, bytes.NewReader(content)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Ingest = %v, want context.Canceled", err)
	}
	if n := ingestNames(t, s); len(n) != 0 {
		t.Errorf("ingest/ holds %v", n)
	}
}

func TestIngestConcurrentSameDigest(t *testing.T) {
	s := newStore(t)
	content := bytes.Repeat([]byte("concurrent "), 100_000)
	d := digest.FromBytes(content)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Short reads make many small writes, so the ingests overlap.
			errs[i] = s.Ingest(context.Background(), d, int64(len(content)), iotest.HalfReader(bytes.NewReader(content)))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("ingest %d: %v", i, err)
		}
	}
	if n := blobNames(t, s); len(n) != 1 || n[0] != d.Encoded() {
		t.Errorf("blobs/ = %v", n)
	}
	if n := ingestNames(t, s); len(n) != 0 {
		t.Errorf("ingest/ = %v", n)
	}
	if got, err := s.ReadBlob(d); err != nil || !bytes.Equal(got, content) {
		t.Errorf("ReadBlob after concurrent ingest: %v", err)
	}
}

func TestOpenCleansCrashedIngest(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	leftover := filepath.Join(root, "ingest", "0123456789ab-crashed")
	if err := os.WriteFile(leftover, []byte("half a blob"), 0o600); err != nil {
		t.Fatal(err)
	}

	// While a writer holds a lease, its temp files must survive another Open.
	s2, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	release, err := s2.Lease(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(leftover+"2", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s3, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(leftover + "2"); err != nil {
		t.Errorf("Open removed an active writer's file: %v", err)
	}
	s3.Close()
	release()
	s2.Close()

	s4, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer s4.Close()
	if n := ingestNames(t, s4); len(n) != 0 {
		t.Errorf("ingest/ after reopen = %v", n)
	}
}

func TestReadBlobVerifies(t *testing.T) {
	s := newStore(t)
	d := ingestBytes(t, s, []byte(`{"a":1}`))
	p := s.BlobPath(d)
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(`{"a":2}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadBlob(d); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("ReadBlob of corrupt blob = %v", err)
	}

	big := []byte(strings.Repeat("x", MaxReadBlob+1))
	bd := ingestBytes(t, s, big)
	if _, err := s.ReadBlob(bd); !errors.Is(err, ErrBlobTooLarge) {
		t.Fatalf("ReadBlob of big blob = %v", err)
	}
}

func TestClosed(t *testing.T) {
	s := newStore(t)
	s.Close()
	if _, err := s.List(); !errors.Is(err, ErrClosed) {
		t.Errorf("List after Close = %v", err)
	}
	if err := s.Ingest(context.Background(), digest.FromString("x"), 1, strings.NewReader("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Ingest after Close = %v", err)
	}
}

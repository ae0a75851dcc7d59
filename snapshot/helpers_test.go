package snapshot

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/testutil"
)

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (mknod, chown, trusted xattrs, overlay mounts)")
	}
}

// newStore opens a store in a fresh temp dir and registers checks that the
// test left no mounts and no tmp/ leftovers. It returns the store and a
// scratch dir (for mount targets and host dirs) under the same base.
func newStore(t testing.TB) (*Store, string) {
	t.Helper()
	requireRoot(t)
	base := t.TempDir()
	s, err := Open(filepath.Join(base, "store"))
	if err != nil {
		t.Fatal(err)
	}
	scratch := filepath.Join(base, "scratch")
	if err := os.Mkdir(scratch, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Unmount anything left (so TempDir's RemoveAll never deletes
		// through a live overlay), then fail the test for it.
		for _, m := range testutil.MountsUnder(base) {
			t.Errorf("mount left behind: %s", m)
			unix.Unmount(m, unix.MNT_DETACH)
		}
		ents, _ := os.ReadDir(filepath.Join(base, "store", tmpDir))
		for _, e := range ents {
			t.Errorf("tmp leftover: %s", e.Name())
		}
	})
	return s, scratch
}

// tb builds a tar archive in memory.
type tb struct {
	t   testing.TB
	buf bytes.Buffer
	tw  *tar.Writer
}

func newTar(t testing.TB) *tb {
	b := &tb{t: t}
	b.tw = tar.NewWriter(&b.buf)
	return b
}

func (b *tb) add(h *tar.Header, body string) *tb {
	b.t.Helper()
	if h.Typeflag == 0 {
		h.Typeflag = tar.TypeReg
	}
	if h.Typeflag == tar.TypeReg {
		h.Size = int64(len(body))
	}
	if h.Mode == 0 {
		h.Mode = 0o644
		if h.Typeflag == tar.TypeDir {
			h.Mode = 0o755
		}
	}
	if err := b.tw.WriteHeader(h); err != nil {
		b.t.Fatal(err)
	}
	if body != "" {
		if _, err := b.tw.Write([]byte(body)); err != nil {
			b.t.Fatal(err)
		}
	}
	return b
}

func (b *tb) file(name, body string) *tb { return b.add(&tar.Header{Name: name}, body) }
func (b *tb) dir(name string) *tb        { return b.add(&tar.Header{Name: name, Typeflag: tar.TypeDir}, "") }

func (b *tb) bytes() []byte {
	b.t.Helper()
	if err := b.tw.Close(); err != nil {
		b.t.Fatal(err)
	}
	return b.buf.Bytes()
}

func gz(t testing.TB, b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func zst(t testing.TB, b []byte) []byte {
	zw, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zw.Close()
	return zw.EncodeAll(b, nil)
}

func dg(b []byte) digest.Digest { return digest.FromBytes(b) }

func lstat(t testing.TB, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func readFile(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// assertEmptyStore checks that nothing is committed.
func assertNoCommitted(t testing.TB, s *Store) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(s.root, committedDir))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("unexpected committed layer %s", e.Name())
	}
}

func assertNoTmp(t testing.TB, s *Store) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(s.root, tmpDir))
	for _, e := range ents {
		t.Errorf("tmp leftover %s", e.Name())
	}
}

// failReader fails the test if Apply reads it.
type failReader struct{ t testing.TB }

func (f failReader) Read([]byte) (int, error) {
	f.t.Error("reader was read although the chain exists")
	return 0, os.ErrInvalid
}

package snapshot

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestRemoveInUse(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	base, _, err := s.Apply(ctx, "", bytes.NewReader(newTar(t).file("a", "a").bytes()), LayerDigests{})
	if err != nil {
		t.Fatal(err)
	}
	child, _, err := s.Apply(ctx, base, bytes.NewReader(newTar(t).file("b", "bb").bytes()), LayerDigests{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, base); !errors.Is(err, ErrInUse) {
		t.Errorf("Remove(parent of a chain) = %v", err)
	}
	if err := s.Prepare(ctx, "ctr", child); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, child); !errors.Is(err, ErrInUse) {
		t.Errorf("Remove(parent of an active snapshot) = %v", err)
	}
	if c, _, err := s.Usage(); err != nil || c != 3 {
		t.Errorf("Usage committed = %d, %v", c, err)
	}
	if err := s.RemoveActive(ctx, "ctr"); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, child); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, base); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, base); !errors.Is(err, ErrNotFound) {
		t.Errorf("Remove twice = %v", err)
	}
	if s.Exists(base) {
		t.Error("base still exists")
	}
	if _, err := s.Info(base); !errors.Is(err, ErrNotFound) {
		t.Errorf("Info = %v", err)
	}
	if err := s.Prepare(ctx, "x", base); !errors.Is(err, ErrNotFound) {
		t.Errorf("Prepare on a missing chain = %v", err)
	}
	if err := s.Prepare(ctx, "../x", ""); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("Prepare with a bad key = %v", err)
	}
	if _, _, err := s.Apply(ctx, base, bytes.NewReader(nil), LayerDigests{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Apply on a missing parent = %v", err)
	}
	assertNoCommitted(t, s)
}

func TestOpenCleansCrashLeftovers(t *testing.T) {
	s, _ := newStore(t)
	// A crashed Apply: half a layer in tmp/, nobody holds its lock.
	dead := filepath.Join(s.root, tmpDir, "apply-crashed")
	if err := os.MkdirAll(filepath.Join(dead, "fs", "usr", "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dead, "fs", "usr", "bin", "half"), []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A live Apply in "another process": its lock is held.
	live, err := s.newWorkDir("apply")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(s.root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(dead); !os.IsNotExist(err) {
		t.Errorf("crash leftover not removed: %v", err)
	}
	if _, err := os.Lstat(live.path); err != nil {
		t.Errorf("live work dir removed: %v", err)
	}
	live.discard()
	// A file (not a dir) left in tmp/ is removed as well.
	if err := os.WriteFile(filepath.Join(s.root, tmpDir, "junk"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(s.root); err != nil {
		t.Fatal(err)
	}
	assertNoTmp(t, s)
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(s.root, emptyDir), &st); err != nil || st.Mode&0o777 != 0o755 {
		t.Errorf("empty dir mode %o, %v", st.Mode&0o777, err)
	}
}

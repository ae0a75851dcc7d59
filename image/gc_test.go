package image

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
)

func TestGCSharedBase(t *testing.T) {
	ctx := context.Background()
	var hooked []digest.Digest
	s, err := Open(t.TempDir(), WithUnusedChainsHook(func(_ context.Context, chains []digest.Digest) error {
		hooked = chains
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	base := layer("base", 4000)
	one := buildImage(t, s, imageOpts{label: "one"}, base, layer("one", 1000))
	two := buildImage(t, s, imageOpts{label: "two"}, base, layer("two", 2000))
	if err := s.Tag(ctx, mustRef(t, "one"), one.manifest); err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(ctx, mustRef(t, "two"), two.manifest); err != nil {
		t.Fatal(err)
	}
	if one.layers[0] != two.layers[0] || one.chains[0] != two.chains[0] {
		t.Fatal("test setup: base layer not shared")
	}
	before, err := s.DiskUsage()
	if err != nil {
		t.Fatal(err)
	}
	if want := one.blobSize + two.blobSize - int64(len(base)); before != want {
		t.Errorf("DiskUsage = %d, want %d (base stored once)", before, want)
	}

	// Nothing is garbage yet.
	if freed, chains, err := s.GC(ctx); err != nil || freed != 0 || len(chains) != 0 {
		t.Fatalf("GC of a clean store = %d, %v, %v", freed, chains, err)
	}

	if err := s.Remove(ctx, "one"); err != nil {
		t.Fatal(err)
	}
	freed, chains, err := s.GC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := one.blobSize - int64(len(base)); freed != want {
		t.Errorf("freed %d, want %d (one's unique blobs)", freed, want)
	}
	if !slices.Equal(chains, []digest.Digest{one.chains[1]}) {
		t.Errorf("unused chains = %v, want only %v (the base is still used)", chains, one.chains[1])
	}
	if !slices.Equal(hooked, chains) {
		t.Errorf("hook saw %v, GC returned %v", hooked, chains)
	}
	for _, d := range []digest.Digest{one.manifest, one.config, one.layers[1]} {
		if s.Has(d) {
			t.Errorf("%s survived GC", d)
		}
	}
	for _, d := range append([]digest.Digest{two.manifest, two.config}, two.layers...) {
		if !s.Has(d) {
			t.Errorf("%s of the remaining image was collected", d)
		}
	}
	if _, err := s.Resolve("two"); err != nil {
		t.Error(err)
	}
	// Chains are reported once.
	if _, chains, _ := s.GC(ctx); len(chains) != 0 {
		t.Errorf("second GC reported %v again", chains)
	}

	// Removing the last image releases the base too.
	if err := s.Remove(ctx, "two"); err != nil {
		t.Fatal(err)
	}
	if freed, chains, err := s.GC(ctx); err != nil || freed != two.blobSize ||
		!slices.Equal(chains, slices.Sorted(slices.Values(two.chains))) {
		t.Errorf("last GC = %d, %v, %v; want %d and both of two's chains", freed, chains, err, two.blobSize)
	}
	if n := blobNames(t, s); len(n) != 0 {
		t.Errorf("blobs left: %v", n)
	}
	if problems, err := s.Check(ctx); err != nil || len(problems) != 0 {
		t.Errorf("Check after GC = %v, %v", problems, err)
	}
}

func TestGCRoots(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	inflight := ingestBytes(t, s, []byte("a layer of a pull in progress"))
	index := ingestBytes(t, s, []byte(`{"schemaVersion":2,"manifests":[]}`))
	img := buildImage(t, s, imageOpts{}, layer("x", 10))
	// A name@digest reference keeps the digest it pins (here, the index).
	if err := s.Tag(ctx, mustRef(t, "x").WithDigest(index), img.manifest); err != nil {
		t.Fatal(err)
	}
	crashed := filepath.Join(s.Root(), "ingest", "abc-crashed")
	if err := os.WriteFile(crashed, []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}

	if freed, _, err := s.GC(ctx, inflight); err != nil || freed != 0 {
		t.Fatalf("GC with root = %d, %v", freed, err)
	}
	if !s.Has(inflight) || !s.Has(index) {
		t.Error("rooted blob collected")
	}
	if _, err := os.Stat(crashed); !os.IsNotExist(err) {
		t.Error("GC left a crashed write in ingest/")
	}
	if freed, _, err := s.GC(ctx); err != nil || freed != int64(len("a layer of a pull in progress")) {
		t.Fatalf("GC without root = %d, %v", freed, err)
	}
	if s.Has(inflight) || !s.Has(index) {
		t.Error("GC without roots: wrong blobs kept")
	}
}

func TestGCWaitsForLease(t *testing.T) {
	s := newStore(t)
	release, err := s.Lease(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	blob := ingestBytes(t, s, []byte("ingested under a lease, not yet referenced"))

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, _, err := s.GC(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("GC during a lease = %v, want to wait until the deadline", err)
	}
	if !s.Has(blob) {
		t.Fatal("blob collected during a lease")
	}

	done := make(chan error, 1)
	go func() {
		_, _, err := s.GC(context.Background())
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	release()
	release() // idempotent
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("GC did not run after the lease was released")
	}
	if s.Has(blob) {
		t.Error("unreferenced blob survived GC after the lease")
	}
}

func TestGCHookError(t *testing.T) {
	ctx := context.Background()
	fail := true
	s, err := Open(t.TempDir(), WithUnusedChainsHook(func(context.Context, []digest.Digest) error {
		if fail {
			return errors.New("snapshot busy")
		}
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	img := buildImage(t, s, imageOpts{}, layer("x", 10))
	if err := s.Remove(ctx, img.manifest.String()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.GC(ctx); err == nil {
		t.Fatal("GC ignored the hook's error")
	}
	fail = false
	if _, chains, err := s.GC(ctx); err != nil || !slices.Equal(chains, slices.Sorted(slices.Values(img.chains))) {
		t.Errorf("retried GC = %v, %v; want the chains again", chains, err)
	}
}

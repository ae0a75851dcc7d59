package image

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestCheck(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	img := buildImage(t, s, imageOpts{}, layer("a", 500), layer("b", 700))
	if err := s.Tag(ctx, mustRef(t, "app"), img.manifest); err != nil {
		t.Fatal(err)
	}
	if problems, err := s.Check(ctx); err != nil || len(problems) != 0 {
		t.Fatalf("Check of a clean store = %v, %v", problems, err)
	}

	// Flip a byte of one layer, delete the other.
	p := s.BlobPath(img.layers[0])
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(s.BlobPath(img.layers[1])); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Root(), "blobs", "sha256", "stray"), nil, 0o600); err != nil {
		t.Fatal(err)
	}

	problems, err := s.Check(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := map[ProblemKind]string{}
	for _, pr := range problems {
		found[pr.Kind] = pr.Object
		t.Log(pr)
	}
	if found[ProblemCorruptBlob] != img.layers[0].String() {
		t.Errorf("corrupt layer not reported: %v", problems)
	}
	if found[ProblemMissingBlob] != img.layers[1].String() {
		t.Errorf("missing layer not reported: %v", problems)
	}
	if found[ProblemStrayFile] == "" {
		t.Errorf("stray file not reported: %v", problems)
	}
	if len(problems) != 3 {
		t.Errorf("want 3 problems, got %v", problems)
	}
}

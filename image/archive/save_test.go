package archive

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/image"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestSaveLoadRoundTrip saves two images sharing a base layer in each format
// and loads them into fresh stores: same image IDs, tags and files, each
// blob written once, and the archive reproducible.
func TestSaveLoadRoundTrip(t *testing.T) {
	for _, format := range []string{FormatDocker, FormatOCI} {
		for _, mt := range []types.MediaType{types.DockerManifestSchema2, types.OCIManifestSchema1} {
			t.Run(format+"/"+string(mt), func(t *testing.T) {
				ctx := context.Background()
				src := newStores(t)
				blobs, diffIDs := testLayers(t)
				a := putImage(t, src, mt, "a", blobs, diffIDs, "example.com/berth/test:1", "busybox:latest")
				b := putImage(t, src, mt, "b", blobs[:1], diffIDs[:1], "example.com/berth/base:2")

				var out bytes.Buffer
				refs := []string{"example.com/berth/test:1", "busybox", "example.com/berth/base:2", a.img.ShortID()}
				if err := Save(ctx, src.images, &out, refs, format); err != nil {
					t.Fatal(err)
				}
				base := "blobs/sha256/" + a.img.Layers[0].Digest.Encoded()
				if n := countOf(tarNames(t, out.Bytes()), base); n != 1 {
					t.Errorf("shared base layer written %d times", n)
				}
				var again bytes.Buffer
				if err := Save(ctx, src.images, &again, refs, format); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(out.Bytes(), again.Bytes()) {
					t.Error("saving the same images twice gave different archives")
				}

				dst := newStores(t)
				loaded, err := Load(ctx, dst.images, dst.snaps, bytes.NewReader(out.Bytes()))
				if err != nil {
					t.Fatal(err)
				}
				if len(loaded) != 2 {
					t.Fatalf("loaded %d images, want 2", len(loaded))
				}
				byID := map[string]Loaded{}
				for _, l := range loaded {
					byID[l.Image.ID()] = l
				}
				la, lb := byID[a.img.ID()], byID[b.img.ID()]
				if la.Image == nil || lb.Image == nil {
					t.Fatalf("loaded IDs %v, want %s and %s", byID, a.img.ID(), b.img.ID())
				}
				wantA := []string{"example.com/berth/test:1", "docker.io/library/busybox:latest"}
				if got := refStrings(la.Tags); !slices.Equal(sorted(got), sorted(wantA)) {
					t.Errorf("tags of a = %v, want %v", got, wantA)
				}
				if got := refStrings(lb.Tags); !slices.Equal(got, []string{"example.com/berth/base:2"}) {
					t.Errorf("tags of b = %v", got)
				}
				if format == FormatOCI && la.Image.Manifest != a.img.Manifest {
					t.Errorf("OCI round trip changed the manifest digest: %s -> %s", a.img.Manifest, la.Image.Manifest)
				}
				for _, q := range []string{"busybox", "example.com/berth/test:1"} {
					got, err := dst.images.Resolve(q)
					if err != nil || got.Config != a.img.Config {
						t.Errorf("Resolve(%s) = %v, %v", q, got, err)
					}
				}
				checkTestLayers(t, dst, la.Image)
				if lb.Image.Layers[0].ChainID != la.Image.Layers[0].ChainID {
					t.Error("the shared base layer has two snapshots")
				}

				// Loading again changes nothing and reports the same.
				again2, err := Load(ctx, dst.images, dst.snaps, bytes.NewReader(out.Bytes()))
				if err != nil || len(again2) != 2 {
					t.Fatalf("reload: %v, %d images", err, len(again2))
				}
			})
		}
	}
}

// TestSaveByIDIsUntagged: an image named by ID is saved without tags, so
// loading it reports only the ID (docker's "Loaded image ID:").
func TestSaveByIDIsUntagged(t *testing.T) {
	ctx := context.Background()
	src := newStores(t)
	blobs, diffIDs := testLayers(t)
	a := putImage(t, src, types.DockerManifestSchema2, "a", blobs, diffIDs, "busybox:latest")
	for _, format := range []string{FormatDocker, FormatOCI} {
		var out bytes.Buffer
		if err := Save(ctx, src.images, &out, []string{a.img.ID()}, format); err != nil {
			t.Fatal(err)
		}
		dst := newStores(t)
		loaded, err := Load(ctx, dst.images, dst.snaps, &out)
		if err != nil {
			t.Fatal(err)
		}
		if len(loaded) != 1 || len(loaded[0].Tags) != 0 || loaded[0].Image.Config != a.img.Config {
			t.Errorf("%s: loaded %+v, want one untagged %s", format, loaded, a.img.ID())
		}
	}
}

func TestSaveErrors(t *testing.T) {
	ctx := context.Background()
	s := newStores(t)
	blobs, diffIDs := testLayers(t)
	putImage(t, s, types.DockerManifestSchema2, "a", blobs, diffIDs, "busybox:latest")
	var out bytes.Buffer
	if err := Save(ctx, s.images, &out, []string{"busybox"}, "tar"); !errors.Is(err, ErrUnsupportedFormat) {
		t.Errorf("format tar: %v", err)
	}
	if err := Save(ctx, s.images, &out, nil, FormatDocker); !errors.Is(err, ErrNoImages) {
		t.Errorf("no refs: %v", err)
	}
	err := Save(ctx, s.images, &out, []string{"busybox", "nosuch:1"}, FormatDocker)
	if !errors.Is(err, image.ErrNotFound) || !strings.Contains(err.Error(), "nosuch") {
		t.Errorf("missing image: %v", err)
	}
	if out.Len() != 0 {
		t.Error("a failed resolve wrote output")
	}
}

// TestLoadCompressedArchive: `docker save | gzip` loads.
func TestLoadCompressedArchive(t *testing.T) {
	ctx := context.Background()
	src := newStores(t)
	blobs, diffIDs := testLayers(t)
	a := putImage(t, src, types.DockerManifestSchema2, "a", blobs, diffIDs, "busybox:latest")
	var out bytes.Buffer
	if err := Save(ctx, src.images, &out, []string{"busybox"}, FormatDocker); err != nil {
		t.Fatal(err)
	}
	dst := newStores(t)
	loaded, err := Load(ctx, dst.images, dst.snaps, bytes.NewReader(gz(t, out.Bytes())))
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded) != 1 || loaded[0].Image.Config != a.img.Config {
		t.Fatalf("loaded %+v", loaded)
	}
	checkTestLayers(t, dst, loaded[0].Image)
}

func countOf(names []string, name string) int {
	n := 0
	for _, s := range names {
		if s == name {
			n++
		}
	}
	return n
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

package registry

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	digest "github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/internal/testutil"
)

// TestDistribution drives pull and push against Debian's docker-registry:
// pull, re-pull, push to another repository (cross-mount), pull back with
// ggcr, for both Docker schema 2 and OCI images.
func TestDistribution(t *testing.T) {
	isolateDockerConfig(t)
	host := testutil.StartRegistry(t)
	ctx := context.Background()
	for _, oci := range []bool{false, true} {
		t.Run(fmt.Sprintf("oci=%v", oci), func(t *testing.T) {
			images, snaps, _ := stores(t)
			src := testImage(t, oci)
			repo := fmt.Sprintf("%s/test/img%v", host, oci)
			pushGGCR(t, repo+":v1", src)
			want := digestOf(t, src)
			ref := mustRef(t, repo+":v1")

			var prog bytes.Buffer
			img, err := Pull(ctx, images, snaps, ref, Options{Progress: &prog})
			if err != nil {
				t.Fatal(err)
			}
			if img.Manifest != want {
				t.Fatalf("manifest %s, want %s", img.Manifest, want)
			}
			if img.Platform.OS != "linux" || img.Platform.Architecture != "amd64" || len(img.Layers) != 3 {
				t.Fatalf("record: %+v", img)
			}
			// Both the tag and docker's RepoDigest name the image.
			for _, q := range []string{ref.String(), repo + "@" + want.String()} {
				got, err := images.Resolve(q)
				if err != nil || got.Manifest != want {
					t.Fatalf("resolve %s: %v %v", q, got, err)
				}
			}
			checkLayers(t, snaps.Exists, filepath.Join(snapsRoot(t, images), "committed"), img)
			msgs := progressLines(t, prog.Bytes())
			for _, s := range []string{"Pulling from test/img", "Pulling fs layer", "Downloading", "Download complete", "Pull complete", "Digest: " + want.String(), "Status: Downloaded newer image for " + ref.Familiar()} {
				if countStatus(msgs, s) == 0 {
					t.Errorf("no %q in progress:\n%s", s, prog.String())
				}
			}
			if n := countStatus(msgs, "Pull complete"); n != 3 {
				t.Errorf("%d Pull complete, want 3", n)
			}

			// Again: nothing to fetch.
			prog.Reset()
			if _, err := Pull(ctx, images, snaps, ref, Options{Progress: &prog}); err != nil {
				t.Fatal(err)
			}
			msgs = progressLines(t, prog.Bytes())
			if countStatus(msgs, "Already exists") != 3 || countStatus(msgs, "Downloading") != 0 ||
				countStatus(msgs, "Status: Image is up to date for "+ref.Familiar()) != 1 {
				t.Errorf("re-pull progress:\n%s", prog.String())
			}

			// Push to another repository of the same registry: the layers
			// mount from test/img, and the manifest keeps its digest.
			dst := mustRef(t, fmt.Sprintf("%s/other/copy%v:v2", host, oci))
			if err := images.Tag(ctx, dst, img.Manifest); err != nil {
				t.Fatal(err)
			}
			prog.Reset()
			if err := Push(ctx, images, dst, Options{Progress: &prog}); err != nil {
				t.Fatal(err)
			}
			msgs = progressLines(t, prog.Bytes())
			if n := countStatus(msgs, "Mounted from test/img"); n != 3 {
				t.Errorf("%d layers mounted, want 3:\n%s", n, prog.String())
			}
			if countStatus(msgs, fmt.Sprintf("v2: digest: %s size: ", want)) != 1 {
				t.Errorf("no final digest line:\n%s", prog.String())
			}
			pulled, err := remote.Image(mustName(t, dst.String()))
			if err != nil {
				t.Fatal(err)
			}
			if got := digestOf(t, pulled); got != want {
				t.Fatalf("pushed manifest %s, want %s", got, want)
			}
			if err := validate.Image(pulled); err != nil {
				t.Fatalf("pushed image does not validate: %v", err)
			}

			// Pushing again finds every blob in place.
			prog.Reset()
			if err := Push(ctx, images, dst, Options{Progress: &prog}); err != nil {
				t.Fatal(err)
			}
			if n := countStatus(progressLines(t, prog.Bytes()), "Layer already exists"); n != 3 {
				t.Errorf("%d layers already there, want 3:\n%s", n, prog.String())
			}

			// A fresh repository with no mount source: real uploads.
			fresh := mustRef(t, fmt.Sprintf("%s/fresh/up%v:latest", host, oci))
			if err := images.Untag(ctx, ref); err != nil {
				t.Fatal(err)
			}
			if err := images.Untag(ctx, dst); err != nil {
				t.Fatal(err)
			}
			if err := images.Untag(ctx, ref.WithDigest(want)); err != nil {
				t.Fatal(err)
			}
			if err := images.Tag(ctx, fresh, img.Manifest); err != nil {
				t.Fatal(err)
			}
			prog.Reset()
			if err := Push(ctx, images, fresh, Options{Progress: &prog}); err != nil {
				t.Fatal(err)
			}
			msgs = progressLines(t, prog.Bytes())
			if countStatus(msgs, "Pushed") != 3 || countStatus(msgs, "Pushing") == 0 {
				t.Errorf("upload progress:\n%s", prog.String())
			}
			pulled, err = remote.Image(mustName(t, fresh.String()))
			if err != nil {
				t.Fatal(err)
			}
			if got := digestOf(t, pulled); got != want {
				t.Fatalf("pushed manifest %s, want %s", got, want)
			}
			if err := validate.Image(pulled); err != nil {
				t.Fatalf("pushed image does not validate: %v", err)
			}

			// The adapter presents the stored image faithfully.
			adapted, err := ImageFromStore(images, img)
			if err != nil {
				t.Fatal(err)
			}
			if err := validate.Image(adapted); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestDistributionIndex pulls from a multi-platform index: the host's
// platform by default, another on request, and a clean failure for one the
// index lacks.
func TestDistributionIndex(t *testing.T) {
	isolateDockerConfig(t)
	host := testutil.StartRegistry(t)
	ctx := context.Background()
	amd := imageOf(t, v1.Platform{OS: "linux", Architecture: "amd64"}, true, layerOf(t, types.OCILayer, map[string]string{"arch": "amd64"}))
	arm := imageOf(t, v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}, true, layerOf(t, types.OCILayer, map[string]string{"arch": "arm64"}))
	idx := mutate.AppendManifests(mutate.IndexMediaType(empty.Index, types.OCIImageIndex),
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
	)
	r := mustName(t, host+"/multi/img:1")
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	idxDigest := digestOf(t, idx)
	ref := mustRef(t, host+"/multi/img:1")

	t.Run("amd64", func(t *testing.T) {
		images, snaps, base := stores(t)
		img, err := Pull(ctx, images, snaps, ref, Options{Platform: v1.Platform{OS: "linux", Architecture: "amd64"}})
		if err != nil {
			t.Fatal(err)
		}
		if img.Manifest != digestOf(t, amd) || img.Platform.Architecture != "amd64" {
			t.Fatalf("selected %s (%s)", img.Manifest, image.FormatPlatform(img.Platform))
		}
		checkLayers(t, snaps.Exists, filepath.Join(base, "snapshots", "committed"), img)
		// name@index-digest pins the index, which stays stored for push/save.
		if got, err := images.Resolve(ref.WithDigest(idxDigest).String()); err != nil || got.Manifest != img.Manifest {
			t.Fatalf("resolve by index digest: %v %v", got, err)
		}
		if !images.Has(idxDigest) {
			t.Fatal("index blob not kept")
		}
	})
	t.Run("arm64", func(t *testing.T) {
		images, snaps, _ := stores(t)
		img, err := Pull(ctx, images, snaps, ref, Options{Platform: v1.Platform{OS: "linux", Architecture: "arm64"}})
		if err != nil {
			t.Fatal(err)
		}
		if img.Manifest != digestOf(t, arm) {
			t.Fatalf("selected %s", img.Manifest)
		}
	})
	t.Run("missing", func(t *testing.T) {
		images, snaps, _ := stores(t)
		_, err := Pull(ctx, images, snaps, ref, Options{Platform: v1.Platform{OS: "linux", Architecture: "s390x"}})
		if !errors.Is(err, image.ErrNoMatchingPlatform) {
			t.Fatalf("got %v, want ErrNoMatchingPlatform", err)
		}
		t.Log(err)
		assertNoImages(t, images)
	})
}

// TestDistributionPullTiming measures a cold pull of a ~30 MB, three-layer
// image (incompressible content, so the bytes on the wire are real) from
// the local docker-registry.
func TestDistributionPullTiming(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	isolateDockerConfig(t)
	host := testutil.StartRegistry(t)
	var layers []v1.Layer
	for i := range 3 {
		b := make([]byte, 10<<20)
		rand.Read(b)
		layers = append(layers, layerOf(t, types.DockerLayer, map[string]string{fmt.Sprintf("data%d", i): string(b)}))
	}
	src := imageOf(t, v1.Platform{OS: "linux", Architecture: "amd64"}, false, layers...)
	pushGGCR(t, host+"/big/img:1", src)
	defer func() { streamLayers = true }()
	for _, mode := range []struct {
		parallel int
		stream   bool
	}{{3, true}, {3, false}, {1, true}, {3, true}} {
		streamLayers = mode.stream
		images, snaps, _ := stores(t)
		start := time.Now()
		img, err := Pull(context.Background(), images, snaps, mustRef(t, host+"/big/img:1"), Options{Parallel: mode.parallel})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("cold pull of %.1f MB in 3 layers, Parallel=%d, stream=%v: %v",
			float64(img.Size)/1e6, mode.parallel, mode.stream, time.Since(start).Round(time.Millisecond))
	}
}

// checkLayers verifies that every chain of img is unpacked with the files
// of testImage / the index images.
func checkLayers(t *testing.T, exists func(digest.Digest) bool, committed string, img *image.Image) {
	t.Helper()
	for i, l := range img.Layers {
		if !exists(l.ChainID) {
			t.Fatalf("layer %d: chain %s not in the snapshot store", i, l.ChainID)
		}
	}
	if len(img.Layers) != 3 {
		return
	}
	for i, f := range []struct{ name, content string }{{"etc/os-release", "ID=test\n"}, {"bin/hello", "#!/bin/sh\necho hello\n"}, {"app.txt", "three"}} {
		b, err := os.ReadFile(filepath.Join(committed, img.Layers[i].ChainID.Encoded(), "fs", f.name))
		if err != nil || string(b) != f.content {
			t.Errorf("layer %d: %s = %q, %v", i, f.name, b, err)
		}
	}
}

func snapsRoot(t *testing.T, images *image.Store) string {
	return filepath.Join(filepath.Dir(images.Root()), "snapshots")
}

func mustName(t testing.TB, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// assertNoImages fails t if a failed pull left a record or a reference.
func assertNoImages(t *testing.T, images *image.Store) {
	t.Helper()
	list, err := images.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 0 {
		t.Fatalf("failed pull left images: %+v", list)
	}
}

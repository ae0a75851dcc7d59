package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
)

func TestPutImage(t *testing.T) {
	ctx := context.Background()
	for _, mt := range []types.MediaType{types.OCIManifestSchema1, types.DockerManifestSchema2} {
		t.Run(string(mt), func(t *testing.T) {
			s := newStore(t)
			l1, l2 := layer("base", 1000), layer("top", 300)
			ti, _ := writeImageBlobs(t, s, imageOpts{manifestType: mt, arch: "arm64"}, l1, l2)
			img, err := s.PutImage(ctx, ti.manifest)
			if err != nil {
				t.Fatal(err)
			}
			if img.Manifest != ti.manifest || img.MediaType != string(mt) || img.Config != ti.config {
				t.Errorf("record = %+v", img)
			}
			if img.ID() != ti.config.String() || img.ShortID() != ti.config.Encoded()[:12] {
				t.Errorf("ID %s ShortID %s", img.ID(), img.ShortID())
			}
			if len(img.Layers) != 2 || img.Layers[0].Digest != ti.layers[0] || img.Layers[1].Size != 300 ||
				img.Layers[1].DiffID != ti.layers[1] || img.Layers[1].ChainID != ti.chains[1] {
				t.Errorf("layers = %+v", img.Layers)
			}
			if img.TopChainID() != ti.chains[1] {
				t.Errorf("TopChainID = %s", img.TopChainID())
			}
			if img.Platform.OS != "linux" || img.Platform.Architecture != "arm64" {
				t.Errorf("platform = %+v", img.Platform)
			}
			if !img.Created.Equal(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)) || img.Size != ti.blobSize {
				t.Errorf("created %v size %d (want %d)", img.Created, img.Size, ti.blobSize)
			}
			// Recording it again is harmless.
			if _, err := s.PutImage(ctx, ti.manifest); err != nil {
				t.Fatal(err)
			}
			cfg, err := s.Config(img)
			if err != nil || cfg.Architecture != "arm64" || len(cfg.RootFS.DiffIDs) != 2 {
				t.Errorf("Config = %+v, %v", cfg, err)
			}
		})
	}
}

func TestPutImageRejects(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	ti, raw := writeImageBlobs(t, s, imageOpts{}, layer("a", 100))

	edit := func(f func(m map[string]any)) digest.Digest {
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return ingestBytes(t, s, b)
	}
	cases := []struct {
		name     string
		manifest digest.Digest
		want     error
		msg      string
	}{
		{"unknown manifest type", edit(func(m map[string]any) { m["mediaType"] = "application/vnd.example.thing+json" }),
			ErrUnsupportedMediaType, "application/vnd.example.thing+json"},
		{"schema1", ingestBytes(t, s, []byte(`{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}`)),
			ErrUnsupportedMediaType, "v1+json"},
		{"index", ingestBytes(t, s, []byte(`{"schemaVersion":2,"manifests":[]}`)),
			ErrUnsupportedMediaType, "index"},
		{"artifact config", edit(func(m map[string]any) {
			m["config"].(map[string]any)["mediaType"] = "application/vnd.cncf.helm.config.v1+json"
		}), ErrUnsupportedMediaType, "helm"},
		{"unknown layer type", edit(func(m map[string]any) {
			m["layers"].([]any)[0].(map[string]any)["mediaType"] = "application/x-tar+lzma"
		}), ErrUnsupportedMediaType, "lzma"},
		{"missing layer", edit(func(m map[string]any) {
			m["layers"].([]any)[0].(map[string]any)["digest"] = digest.FromString("absent").String()
		}), ErrNotFound, digest.FromString("absent").String()},
		{"layer count", edit(func(m map[string]any) { m["layers"] = []any{} }), ErrInvalidManifest, "diff_ids"},
		{"wrong layer size", edit(func(m map[string]any) {
			m["layers"].([]any)[0].(map[string]any)["size"] = 99
		}), ErrInvalidManifest, "99"},
		{"absent manifest", digest.FromString("nothing"), ErrNotFound, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.PutImage(ctx, c.manifest)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("PutImage = %v, want %v mentioning %q", err, c.want, c.msg)
			}
		})
	}
	if l, err := s.List(); err != nil || len(l) != 0 {
		t.Errorf("List after rejected PutImages = %v, %v", l, err)
	}
	// The good one still goes in.
	if _, err := s.PutImage(ctx, ti.manifest); err != nil {
		t.Fatal(err)
	}
}

func TestTagResolveUntag(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	a := buildImage(t, s, imageOpts{label: "a"}, layer("a", 100))
	b := buildImage(t, s, imageOpts{label: "b", manifestType: types.DockerManifestSchema2}, layer("b", 100))

	if err := s.Tag(ctx, mustRef(t, "debian"), a.manifest); err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(ctx, mustRef(t, "localhost:5000/team/app:1"), a.manifest); err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(ctx, mustRef(t, "busybox:stable"), b.manifest); err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(ctx, mustRef(t, "x"), digest.FromString("no such manifest")); !errors.Is(err, ErrNotFound) {
		t.Errorf("Tag of absent image = %v", err)
	}

	for q, want := range map[string]digest.Digest{
		"debian":                            a.manifest,
		"debian:latest":                     a.manifest,
		"docker.io/library/debian:latest":   a.manifest,
		"localhost:5000/team/app:1":         a.manifest,
		"busybox:stable":                    b.manifest,
		a.config.String():                   a.manifest, // image ID
		a.config.Encoded():                  a.manifest,
		a.config.Encoded()[:12]:             a.manifest, // short ID
		"sha256:" + b.config.Encoded()[:12]: b.manifest,
		b.manifest.String():                 b.manifest, // manifest digest
		"busybox@" + b.manifest.String():    b.manifest,
	} {
		img, err := s.Resolve(q)
		if err != nil {
			t.Errorf("Resolve(%q): %v", q, err)
		} else if img.Manifest != want {
			t.Errorf("Resolve(%q) = %s, want %s", q, img.Manifest, want)
		}
	}
	for _, q := range []string{"busybox", "debian:12", "sha256:" + strings.Repeat("0", 64), "zzz"} {
		if _, err := s.Resolve(q); !errors.Is(err, ErrNotFound) {
			t.Errorf("Resolve(%q) = %v, want ErrNotFound", q, err)
		}
	}

	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	got := map[digest.Digest][]string{}
	for _, sum := range list {
		for _, r := range sum.References {
			got[sum.Image.Manifest] = append(got[sum.Image.Manifest], r.Familiar())
		}
	}
	if fmt.Sprint(got[a.manifest]) != "[debian:latest localhost:5000/team/app:1]" || fmt.Sprint(got[b.manifest]) != "[busybox:stable]" {
		t.Errorf("List refs = %v", got)
	}

	if err := s.Untag(ctx, mustRef(t, "debian")); err != nil {
		t.Fatal(err)
	}
	if err := s.Untag(ctx, mustRef(t, "debian")); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Untag = %v", err)
	}
	if _, err := s.Resolve("debian"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Resolve after Untag = %v", err)
	}
	if _, err := s.Resolve(a.config.Encoded()[:12]); err != nil {
		t.Errorf("image gone with its tag: %v", err)
	}

	// Remove by name drops the record and every other reference to it.
	if err := s.Remove(ctx, "localhost:5000/team/app:1"); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.List(); len(list) != 1 || list[0].Image.Manifest != b.manifest {
		t.Errorf("List after Remove = %+v", list)
	}
	if err := s.Remove(ctx, a.manifest.String()); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Remove = %v", err)
	}
}

func TestResolveAmbiguousShortID(t *testing.T) {
	s := newStore(t)
	// Build images until two image IDs share their first hex digit
	// (pigeonhole: at most 17 images).
	seen := map[byte]testImage{}
	var x, y testImage
	for i := 0; ; i++ {
		ti := buildImage(t, s, imageOpts{label: fmt.Sprint(i)}, layer("l", 10))
		if prev, ok := seen[ti.config.Encoded()[0]]; ok {
			x, y = prev, ti
			break
		}
		seen[ti.config.Encoded()[0]] = ti
	}
	_, err := s.Resolve(x.config.Encoded()[:1])
	if !errors.Is(err, ErrAmbiguous) {
		t.Fatalf("Resolve(1-char prefix) = %v, want ErrAmbiguous", err)
	}
	if err := s.Remove(context.Background(), x.config.Encoded()[:1]); !errors.Is(err, ErrAmbiguous) {
		t.Errorf("Remove(ambiguous) = %v", err)
	}
	// A longer prefix disambiguates.
	n := 1
	for x.config.Encoded()[:n] == y.config.Encoded()[:n] {
		n++
	}
	if img, err := s.Resolve(y.config.Encoded()[:n]); err != nil || img.Config != y.config {
		t.Errorf("Resolve(%d-char prefix) = %v, %v", n, img, err)
	}
}

func TestSameConfigTwoManifests(t *testing.T) {
	// One image in both manifest formats: two records, one image ID.
	ctx := context.Background()
	s := newStore(t)
	l := layer("shared", 50)
	oci := buildImage(t, s, imageOpts{configType: types.OCIConfigJSON}, l)
	dock := buildImage(t, s, imageOpts{manifestType: types.DockerManifestSchema2, configType: types.OCIConfigJSON}, l)
	if oci.config != dock.config || oci.manifest == dock.manifest {
		t.Fatal("test setup: want same config, different manifests")
	}
	if _, err := s.Resolve(oci.config.Encoded()[:12]); err != nil {
		t.Errorf("Resolve of a shared ID = %v", err)
	}
	if err := s.Remove(ctx, oci.config.Encoded()[:12]); err != nil {
		t.Fatal(err)
	}
	if list, _ := s.List(); len(list) != 0 {
		t.Errorf("Remove by ID left %d records", len(list))
	}
}

func TestChainIDs(t *testing.T) {
	a, b, c := digest.FromString("a"), digest.FromString("b"), digest.FromString("c")
	got := ChainIDs([]digest.Digest{a, b, c})
	ab := digest.FromString(a.String() + " " + b.String())
	abc := digest.FromString(ab.String() + " " + c.String())
	if len(got) != 3 || got[0] != a || got[1] != ab || got[2] != abc {
		t.Errorf("ChainIDs = %v", got)
	}
	if len(ChainIDs(nil)) != 0 {
		t.Error("ChainIDs(nil) not empty")
	}
}

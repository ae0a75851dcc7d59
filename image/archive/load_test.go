package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/snapshot"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
)

// configFor is an image config over layers with the given diffIDs.
func configFor(t testing.TB, label string, diffIDs []digest.Digest) []byte {
	t.Helper()
	cfg := v1.ConfigFile{
		Architecture: "amd64", OS: "linux",
		Created: v1.Time{Time: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)},
		Config:  v1.Config{Labels: map[string]string{"test": label}},
		RootFS:  v1.RootFS{Type: "layers"},
	}
	for _, d := range diffIDs {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, hashOf(d))
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// legacyImage is one image of a docker-archive made by legacyArchive.
type legacyImage struct {
	config []byte
	layers [][]byte // as stored in the archive
	tags   []string
}

// legacyArchive writes a docker-archive as docker < 25 did: "<id>/layer.tar"
// per layer (a symlink to the first copy for a repeated layer), "<id>/json"
// and "<id>/VERSION", "<hex>.json" configs, manifest.json and repositories.
// edit may change manifest.json; extra members are appended.
func legacyArchive(t testing.TB, edit func([]dockerManifestEntry), extra []entry, imgs ...legacyImage) []byte {
	t.Helper()
	var entries []entry
	var manifest []dockerManifestEntry
	first := map[digest.Digest]string{}
	for i, img := range imgs {
		cfgName := digest.FromBytes(img.config).Encoded() + ".json"
		entries = append(entries, file(cfgName, string(img.config)))
		me := dockerManifestEntry{Config: cfgName, RepoTags: img.tags, Layers: []string{}}
		for j, l := range img.layers {
			id := digest.FromString(fmt.Sprintf("%d/%d", i, j)).Encoded()
			entries = append(entries, dir(id+"/"), file(id+"/VERSION", "1.0"), file(id+"/json", `{"id":"`+id+`"}`))
			if prev, ok := first[digest.FromBytes(l)]; ok {
				entries = append(entries, symlink(id+"/layer.tar", "../"+prev+"/layer.tar"))
			} else {
				first[digest.FromBytes(l)] = id
				entries = append(entries, file(id+"/layer.tar", string(l)))
			}
			me.Layers = append(me.Layers, id+"/layer.tar")
		}
		manifest = append(manifest, me)
	}
	if edit != nil {
		edit(manifest)
	}
	raw, err := json.Marshal(manifest)
	if err != nil {
		t.Fatal(err)
	}
	entries = append(entries, file("manifest.json", string(raw)), file("repositories", "{}"))
	return makeTar(t, append(entries, extra...)...)
}

// plainLayers are the test layers, all uncompressed.
func plainLayers(t testing.TB) ([][]byte, []digest.Digest) {
	blobs, diffIDs := testLayers(t)
	l2 := makeTar(t, file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"), file("data/c", "c"))
	return [][]byte{blobs[0], l2, blobs[2]}, diffIDs
}

// TestLoadLegacyDockerArchive loads docker's pre-25 layout, with a layer
// repeated within one image and shared with a second one through symlinks.
func TestLoadLegacyDockerArchive(t *testing.T) {
	ctx := context.Background()
	layers, diffIDs := plainLayers(t)
	a := legacyImage{config: configFor(t, "a", diffIDs), layers: layers, tags: []string{"busybox:latest", "busybox:1"}}
	rep := [][]byte{layers[0], layers[1], layers[0]}
	b := legacyImage{config: configFor(t, "b", []digest.Digest{diffIDs[0], diffIDs[1], diffIDs[0]}), layers: rep}
	s := newStores(t)
	loaded, err := Load(ctx, s.images, s.snaps, bytes.NewReader(legacyArchive(t, nil, nil, a, b)))
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded) != 2 {
		t.Fatalf("loaded %d images", len(loaded))
	}
	if loaded[0].Image.Config != digest.FromBytes(a.config) || loaded[1].Image.Config != digest.FromBytes(b.config) {
		t.Errorf("IDs %s %s, want the config digests", loaded[0].Image.Config, loaded[1].Image.Config)
	}
	if got := refStrings(loaded[0].Tags); len(got) != 2 || len(loaded[1].Tags) != 0 {
		t.Errorf("tags %v and %v", got, loaded[1].Tags)
	}
	if mt := loaded[0].Image.MediaType; mt != string(types.DockerManifestSchema2) {
		t.Errorf("manifest type %s", mt)
	}
	for _, l := range loaded[0].Image.Layers {
		if l.MediaType != string(types.DockerUncompressedLayer) || l.Digest != l.DiffID {
			t.Errorf("layer %+v: want stored uncompressed as given", l)
		}
	}
	checkTestLayers(t, s, loaded[0].Image)
	if len(loaded[1].Image.Layers) != 3 || !s.snaps.Exists(loaded[1].Image.TopChainID()) {
		t.Errorf("image b: %+v", loaded[1].Image)
	}
}

// ociArchive builds OCI layouts by hand, for inputs no writer would make.
type ociArchive struct {
	t       testing.TB
	layout  string
	entries []entry
	index   v1.IndexManifest
}

func newOCI(t testing.TB) *ociArchive {
	return &ociArchive{t: t, layout: `{"imageLayoutVersion":"1.0.0"}`, index: v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}}
}

func (o *ociArchive) blob(mt types.MediaType, b []byte) v1.Descriptor {
	d := digest.FromBytes(b)
	o.entries = append(o.entries, file("blobs/sha256/"+d.Encoded(), string(b)))
	return v1.Descriptor{MediaType: mt, Size: int64(len(b)), Digest: hashOf(d)}
}

func (o *ociArchive) json(mt types.MediaType, v any) v1.Descriptor {
	b, err := json.Marshal(v)
	if err != nil {
		o.t.Fatal(err)
	}
	return o.blob(mt, b)
}

// image adds an image of layers (with layerMT) and returns its manifest
// descriptor after edit (which may be nil) changed the manifest.
func (o *ociArchive) image(layerMT types.MediaType, layers [][]byte, diffIDs []digest.Digest, edit func(*v1.Manifest)) v1.Descriptor {
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1,
		Config: o.blob(types.OCIConfigJSON, configFor(o.t, "oci", diffIDs))}
	for _, l := range layers {
		m.Layers = append(m.Layers, o.blob(layerMT, l))
	}
	if edit != nil {
		edit(&m)
	}
	return o.json(types.OCIManifestSchema1, m)
}

func (o *ociArchive) bytes() []byte {
	idx, err := json.Marshal(o.index)
	if err != nil {
		o.t.Fatal(err)
	}
	return makeTar(o.t, append([]entry{file("oci-layout", o.layout), file("index.json", string(idx))}, o.entries...)...)
}

func TestLoadOCIHandBuilt(t *testing.T) {
	ctx := context.Background()
	layers, diffIDs := plainLayers(t)
	o := newOCI(t)
	d := o.image(types.OCIUncompressedLayer, layers, diffIDs, nil)
	d.Annotations = map[string]string{annotationImageName: "docker.io/library/hand:built", annotationRefName: "built"}
	o.index.Manifests = append(o.index.Manifests, d)
	s := newStores(t)
	loaded, err := Load(ctx, s.images, s.snaps, bytes.NewReader(o.bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded) != 1 || loaded[0].Image.Manifest.String() != d.Digest.String() {
		t.Fatalf("loaded %+v", loaded)
	}
	if got := refStrings(loaded[0].Tags); len(got) != 1 || got[0] != "docker.io/library/hand:built" {
		t.Errorf("tags %v", got)
	}
	checkTestLayers(t, s, loaded[0].Image)
}

// TestLoadHostile feeds broken and hostile archives: each is refused with
// its own error, and the stores keep no image, tag, snapshot or temp file.
func TestLoadHostile(t *testing.T) {
	layers, diffIDs := plainLayers(t)
	good := legacyImage{config: configFor(t, "a", diffIDs), layers: layers, tags: []string{"victim:1"}}
	goodArchive := legacyArchive(t, nil, nil, good)
	wrong := append([]digest.Digest{}, diffIDs...)
	wrong[1] = digest.FromString("something else")
	evilLayer := makeTar(t, file("ok", "x"), file("../escape", "x"))
	evilIDs := []digest.Digest{diffIDs[0], digest.FromBytes(evilLayer)}

	oci := func(build func(o *ociArchive)) []byte {
		o := newOCI(t)
		build(o)
		return o.bytes()
	}
	setPath := func(field string, path string) func([]dockerManifestEntry) {
		return func(m []dockerManifestEntry) {
			if field == "config" {
				m[0].Config = path
			} else {
				m[0].Layers[1] = path
			}
		}
	}

	for _, c := range []struct {
		name    string
		archive []byte
		want    error
	}{
		{"member with ..", legacyArchive(t, nil, []entry{file("../evil", "x")}, good), ErrUnsafePath},
		{"member with inner ..", legacyArchive(t, nil, []entry{file("a/../../evil", "x")}, good), ErrUnsafePath},
		{"absolute member", legacyArchive(t, nil, []entry{file("/etc/evil", "x")}, good), ErrUnsafePath},
		{"symlink out of the archive", legacyArchive(t, nil, []entry{symlink("x/layer.tar", "../../etc/passwd")}, good), ErrUnsafePath},
		{"absolute symlink", legacyArchive(t, nil, []entry{symlink("y", "/etc/passwd")}, good), ErrUnsafePath},
		{"manifest path with ..", legacyArchive(t, setPath("layer", "../layer.tar"), nil, good), ErrUnsafePath},
		{"manifest names a missing layer", legacyArchive(t, setPath("layer", "nope/layer.tar"), nil, good), ErrMissingFile},
		{"manifest names a missing config", legacyArchive(t, setPath("config", "nope.json"), nil, good), ErrMissingFile},
		{"manifest names a directory", legacyArchive(t, setPath("layer", "d"), []entry{dir("d/")}, good), ErrInvalidArchive},
		{"symlink loop", legacyArchive(t, setPath("layer", "a"), []entry{symlink("a", "b"), symlink("b", "a")}, good), ErrInvalidArchive},
		{"layer diffID differs from the config", legacyArchive(t, nil, nil, legacyImage{config: configFor(t, "a", wrong), layers: layers}), ErrDigestMismatch},
		{"compressed layer diffID differs from the config", legacyArchive(t, nil, nil,
			legacyImage{config: configFor(t, "a", wrong), layers: [][]byte{layers[0], gz(t, layers[1]), layers[2]}}), ErrDigestMismatch},
		{"layer count differs from the config", legacyArchive(t, nil, nil, legacyImage{config: configFor(t, "a", diffIDs[:2]), layers: layers}), ErrInvalidArchive},
		{"hostile layer content", legacyArchive(t, nil, nil, legacyImage{config: configFor(t, "e", evilIDs), layers: [][]byte{layers[0], evilLayer}}), snapshot.ErrUnsafeEntry},
		{"second image broken", legacyArchive(t, func(m []dockerManifestEntry) { m[1].Layers[0] = "gone" }, nil,
			good, legacyImage{config: configFor(t, "b", diffIDs), layers: layers}), ErrMissingFile},
		{"bad RepoTags", legacyArchive(t, nil, nil, legacyImage{config: good.config, layers: layers, tags: []string{"UPPER:case"}}), ErrInvalidArchive},
		{"manifest.json not JSON", makeTar(t, file("manifest.json", "{nope")), ErrInvalidArchive},
		{"empty manifest.json", makeTar(t, file("manifest.json", "[]")), ErrInvalidArchive},
		{"no manifest", makeTar(t, file("hello", "world")), ErrUnknownFormat},
		{"not a tar", bytes.Repeat([]byte("not a tar "), 200), ErrInvalidArchive},
		{"truncated", goodArchive[:len(goodArchive)/2+1], ErrTruncated},
		{"truncated gzip", gz(t, goodArchive)[:len(gz(t, goodArchive))/2], ErrTruncated},

		{"OCI unknown manifest media type", oci(func(o *ociArchive) {
			d := o.image(types.OCIUncompressedLayer, layers, diffIDs, nil)
			d.MediaType = "application/vnd.example.thing+json"
			o.index.Manifests = append(o.index.Manifests, d)
		}), ErrUnsupportedMediaType},
		{"OCI unknown layer media type", oci(func(o *ociArchive) {
			o.index.Manifests = append(o.index.Manifests, o.image("application/vnd.example.layer", layers, diffIDs, nil))
		}), ErrUnsupportedMediaType},
		{"OCI unknown config media type", oci(func(o *ociArchive) {
			o.index.Manifests = append(o.index.Manifests, o.image(types.OCIUncompressedLayer, layers, diffIDs, func(m *v1.Manifest) {
				m.Config.MediaType = "application/vnd.cncf.helm.config.v1+json"
			}))
		}), ErrUnsupportedMediaType},
		{"OCI blob not matching its digest", oci(func(o *ociArchive) {
			d := o.image(types.OCIUncompressedLayer, layers, diffIDs, nil)
			o.entries = append(o.entries, file("blobs/sha256/"+d.Digest.Hex, `{"schemaVersion":2}`))
			o.index.Manifests = append(o.index.Manifests, d)
		}), ErrDigestMismatch},
		{"OCI missing blob", oci(func(o *ociArchive) {
			o.index.Manifests = append(o.index.Manifests, o.image(types.OCIUncompressedLayer, layers, diffIDs, func(m *v1.Manifest) {
				m.Layers[2].Digest = hashOf(digest.FromString("absent"))
			}))
		}), ErrMissingFile},
		{"OCI uncompressed layer diffID differs", oci(func(o *ociArchive) {
			o.index.Manifests = append(o.index.Manifests, o.image(types.OCIUncompressedLayer, layers, wrong, nil))
		}), ErrDigestMismatch},
		{"OCI layout version", oci(func(o *ociArchive) {
			o.layout = `{"imageLayoutVersion":"2.0.0"}`
			o.index.Manifests = append(o.index.Manifests, o.image(types.OCIUncompressedLayer, layers, diffIDs, nil))
		}), ErrInvalidArchive},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newStores(t)
			loaded, err := Load(context.Background(), s.images, s.snaps, bytes.NewReader(c.archive))
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if loaded != nil {
				t.Errorf("returned %+v with the error", loaded)
			}
			if strings.Count(err.Error(), "load:") != 1 {
				t.Errorf("error %q should say load once", err)
			}
			t.Log(err)
			s.checkEmpty(t)
		})
	}
}

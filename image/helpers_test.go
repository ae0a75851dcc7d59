package image

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
)

func newStore(t testing.TB) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ingestBytes(t testing.TB, s *Store, b []byte) digest.Digest {
	t.Helper()
	d, err := s.IngestBytes(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func hash(t testing.TB, d digest.Digest) v1.Hash {
	t.Helper()
	h, err := v1.NewHash(d.String())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// testImage describes an image built by buildImage. Layers are arbitrary
// bytes with an uncompressed-tar media type, so diffID == blob digest: the
// store never unpacks them.
type testImage struct {
	manifest digest.Digest
	config   digest.Digest
	layers   []digest.Digest
	chains   []digest.Digest
	blobSize int64 // manifest + config + layers
}

type imageOpts struct {
	manifestType types.MediaType // OCIManifestSchema1 (default) or DockerManifestSchema2
	configType   types.MediaType // default follows manifestType
	arch         string
	created      time.Time
	label        string // varies the config (and so the image ID)
}

// buildImage ingests layers, a config and a manifest, and records the image.
func buildImage(t testing.TB, s *Store, o imageOpts, layers ...[]byte) testImage {
	t.Helper()
	ti, err := tryBuildImage(s, o, layers...)
	if err != nil {
		t.Fatal(err)
	}
	return ti
}

// tryBuildImage is buildImage for goroutines other than the test's, which
// must not call t.Fatal.
func tryBuildImage(s *Store, o imageOpts, layers ...[]byte) (testImage, error) {
	ti, _, err := tryWriteImageBlobs(s, o, layers...)
	if err != nil {
		return ti, err
	}
	_, err = s.PutImage(context.Background(), ti.manifest)
	return ti, err
}

// writeImageBlobs stores an image's blobs without recording it, and returns
// the manifest bytes too.
func writeImageBlobs(t testing.TB, s *Store, o imageOpts, layers ...[]byte) (testImage, []byte) {
	t.Helper()
	ti, raw, err := tryWriteImageBlobs(s, o, layers...)
	if err != nil {
		t.Fatal(err)
	}
	return ti, raw
}

func tryWriteImageBlobs(s *Store, o imageOpts, layers ...[]byte) (testImage, []byte, error) {
	ctx := context.Background()
	if o.manifestType == "" {
		o.manifestType = types.OCIManifestSchema1
	}
	layerType := types.OCIUncompressedLayer
	if o.configType == "" {
		o.configType = types.OCIConfigJSON
		if o.manifestType == types.DockerManifestSchema2 {
			o.configType = types.DockerConfigJSON
		}
	}
	if o.manifestType == types.DockerManifestSchema2 {
		layerType = types.DockerUncompressedLayer
	}
	if o.arch == "" {
		o.arch = "amd64"
	}
	if o.created.IsZero() {
		o.created = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	}
	var ti testImage
	cfg := v1.ConfigFile{
		Architecture: o.arch,
		OS:           "linux",
		Created:      v1.Time{Time: o.created},
		Config:       v1.Config{Labels: map[string]string{"test": o.label}},
		RootFS:       v1.RootFS{Type: "layers"},
	}
	m := v1.Manifest{SchemaVersion: 2, MediaType: o.manifestType}
	var diffIDs []digest.Digest
	for _, l := range layers {
		d, err := s.IngestBytes(ctx, l)
		if err != nil {
			return ti, nil, err
		}
		h, err := v1.NewHash(d.String())
		if err != nil {
			return ti, nil, err
		}
		ti.layers = append(ti.layers, d)
		diffIDs = append(diffIDs, d)
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, h)
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: layerType, Size: int64(len(l)), Digest: h})
		ti.blobSize += int64(len(l))
	}
	ti.chains = ChainIDs(diffIDs)
	cfgRaw, err := json.Marshal(cfg)
	if err != nil {
		return ti, nil, err
	}
	if ti.config, err = s.IngestBytes(ctx, cfgRaw); err != nil {
		return ti, nil, err
	}
	h, err := v1.NewHash(ti.config.String())
	if err != nil {
		return ti, nil, err
	}
	m.Config = v1.Descriptor{MediaType: o.configType, Size: int64(len(cfgRaw)), Digest: h}
	raw, err := json.Marshal(m)
	if err != nil {
		return ti, nil, err
	}
	if ti.manifest, err = s.IngestBytes(ctx, raw); err != nil {
		return ti, nil, err
	}
	ti.blobSize += int64(len(cfgRaw)) + int64(len(raw))
	return ti, raw, nil
}

func mustRef(t testing.TB, s string) Reference {
	t.Helper()
	r, err := ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// dirNames lists a directory's entries.
func dirNames(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func blobNames(t testing.TB, s *Store) []string {
	return dirNames(t, filepath.Join(s.Root(), "blobs", "sha256"))
}

func ingestNames(t testing.TB, s *Store) []string {
	return dirNames(t, filepath.Join(s.Root(), "ingest"))
}

func layer(name string, size int) []byte {
	b := make([]byte, size)
	copy(b, fmt.Sprintf("layer %s ", name))
	for i := len(name) + 7; i < size; i++ {
		b[i] = byte(i * 31)
	}
	return b
}

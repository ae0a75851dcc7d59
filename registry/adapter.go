package registry

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/berth-dev/berth/image"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// ImageFromStore presents an image record of the store as a
// go-containerregistry v1.Image, so ggcr's writers (remote, tarball,
// layout) can push or save it. The manifest and config are the stored bytes,
// unchanged, so digests survive the round trip; layers stream from the blob
// files.
func ImageFromStore(images *image.Store, rec *image.Image) (v1.Image, error) {
	rawManifest, err := images.ReadBlob(rec.Manifest)
	if err != nil {
		return nil, fmt.Errorf("image %s: manifest: %w", rec.Manifest, err)
	}
	var m v1.Manifest
	if err := json.Unmarshal(rawManifest, &m); err != nil {
		return nil, fmt.Errorf("image %s: %w: %v", rec.Manifest, image.ErrInvalidManifest, err)
	}
	rawConfig, err := images.ReadBlob(rec.Config)
	if err != nil {
		return nil, fmt.Errorf("image %s: config: %w", rec.Manifest, err)
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(rawConfig))
	if err != nil {
		return nil, fmt.Errorf("image %s: config: %w: %v", rec.Manifest, image.ErrInvalidManifest, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("image %s: %w: %d layers but %d rootfs.diff_ids", rec.Manifest, image.ErrInvalidManifest, len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	mt := m.MediaType
	if mt == "" {
		mt = types.MediaType(rec.MediaType)
	}
	si := &storeImage{images: images, rawManifest: rawManifest, rawConfig: rawConfig, manifest: &m, config: cfg, mediaType: mt}
	for i, d := range m.Layers {
		si.layers = append(si.layers, &storeLayer{images: images, desc: d, diffID: cfg.RootFS.DiffIDs[i]})
	}
	return si, nil
}

type storeImage struct {
	images      *image.Store
	rawManifest []byte
	rawConfig   []byte
	manifest    *v1.Manifest
	config      *v1.ConfigFile
	mediaType   types.MediaType
	layers      []*storeLayer
}

var _ v1.Image = (*storeImage)(nil)

func (s *storeImage) Layers() ([]v1.Layer, error) {
	out := make([]v1.Layer, len(s.layers))
	for i, l := range s.layers {
		out[i] = l
	}
	return out, nil
}

func (s *storeImage) MediaType() (types.MediaType, error) { return s.mediaType, nil }
func (s *storeImage) Size() (int64, error)                { return int64(len(s.rawManifest)), nil }
func (s *storeImage) ConfigName() (v1.Hash, error)        { return s.manifest.Config.Digest, nil }
func (s *storeImage) ConfigFile() (*v1.ConfigFile, error) { return s.config.DeepCopy(), nil }
func (s *storeImage) RawConfigFile() ([]byte, error)      { return s.rawConfig, nil }
func (s *storeImage) Digest() (v1.Hash, error) {
	h, _, err := v1.SHA256(bytes.NewReader(s.rawManifest))
	return h, err
}
func (s *storeImage) Manifest() (*v1.Manifest, error) { return s.manifest.DeepCopy(), nil }
func (s *storeImage) RawManifest() ([]byte, error)    { return s.rawManifest, nil }

func (s *storeImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	for _, l := range s.layers {
		if l.desc.Digest == h {
			return l, nil
		}
	}
	// ggcr asks for the config blob through LayerByDigest when writing.
	if h == s.manifest.Config.Digest {
		return s.configLayer(), nil
	}
	return nil, fmt.Errorf("layer %s: %w", h, image.ErrNotFound)
}

func (s *storeImage) LayerByDiffID(h v1.Hash) (v1.Layer, error) {
	for _, l := range s.layers {
		if l.diffID == h {
			return l, nil
		}
	}
	return nil, fmt.Errorf("layer with diffID %s: %w", h, image.ErrNotFound)
}

// configLayer is the config blob as a layer: ggcr uploads it like one.
func (s *storeImage) configLayer() *configLayer {
	return &configLayer{desc: s.manifest.Config, raw: s.rawConfig}
}

// storeLayer is one layer blob of the store.
type storeLayer struct {
	images *image.Store
	desc   v1.Descriptor
	diffID v1.Hash
}

var _ v1.Layer = (*storeLayer)(nil)

func (l *storeLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *storeLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *storeLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *storeLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }

// Descriptor keeps the manifest's descriptor (annotations, urls) when ggcr
// rebuilds one (see partial.Descriptor).
func (l *storeLayer) Descriptor() (*v1.Descriptor, error) {
	d := l.desc
	return &d, nil
}

func (l *storeLayer) Compressed() (io.ReadCloser, error) {
	d, err := toDigest(l.desc.Digest)
	if err != nil {
		return nil, err
	}
	return l.images.Open(d)
}

// Uncompressed decompresses by magic bytes rather than media type, as the
// snapshotter does: registries in the wild mislabel layers.
func (l *storeLayer) Uncompressed() (io.ReadCloser, error) {
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(rc, 1<<20)
	magic, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			rc.Close()
			return nil, fmt.Errorf("layer %s: gzip: %w", l.desc.Digest, err)
		}
		return readCloser{zr, closers{zr, rc}}, nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br)
		if err != nil {
			rc.Close()
			return nil, fmt.Errorf("layer %s: zstd: %w", l.desc.Digest, err)
		}
		return readCloser{zr, closers{zstdCloser{zr}, rc}}, nil
	}
	return readCloser{br, rc}, nil
}

type closers []io.Closer

func (cs closers) Close() error {
	var first error
	for _, c := range cs {
		if err := c.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

type zstdCloser struct{ d *zstd.Decoder }

func (z zstdCloser) Close() error { z.d.Close(); return nil }

// configLayer is the config blob as a v1.Layer, for uploading.
type configLayer struct {
	desc v1.Descriptor
	raw  []byte
}

func (c *configLayer) Digest() (v1.Hash, error)            { return c.desc.Digest, nil }
func (c *configLayer) DiffID() (v1.Hash, error)            { return c.desc.Digest, nil }
func (c *configLayer) Size() (int64, error)                { return int64(len(c.raw)), nil }
func (c *configLayer) MediaType() (types.MediaType, error) { return c.desc.MediaType, nil }
func (c *configLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(c.raw)), nil
}
func (c *configLayer) Uncompressed() (io.ReadCloser, error) { return c.Compressed() }

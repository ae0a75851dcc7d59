package archive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/snapshot"
)

// CommitOptions describe the image Commit makes.
type CommitOptions struct {
	Config    v1.Config // the new image's run config
	CreatedBy string    // history: the command that made the layer
	Comment   string
	Author    string
	// EmptyLayer: the step changed no files; record history only (no layer), as docker's
	// builder does for metadata steps.
	EmptyLayer bool
	Ref        image.Reference // tag it (zero = untagged)
}

// commitConfig carries docker's top-level comment and author, which v1.ConfigFile lacks.
type commitConfig struct {
	v1.ConfigFile
	Comment string `json:"comment,omitempty"`
}

// Commit makes a new image: base (nil for scratch) plus one layer read from layer, an
// uncompressed tar (a container's diff), stored gzip-compressed. The layer is unpacked into
// the snapshotter so the new image runs without another unpack. On error nothing new is
// recorded or tagged.
func Commit(ctx context.Context, images *image.Store, snaps *snapshot.Store, base *image.Image, baseCfg *v1.ConfigFile, layer io.Reader, o CommitOptions) (_ *image.Image, err error) {
	release, err := images.Lease(ctx)
	if err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	defer release()
	cfg := commitConfig{}
	if baseCfg != nil {
		cfg.ConfigFile = *baseCfg.DeepCopy()
	} else {
		p := image.HostPlatform()
		cfg.Architecture, cfg.OS, cfg.Variant = p.Architecture, p.OS, p.Variant
		cfg.RootFS.Type = "layers"
	}
	var layers []v1.Descriptor
	if base != nil {
		for _, l := range base.Layers {
			layers = append(layers, v1.Descriptor{MediaType: ociLayerType(l.MediaType), Size: l.Size, Digest: hashOf(l.Digest)})
		}
	}
	var undo snapshotUndo
	defer func() {
		if err != nil {
			err = errors.Join(err, undo.run(ctx, snaps))
		}
	}()
	created := time.Now().UTC()
	if !o.EmptyLayer {
		dir, err := os.MkdirTemp(filepath.Join(images.Root(), "ingest"), "commit-")
		if err != nil {
			return nil, fmt.Errorf("commit: %w", err)
		}
		defer os.RemoveAll(dir)
		m, diffID, err := spoolCompressed(ctx, layer, filepath.Join(dir, "layer"))
		if err != nil {
			return nil, fmt.Errorf("commit: %w", err)
		}
		if err := ingestMember(ctx, images, m); err != nil {
			return nil, fmt.Errorf("commit: %w", err)
		}
		parent := digest.Digest("")
		if base != nil {
			parent = base.TopChainID()
		}
		if _, err := undo.apply(ctx, images, snaps, parent, m.digest, diffID); err != nil {
			return nil, fmt.Errorf("commit: %w", err)
		}
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, hashOf(diffID))
		layers = append(layers, v1.Descriptor{MediaType: types.OCILayer, Size: m.size, Digest: hashOf(m.digest)})
	}
	cfg.Config = o.Config
	cfg.Created = v1.Time{Time: created}
	cfg.Author = o.Author
	cfg.Comment = o.Comment
	cfg.Container = ""
	cfg.History = append(cfg.History, v1.History{Created: v1.Time{Time: created}, CreatedBy: o.CreatedBy,
		Comment: o.Comment, Author: o.Author, EmptyLayer: o.EmptyLayer})
	img, manDigest, err := recordImage(ctx, images, cfg, layers)
	if err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	undo = snapshotUndo{}
	if !o.Ref.IsZero() {
		if err := images.Tag(ctx, o.Ref, manDigest); err != nil {
			return nil, fmt.Errorf("commit: %w", err)
		}
	}
	return img, nil
}

// ociLayerType maps docker's layer media types to OCI's (same bytes, OCI manifest).
func ociLayerType(mt string) types.MediaType {
	switch types.MediaType(mt) {
	case types.DockerLayer:
		return types.OCILayer
	case types.DockerUncompressedLayer:
		return types.OCIUncompressedLayer
	}
	return types.MediaType(mt)
}

// spoolCompressed gzips the tar r into p, hashing the tar (diffID) and the blob on the way.
func spoolCompressed(ctx context.Context, r io.Reader, p string) (*member, digest.Digest, error) {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	blob := digest.SHA256.Digester()
	var size int64
	counter := writerFunc(func(b []byte) (int, error) { size += int64(len(b)); return len(b), nil })
	zw, err := gzip.NewWriterLevel(io.MultiWriter(f, blob.Hash(), counter), gzip.BestSpeed)
	if err != nil {
		return nil, "", err
	}
	diff := digest.SHA256.Digester()
	if _, err := io.CopyBuffer(io.MultiWriter(zw, diff.Hash()), ctxReader{ctx, r}, make([]byte, 256<<10)); err != nil {
		return nil, "", err
	}
	if err := zw.Close(); err != nil {
		return nil, "", err
	}
	if err := f.Close(); err != nil {
		return nil, "", err
	}
	return &member{name: "layer", kind: kindFile, file: p, digest: blob.Digest(), size: size}, diff.Digest(), nil
}

// recordImage stores cfg and an OCI manifest of it with layers, and records the image. The
// layers' blobs and snapshots must already be in place.
func recordImage(ctx context.Context, images *image.Store, cfg any, layers []v1.Descriptor) (*image.Image, digest.Digest, error) {
	cfgRaw, err := json.Marshal(cfg)
	if err != nil {
		return nil, "", err
	}
	cfgDigest, err := images.IngestBytes(ctx, cfgRaw)
	if err != nil {
		return nil, "", err
	}
	if layers == nil {
		layers = []v1.Descriptor{}
	}
	manRaw, err := json.Marshal(v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(cfgRaw)), Digest: hashOf(cfgDigest)},
		Layers:        layers,
	})
	if err != nil {
		return nil, "", err
	}
	manDigest, err := images.IngestBytes(ctx, manRaw)
	if err != nil {
		return nil, "", err
	}
	img, err := images.PutImage(ctx, manDigest)
	return img, manDigest, err
}

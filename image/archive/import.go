package archive

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/snapshot"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
)

// DefaultImportMessage is the comment and history entry of an import
// without a message: docker's, whose CLI always streams the input ("-").
const DefaultImportMessage = "Imported from -"

// importConfig is the image config Import writes: go-containerregistry's
// ConfigFile lacks docker's top-level "comment", which `docker inspect`
// shows as Comment and docker import sets to the message.
type importConfig struct {
	v1.ConfigFile
	Comment string `json:"comment,omitempty"`
}

// Import makes a one-layer image from a root file system tarball r (plain,
// gzip or zstd), as `docker import` does: a config for the host's platform
// with the layer's diffID, the creation time, message as comment and as
// the single history entry (DefaultImportMessage if empty), and changes
// applied (see ApplyChanges). It records the image and, unless ref is the
// zero Reference, tags it.
//
// A compressed input is stored as given (its media type says which), a
// plain one uncompressed: like Load, nothing is recompressed on the way in.
// The manifest is OCI: the image is new, so there is no docker format to be
// faithful to. Changes are checked before r is read; a failure leaves no
// record, tag or snapshot (the layer blob stays until GC).
func Import(ctx context.Context, images *image.Store, snaps *snapshot.Store, r io.Reader, changes []string, ref image.Reference, message string) (_ *image.Image, err error) {
	var runConfig v1.Config
	if err := ApplyChanges(&runConfig, changes); err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	if message == "" {
		message = DefaultImportMessage
	}
	release, err := images.Lease(ctx)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	defer release()
	// Spool beside the blobs, like Load, so a crash leaves nothing that
	// image.Open does not clean.
	dir, err := os.MkdirTemp(filepath.Join(images.Root(), "ingest"), "import-")
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	defer os.RemoveAll(dir)

	layer, err := spoolLayer(ctx, r, filepath.Join(dir, "layer"))
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	if err := ingestMember(ctx, images, layer.member); err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	var undo snapshotUndo
	defer func() {
		if err != nil {
			err = errors.Join(err, undo.run(ctx, snaps))
		}
	}()
	if _, err := undo.apply(ctx, images, snaps, "", layer.digest, layer.diffID); err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}

	platform := image.HostPlatform()
	created := time.Now().UTC()
	cfg := importConfig{
		ConfigFile: v1.ConfigFile{
			Architecture: platform.Architecture,
			OS:           platform.OS,
			Variant:      platform.Variant,
			Created:      v1.Time{Time: created},
			History:      []v1.History{{Created: v1.Time{Time: created}, Comment: message}},
			RootFS:       v1.RootFS{Type: "layers", DiffIDs: []v1.Hash{hashOf(layer.diffID)}},
			Config:       runConfig,
		},
		Comment: message,
	}
	img, manDigest, err := recordImage(ctx, images, cfg,
		[]v1.Descriptor{{MediaType: layer.mediaType, Size: layer.size, Digest: hashOf(layer.digest)}})
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	undo = snapshotUndo{} // the record uses the snapshot now
	if !ref.IsZero() {
		if err := images.Tag(ctx, ref, manDigest); err != nil {
			return nil, fmt.Errorf("import: %w", err)
		}
	}
	return img, nil
}

// spooledLayer is Import's input, copied to disk.
type spooledLayer struct {
	*member
	diffID    digest.Digest
	mediaType types.MediaType
}

// spoolLayer copies r to p in one pass, hashing the bytes as given (the blob
// digest) and, through the decompressor, the tar inside (the diffID).
func spoolLayer(ctx context.Context, r io.Reader, p string) (spooledLayer, error) {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return spooledLayer{}, err
	}
	defer f.Close()
	blob := digest.SHA256.Digester()
	var size int64
	counter := writerFunc(func(b []byte) (int, error) { size += int64(len(b)); return len(b), nil })
	br := bufio.NewReaderSize(io.TeeReader(ctxReader{ctx, r}, io.MultiWriter(f, blob.Hash(), counter)), 1<<20)

	magic, err := br.Peek(6)
	if err != nil && err != io.EOF {
		return spooledLayer{}, readError("read rootfs", err)
	}
	if len(magic) == 0 {
		return spooledLayer{}, fmt.Errorf("%w: empty rootfs tarball", ErrInvalidArchive)
	}
	var tarStream io.Reader = br
	mt := types.OCIUncompressedLayer
	switch {
	case bytes.HasPrefix(magic, magicGzip):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return spooledLayer{}, readError("read rootfs: gzip", err)
		}
		defer zr.Close()
		tarStream, mt = zr, types.OCILayer
	case bytes.HasPrefix(magic, magicZstd):
		zr, err := zstd.NewReader(br)
		if err != nil {
			return spooledLayer{}, readError("read rootfs: zstd", err)
		}
		defer zr.Close()
		tarStream, mt = zr, types.OCILayerZStd
	case bytes.HasPrefix(magic, []byte("BZh")), bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return spooledLayer{}, fmt.Errorf("%w: bzip2 or xz compressed rootfs (use plain, gzip or zstd)", ErrUnsupportedMediaType)
	}
	diff := digest.SHA256.Digester()
	buf := make([]byte, 256<<10)
	if _, err := io.CopyBuffer(diff.Hash(), tarStream, buf); err != nil {
		return spooledLayer{}, readError("read rootfs", err)
	}
	// Read what follows the compressed stream too: the blob is all of r.
	if _, err := io.CopyBuffer(io.Discard, br, buf); err != nil {
		return spooledLayer{}, readError("read rootfs", err)
	}
	if err := f.Close(); err != nil {
		return spooledLayer{}, err
	}
	return spooledLayer{
		member:    &member{name: "rootfs", kind: kindFile, file: p, digest: blob.Digest(), size: size},
		diffID:    diff.Digest(),
		mediaType: mt,
	}, nil
}

type writerFunc func([]byte) (int, error)

func (w writerFunc) Write(b []byte) (int, error) { return w(b) }

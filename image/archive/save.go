package archive

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/berth-dev/berth/image"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
)

// Save formats.
const (
	// FormatDocker is the docker-archive format `docker load` reads.
	FormatDocker = "docker"
	// FormatOCI is an OCI image layout, with a docker manifest.json beside
	// it as docker >= 25 writes, so `docker load` reads it too.
	FormatOCI = "oci"
)

// Save writes the images refs name (references or image IDs, as Resolve
// takes them) to w as a tar in format FormatDocker or FormatOCI. Each blob is
// written once however many images share it. A reference names its tag in
// the archive; an image given by ID is saved untagged, as docker does.
//
// Both formats store every blob under blobs/sha256/<hex> (the layout docker
// >= 25 uses for docker-archives too), layers exactly as stored: readers of
// either format accept compressed and uncompressed layers and check them
// against the config's diff_ids, so the image ID survives.
//
// The archive is deterministic (fixed owner, modes and times) so saving the
// same images twice gives the same bytes. On error w holds a partial
// archive: callers writing a file write a temporary one and rename it.
func Save(ctx context.Context, images *image.Store, w io.Writer, refs []string, format string) error {
	if format != FormatDocker && format != FormatOCI {
		return fmt.Errorf("save: %w: %q (want %q or %q)", ErrUnsupportedFormat, format, FormatDocker, FormatOCI)
	}
	if len(refs) == 0 {
		return fmt.Errorf("save: %w", ErrNoImages)
	}
	// The lease keeps GC from deleting blobs of an image removed while we
	// copy it.
	release, err := images.Lease(ctx)
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	defer release()
	entries, err := resolveSave(images, refs)
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	t := &tarOut{ctx: ctx, images: images, tw: tar.NewWriter(w), written: map[string]bool{}, buf: make([]byte, 256<<10)}
	if format == FormatOCI {
		err = t.writeOCI(entries)
	} else {
		err = t.writeDocker(entries)
	}
	if err == nil {
		err = t.tw.Close()
	}
	if err != nil {
		return fmt.Errorf("save: %w", err)
	}
	return nil
}

// saveEntry is one image to save with the tags it is saved under.
type saveEntry struct {
	img  *image.Image
	tags []image.Reference
}

func resolveSave(images *image.Store, refs []string) ([]*saveEntry, error) {
	list, err := images.List()
	if err != nil {
		return nil, err
	}
	refsOf := map[digest.Digest][]image.Reference{}
	for _, s := range list {
		refsOf[s.Image.Manifest] = s.References
	}
	var out []*saveEntry
	for _, q := range refs {
		img, err := images.Resolve(q)
		if err != nil {
			return nil, err
		}
		var e *saveEntry
		for _, have := range out {
			if have.img.Manifest == img.Manifest {
				e = have
			}
		}
		if e == nil {
			e = &saveEntry{img: img}
			out = append(out, e)
		}
		// Resolve tries names before IDs, so q named the image by a tag
		// exactly when it parses to a tag the image has.
		ref, err := image.ParseReference(q)
		if err != nil || ref.Tag() == "" || ref.Digest() != "" {
			continue
		}
		for _, r := range refsOf[img.Manifest] {
			if r.String() == ref.String() {
				e.tags = appendTag(e.tags, ref)
			}
		}
	}
	return out, nil
}

func appendTag(tags []image.Reference, ref image.Reference) []image.Reference {
	for _, t := range tags {
		if t.String() == ref.String() {
			return tags
		}
	}
	return append(tags, ref)
}

// tarOut writes archive members, each blob once.
type tarOut struct {
	ctx     context.Context
	images  *image.Store
	tw      *tar.Writer
	written map[string]bool
	buf     []byte
}

// epoch is every member's mtime: the archive's content is its blobs, and a
// fixed time makes saves reproducible.
var epoch = time.Unix(0, 0).UTC()

func (t *tarOut) dir(name string) error {
	if t.written[name] {
		return nil
	}
	t.written[name] = true
	return t.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: epoch})
}

func (t *tarOut) file(name string, b []byte) error {
	if err := t.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: epoch}); err != nil {
		return err
	}
	_, err := t.tw.Write(b)
	return err
}

// blob writes the stored blob d as blobs/sha256/<hex> (once) and returns its
// member name and size. The copy is hashed: a blob corrupted on disk must
// not leave the store looking like a valid archive.
func (t *tarOut) blob(d digest.Digest) (string, int64, error) {
	name := "blobs/sha256/" + d.Encoded()
	f, err := t.images.Open(d)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", 0, err
	}
	if t.written[name] {
		return name, fi.Size(), nil
	}
	if err := t.dir("blobs/"); err != nil {
		return "", 0, err
	}
	if err := t.dir("blobs/sha256/"); err != nil {
		return "", 0, err
	}
	if err := t.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: fi.Size(), ModTime: epoch}); err != nil {
		return "", 0, err
	}
	dg := digest.SHA256.Digester()
	if _, err := io.CopyBuffer(io.MultiWriter(t.tw, dg.Hash()), io.LimitReader(ctxReader{t.ctx, f}, fi.Size()), t.buf); err != nil {
		return "", 0, fmt.Errorf("blob %s: %w", d, err)
	}
	if got := dg.Digest(); got != d {
		return "", 0, fmt.Errorf("blob %s: %w: content hashes to %s", d, image.ErrDigestMismatch, got)
	}
	t.written[name] = true
	return name, fi.Size(), nil
}

// dockerEntry writes an image's config and layers and returns its
// manifest.json entry. Every layer must be stored: the format has no way to
// point at a layer held elsewhere that docker load would follow.
func (t *tarOut) dockerEntry(e *saveEntry) (dockerManifestEntry, error) {
	cfg, _, err := t.blob(e.img.Config)
	if err != nil {
		return dockerManifestEntry{}, fmt.Errorf("image %s: config: %w", e.img.ShortID(), err)
	}
	de := dockerManifestEntry{Config: cfg, Layers: []string{}}
	for i, l := range e.img.Layers {
		name, _, err := t.blob(l.Digest)
		if err != nil {
			return dockerManifestEntry{}, fmt.Errorf("image %s: layer %d: %w", e.img.ShortID(), i, err)
		}
		de.Layers = append(de.Layers, name)
	}
	for _, tag := range e.tags {
		de.RepoTags = append(de.RepoTags, tag.Familiar())
	}
	return de, nil
}

func (t *tarOut) writeDocker(entries []*saveEntry) error {
	var manifest []dockerManifestEntry
	for _, e := range entries {
		de, err := t.dockerEntry(e)
		if err != nil {
			return err
		}
		manifest = append(manifest, de)
	}
	raw, err := json.Marshal(manifest)
	if err != nil {
		return err
	}
	return t.file("manifest.json", raw)
}

func (t *tarOut) writeOCI(entries []*saveEntry) error {
	if err := t.file("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	index := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{}}
	var manifest []dockerManifestEntry
	for _, e := range entries {
		_, size, err := t.blob(e.img.Manifest)
		if err != nil {
			return fmt.Errorf("image %s: manifest: %w", e.img.ShortID(), err)
		}
		de, err := t.dockerEntry(e)
		if err != nil {
			return err
		}
		manifest = append(manifest, de)
		desc := v1.Descriptor{MediaType: types.MediaType(e.img.MediaType), Size: size, Digest: hashOf(e.img.Manifest)}
		if len(e.tags) == 0 {
			index.Manifests = append(index.Manifests, desc)
		}
		// One descriptor per name, annotated as containerd and docker do:
		// the full name for tools that know it, the tag for OCI ones.
		for _, tag := range e.tags {
			d := desc
			d.Annotations = map[string]string{annotationImageName: tag.String(), annotationRefName: tag.Tag()}
			index.Manifests = append(index.Manifests, d)
		}
	}
	raw, err := json.Marshal(index)
	if err != nil {
		return err
	}
	if err := t.file("index.json", raw); err != nil {
		return err
	}
	if raw, err = json.Marshal(manifest); err != nil {
		return err
	}
	return t.file("manifest.json", raw)
}

// Package archive moves images between berth's stores and tar archives:
// Load reads what `docker save` and OCI tools write, Save writes archives
// that `docker load`, podman and skopeo read, and Import makes a one-layer
// image from a root file system tarball as `docker import` does.
//
// # Formats
//
// docker-archive (docker save, podman save --format docker-archive,
// go-containerregistry's tarball package):
//
//	manifest.json          [{"Config": "<path>", "RepoTags": ["busybox:latest"],
//	                         "Layers": ["<path>", ...]}, ...]  base layer first
//	<config path>          the image config, byte for byte: its sha256 is the image ID
//	<layer paths>          layer tars, uncompressed (docker) or compressed (others);
//	                       paths are free-form: "<id>/layer.tar" (docker < 25, with
//	                       symlinks between identical layers), "blobs/sha256/<hex>"
//	                       (docker >= 25), "<hex>.tar.gz" (go-containerregistry)
//	repositories           legacy {"name": {"tag": "<v1 id>"}}; ignored
//
// The format has no manifest: Load builds a Docker schema 2 manifest for
// each image from its config and layers as found.
//
// OCI image layout (image-spec v1 layout, also what docker >= 25 saves, with
// a manifest.json alongside):
//
//	oci-layout             {"imageLayoutVersion": "1.0.0"}
//	index.json             an image index whose descriptors name image manifests
//	                       (or nested indexes), annotated with the image's name
//	blobs/sha256/<hex>     every manifest, config and layer, named by digest
//
// Names come from the descriptor annotations: io.containerd.image.name (the
// full reference, written by docker, containerd and berth) or else
// org.opencontainers.image.ref.name when it is a reference rather than a
// bare tag (skopeo's "oci-archive:x.tar:name:tag"). A bare tag such as
// "latest" names no repository, so such an image is loaded untagged.
package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/snapshot"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
)

const (
	// annotationImageName is containerd's (and docker's) full image name.
	annotationImageName = "io.containerd.image.name"
	// annotationRefName is the OCI layout's reference name, usually a tag.
	annotationRefName = "org.opencontainers.image.ref.name"
	// maxIndexDepth bounds nested indexes in an OCI layout.
	maxIndexDepth = 4
)

// Loaded is one image Load stored, with the tags it set (none for an
// untagged image, which docker reports as "Loaded image ID: sha256:...").
type Loaded struct {
	Image *image.Image
	Tags  []image.Reference
}

// plan is one image of the archive, checked against the archive but not yet
// stored. Planning every image before storing any is what makes a hostile
// or broken archive leave the stores untouched.
type plan struct {
	manifest       []byte // the manifest as it will be stored
	manifestDigest digest.Digest
	config         *member
	layers         []layerPlan
	tags           []image.Reference
}

type layerPlan struct {
	blob   *member
	diffID digest.Digest
}

func (p *plan) addTags(tags ...image.Reference) {
	for _, t := range tags {
		dup := false
		for _, have := range p.tags {
			dup = dup || have.String() == t.String()
		}
		if !dup {
			p.tags = append(p.tags, t)
		}
	}
}

// addPlan appends p, or merges its tags into an earlier plan of the same
// manifest (one image listed under several names).
func addPlan(plans []*plan, p *plan) []*plan {
	for _, q := range plans {
		if q.manifestDigest == p.manifestDigest {
			q.addTags(p.tags...)
			return plans
		}
	}
	return append(plans, p)
}

// Load reads a docker-archive or OCI image layout tar stream (plain, gzip or
// zstd) and stores every image in it: blobs ingested with their digests
// verified, layers unpacked into snaps in chain order, image records made
// and tags set. It holds an image store lease throughout so GC cannot take
// blobs between their ingest and the record that references them.
//
// Everything that can be checked without unpacking (member paths, presence
// of every named file, blob digests and sizes, uncompressed layers against
// rootfs.diff_ids, media types) is checked before anything is stored. A
// compressed layer's diffID can only be checked while unpacking it; if that
// or any unpack fails, the snapshots this call created are removed again.
// A failed load may leave unreferenced blobs, which the next GC frees and a
// rerun reuses (as after an interrupted pull); it never leaves a record or a
// tag.
func Load(ctx context.Context, images *image.Store, snaps *snapshot.Store, r io.Reader) ([]Loaded, error) {
	release, err := images.Lease(ctx)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	defer release()
	sp, err := newSpool(ctx, images, r, "load")
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	defer sp.close()

	plans, err := planArchive(sp)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	loaded, err := storePlans(ctx, images, snaps, plans)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	return loaded, nil
}

// planArchive recognizes the format and plans every image in it.
func planArchive(sp *spool) ([]*plan, error) {
	switch {
	case sp.has("oci-layout") && sp.has("index.json"):
		// Prefer the OCI view when both exist (docker >= 25): it keeps the
		// original manifests, so manifest digests survive the round trip.
		plans, err := planOCI(sp)
		if err != nil {
			return nil, err
		}
		if !sp.has("manifest.json") {
			return plans, nil
		}
		// docker's manifest.json may name images the index does not.
		entries, err := readDockerManifest(sp)
		if err != nil {
			return nil, err
		}
		for i, e := range entries {
			cfg, err := sp.lookup(e.Config)
			if err != nil {
				return nil, fmt.Errorf("manifest.json image %d: config: %w", i, err)
			}
			tags, err := parseRepoTags(e.RepoTags)
			if err != nil {
				return nil, fmt.Errorf("manifest.json image %d: %w", i, err)
			}
			for _, p := range plans {
				if p.config.digest == cfg.digest {
					p.addTags(tags...)
				}
			}
		}
		return plans, nil
	case sp.has("manifest.json"):
		return planDocker(sp)
	}
	return nil, fmt.Errorf("%w: neither manifest.json (docker-archive) nor oci-layout and index.json (OCI image layout)", ErrUnknownFormat)
}

// dockerManifestEntry is one element of a docker-archive's manifest.json.
type dockerManifestEntry struct {
	Config   string   `json:"Config"`
	RepoTags []string `json:"RepoTags"`
	Layers   []string `json:"Layers"`
}

func readDockerManifest(sp *spool) ([]dockerManifestEntry, error) {
	m, err := sp.lookup("manifest.json")
	if err != nil {
		return nil, err
	}
	raw, err := sp.readSmall(m)
	if err != nil {
		return nil, err
	}
	var entries []dockerManifestEntry
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil, fmt.Errorf("%w: manifest.json: %v", ErrInvalidArchive, err)
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("%w: manifest.json lists no image", ErrInvalidArchive)
	}
	return entries, nil
}

func planDocker(sp *spool) ([]*plan, error) {
	entries, err := readDockerManifest(sp)
	if err != nil {
		return nil, err
	}
	var plans []*plan
	for i, e := range entries {
		p, err := planDockerImage(sp, e)
		if err != nil {
			return nil, fmt.Errorf("manifest.json image %d (%s): %w", i, e.Config, err)
		}
		plans = addPlan(plans, p)
	}
	return plans, nil
}

// planDockerImage builds the Docker schema 2 manifest of a docker-archive
// image. Layers are stored as found: docker's are uncompressed tars, whose
// blob digest then equals the diffID. Keeping them so (rather than gzipping)
// costs no CPU, keeps Load as fast as the disk, and makes a later docker
// save write byte-identical layer files; compressing is left to push, where
// the bytes cross a network.
func planDockerImage(sp *spool, e dockerManifestEntry) (*plan, error) {
	if e.Config == "" {
		return nil, fmt.Errorf("%w: no Config", ErrInvalidArchive)
	}
	cfgM, cfg, err := readConfig(sp, e.Config)
	if err != nil {
		return nil, err
	}
	if len(cfg.RootFS.DiffIDs) != len(e.Layers) {
		return nil, fmt.Errorf("%w: %d layers but %d rootfs.diff_ids in the config", ErrInvalidArchive, len(e.Layers), len(cfg.RootFS.DiffIDs))
	}
	p := &plan{config: cfgM}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.DockerManifestSchema2,
		Config:        v1.Descriptor{MediaType: types.DockerConfigJSON, Size: cfgM.size, Digest: hashOf(cfgM.digest)},
		Layers:        []v1.Descriptor{},
	}
	for i, path := range e.Layers {
		lm, err := sp.lookup(path)
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		diffID, err := configDiffID(cfg, i)
		if err != nil {
			return nil, err
		}
		mt, err := sniffLayer(lm)
		if err != nil {
			return nil, fmt.Errorf("layer %d (%s): %w", i, path, err)
		}
		if mt == types.DockerUncompressedLayer && lm.digest != diffID {
			return nil, fmt.Errorf("%w: layer %d (%s) is %s but the config's rootfs.diff_ids[%d] is %s", ErrDigestMismatch, i, path, lm.digest, i, diffID)
		}
		p.layers = append(p.layers, layerPlan{blob: lm, diffID: diffID})
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: mt, Size: lm.size, Digest: hashOf(lm.digest)})
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	p.manifest, p.manifestDigest = raw, digest.FromBytes(raw)
	if p.tags, err = parseRepoTags(e.RepoTags); err != nil {
		return nil, err
	}
	return p, nil
}

// sniffLayer tells the media type of a docker-archive layer by its magic
// bytes: the format does not say, and docker load accepts either.
func sniffLayer(m *member) (types.MediaType, error) {
	f, err := os.Open(m.file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	magic := make([]byte, 6)
	n, err := io.ReadFull(f, magic)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return "", err
	}
	magic = magic[:n]
	switch {
	case bytes.HasPrefix(magic, magicGzip):
		return types.DockerLayer, nil
	case bytes.HasPrefix(magic, magicZstd):
		// Docker schema 2 has no zstd type; containerd and docker use
		// the OCI one inside Docker manifests too.
		return types.OCILayerZStd, nil
	case bytes.HasPrefix(magic, []byte("BZh")), bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return "", fmt.Errorf("%w: bzip2 or xz compressed layer", ErrUnsupportedMediaType)
	}
	return types.DockerUncompressedLayer, nil
}

func parseRepoTags(tags []string) ([]image.Reference, error) {
	var out []image.Reference
	for _, t := range tags {
		ref, err := image.ParseReference(t)
		if err != nil {
			return nil, fmt.Errorf("%w: RepoTags: %w", ErrInvalidArchive, err)
		}
		out = append(out, ref)
	}
	return out, nil
}

// readConfig reads and parses the config member at path.
func readConfig(sp *spool, path string) (*member, *v1.ConfigFile, error) {
	m, err := sp.lookup(path)
	if err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	raw, err := sp.readSmall(m)
	if err != nil {
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: config %s: %v", ErrInvalidArchive, path, err)
	}
	return m, cfg, nil
}

func configDiffID(cfg *v1.ConfigFile, i int) (digest.Digest, error) {
	d, err := digest.Parse(cfg.RootFS.DiffIDs[i].String())
	if err != nil || d.Algorithm() != digest.SHA256 {
		return "", fmt.Errorf("%w: config rootfs.diff_ids[%d] %q is not a sha256 digest", ErrInvalidArchive, i, cfg.RootFS.DiffIDs[i])
	}
	return d, nil
}

func planOCI(sp *spool) ([]*plan, error) {
	lm, err := sp.lookup("oci-layout")
	if err != nil {
		return nil, err
	}
	raw, err := sp.readSmall(lm)
	if err != nil {
		return nil, err
	}
	var layout struct {
		Version string `json:"imageLayoutVersion"`
	}
	if err := json.Unmarshal(raw, &layout); err != nil {
		return nil, fmt.Errorf("%w: oci-layout: %v", ErrInvalidArchive, err)
	}
	if !strings.HasPrefix(layout.Version, "1.") {
		return nil, fmt.Errorf("%w: oci-layout: unsupported imageLayoutVersion %q", ErrInvalidArchive, layout.Version)
	}
	im, err := sp.lookup("index.json")
	if err != nil {
		return nil, err
	}
	if raw, err = sp.readSmall(im); err != nil {
		return nil, err
	}
	var index v1.IndexManifest
	if err := json.Unmarshal(raw, &index); err != nil {
		return nil, fmt.Errorf("%w: index.json: %v", ErrInvalidArchive, err)
	}
	if len(index.Manifests) == 0 {
		return nil, fmt.Errorf("%w: index.json lists no manifest", ErrInvalidArchive)
	}
	var plans []*plan
	for i, d := range index.Manifests {
		p, err := planOCIDescriptor(sp, d, 0)
		if err == nil {
			p.tags, err = annotationTags(d.Annotations)
		}
		if err != nil {
			return nil, fmt.Errorf("index.json manifest %d (%s): %w", i, d.Digest, err)
		}
		plans = addPlan(plans, p)
	}
	return plans, nil
}

// planOCIDescriptor plans the image a descriptor names, choosing the host's
// platform from a nested index as pull does.
func planOCIDescriptor(sp *spool, d v1.Descriptor, depth int) (*plan, error) {
	mt := d.MediaType
	if mt != "" && !mt.IsImage() && !mt.IsIndex() {
		return nil, fmt.Errorf("%w: manifest media type %q", ErrUnsupportedMediaType, mt)
	}
	m, err := sp.blob(d)
	if err != nil {
		return nil, err
	}
	raw, err := sp.readSmall(m)
	if err != nil {
		return nil, err
	}
	if mt == "" {
		// The layout spec requires mediaType, but older writers omitted it:
		// tell an index from a manifest by its fields, as the store does.
		var probe struct {
			Manifests json.RawMessage `json:"manifests"`
			Config    json.RawMessage `json:"config"`
		}
		if err := json.Unmarshal(raw, &probe); err != nil {
			return nil, fmt.Errorf("%w: manifest %s: %v", ErrInvalidArchive, d.Digest, err)
		}
		switch {
		case probe.Manifests != nil:
			mt = types.OCIImageIndex
		case probe.Config != nil:
			mt = types.OCIManifestSchema1
		default:
			return nil, fmt.Errorf("%w: %s is neither an image manifest nor an index", ErrUnsupportedMediaType, d.Digest)
		}
	}
	if mt.IsIndex() {
		if depth >= maxIndexDepth {
			return nil, fmt.Errorf("%w: indexes nested more than %d deep", ErrInvalidArchive, maxIndexDepth)
		}
		child, err := image.SelectPlatform(raw, image.HostPlatform())
		if err != nil {
			return nil, fmt.Errorf("index %s: %w", d.Digest, err)
		}
		return planOCIDescriptor(sp, child, depth+1)
	}
	return planOCIImage(sp, m, raw)
}

// uncompressedLayer reports whether a layer media type is a plain tar, whose
// blob digest must then be its diffID.
func uncompressedLayer(mt types.MediaType) bool {
	switch mt {
	case types.DockerUncompressedLayer, types.OCIUncompressedLayer, types.OCIUncompressedRestrictedLayer:
		return true
	}
	return false
}

func planOCIImage(sp *spool, mm *member, raw []byte) (*plan, error) {
	var man v1.Manifest
	if err := json.Unmarshal(raw, &man); err != nil {
		return nil, fmt.Errorf("%w: manifest: %v", ErrInvalidArchive, err)
	}
	if man.SchemaVersion != 2 {
		return nil, fmt.Errorf("%w: manifest schemaVersion %d", ErrInvalidArchive, man.SchemaVersion)
	}
	if !man.Config.MediaType.IsConfig() {
		return nil, fmt.Errorf("%w: config media type %q", ErrUnsupportedMediaType, man.Config.MediaType)
	}
	for i, l := range man.Layers {
		if !l.MediaType.IsLayer() {
			return nil, fmt.Errorf("%w: layer %d media type %q", ErrUnsupportedMediaType, i, l.MediaType)
		}
	}
	cm, err := sp.blob(man.Config)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	_, cfg, err := readConfig(sp, cm.name)
	if err != nil {
		return nil, err
	}
	if len(cfg.RootFS.DiffIDs) != len(man.Layers) {
		return nil, fmt.Errorf("%w: %d layers but %d rootfs.diff_ids in the config", ErrInvalidArchive, len(man.Layers), len(cfg.RootFS.DiffIDs))
	}
	p := &plan{manifest: raw, manifestDigest: mm.digest, config: cm}
	for i, l := range man.Layers {
		lm, err := sp.blob(l)
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i, err)
		}
		diffID, err := configDiffID(cfg, i)
		if err != nil {
			return nil, err
		}
		if uncompressedLayer(l.MediaType) && lm.digest != diffID {
			return nil, fmt.Errorf("%w: layer %d (%s) is %s but the config's rootfs.diff_ids[%d] is %s", ErrDigestMismatch, i, l.MediaType, lm.digest, i, diffID)
		}
		p.layers = append(p.layers, layerPlan{blob: lm, diffID: diffID})
	}
	return p, nil
}

// blob finds the layout blob d names and checks its digest and size.
func (sp *spool) blob(d v1.Descriptor) (*member, error) {
	want, err := digest.Parse(d.Digest.String())
	if err != nil || want.Algorithm() != digest.SHA256 {
		return nil, fmt.Errorf("%w: digest %q: only sha256 blobs are supported", ErrInvalidArchive, d.Digest)
	}
	m, err := sp.lookup("blobs/sha256/" + want.Encoded())
	if err != nil {
		return nil, err
	}
	if m.digest != want {
		return nil, fmt.Errorf("%w: blob %s hashes to %s", ErrDigestMismatch, want, m.digest)
	}
	if m.size != d.Size {
		return nil, fmt.Errorf("%w: blob %s is %d bytes, its descriptor says %d", ErrInvalidArchive, want, m.size, d.Size)
	}
	return m, nil
}

// annotationTags names an index entry (see the package comment).
func annotationTags(ann map[string]string) ([]image.Reference, error) {
	if n := ann[annotationImageName]; n != "" {
		ref, err := image.ParseReference(n)
		if err != nil {
			return nil, fmt.Errorf("%w: %s annotation: %w", ErrInvalidArchive, annotationImageName, err)
		}
		return []image.Reference{ref}, nil
	}
	if n := ann[annotationRefName]; strings.ContainsAny(n, ":/@") {
		if ref, err := image.ParseReference(n); err == nil {
			return []image.Reference{ref}, nil
		}
	}
	return nil, nil
}

// storePlans stores the planned images: all blobs, then all snapshots, then
// the records and tags, so that nothing becomes visible before everything
// it needs is in place.
func storePlans(ctx context.Context, images *image.Store, snaps *snapshot.Store, plans []*plan) (_ []Loaded, err error) {
	for _, p := range plans {
		if err := ingestMember(ctx, images, p.config); err != nil {
			return nil, err
		}
		for _, l := range p.layers {
			if err := ingestMember(ctx, images, l.blob); err != nil {
				return nil, err
			}
		}
		if _, err := images.IngestBytes(ctx, p.manifest); err != nil {
			return nil, err
		}
	}

	var undo snapshotUndo
	defer func() {
		if err != nil {
			err = errors.Join(err, undo.run(ctx, snaps))
		}
	}()
	for _, p := range plans {
		var parent digest.Digest
		for _, l := range p.layers {
			if parent, err = undo.apply(ctx, images, snaps, parent, l.blob.digest, l.diffID); err != nil {
				return nil, err
			}
		}
	}
	// From here on a failure is the store's (I/O), not the archive's; the
	// snapshots stay, as records may already use them.
	undo = snapshotUndo{}

	var out []Loaded
	for _, p := range plans {
		img, err := images.PutImage(ctx, p.manifestDigest)
		if err != nil {
			return nil, err
		}
		for _, t := range p.tags {
			if err := images.Tag(ctx, t, p.manifestDigest); err != nil {
				return nil, err
			}
		}
		out = append(out, Loaded{Image: img, Tags: p.tags})
	}
	return out, nil
}

func ingestMember(ctx context.Context, images *image.Store, m *member) error {
	f, err := os.Open(m.file)
	if err != nil {
		return fmt.Errorf("%s: %w", m.name, err)
	}
	defer f.Close()
	if err := images.Ingest(ctx, m.digest, m.size, f); err != nil {
		return fmt.Errorf("%s: %w", m.name, err)
	}
	return nil
}

// snapshotUndo remembers the snapshots one operation created, to remove them
// if the operation fails before a record uses them.
type snapshotUndo struct {
	created []digest.Digest
}

// apply unpacks the stored layer blob as the child of parent and returns its
// chain ID.
func (u *snapshotUndo) apply(ctx context.Context, images *image.Store, snaps *snapshot.Store, parent, blob, diffID digest.Digest) (digest.Digest, error) {
	// A chain that exists already belongs to someone else (another image
	// or a concurrent load) and must survive our failure. The check races
	// with a concurrent Apply of the same layer only in that we might then
	// remove a snapshot the other side is about to use; its record would
	// still be valid and the layer is re-applied from its blob when needed.
	existed := snaps.Exists(image.ChainID(parent, diffID))
	f, err := images.Open(blob)
	if err != nil {
		return "", err
	}
	defer f.Close()
	chain, _, err := snaps.Apply(ctx, parent, f, snapshot.LayerDigests{Compressed: blob, DiffID: diffID})
	if err != nil {
		if errors.Is(err, snapshot.ErrDigestMismatch) {
			return "", fmt.Errorf("%w: %w", ErrDigestMismatch, err)
		}
		return "", err
	}
	if !existed {
		u.created = append(u.created, chain)
	}
	return chain, nil
}

// run removes the created snapshots, children first. It runs on failure,
// possibly because ctx was cancelled, so it ignores ctx's cancellation.
func (u *snapshotUndo) run(ctx context.Context, snaps *snapshot.Store) error {
	ctx = context.WithoutCancel(ctx)
	var errs []error
	for i := len(u.created) - 1; i >= 0; i-- {
		// In use means another image or container started relying on
		// it meanwhile: then it is no longer ours to remove.
		err := snaps.Remove(ctx, u.created[i])
		if err != nil && !errors.Is(err, snapshot.ErrNotFound) && !errors.Is(err, snapshot.ErrInUse) {
			errs = append(errs, fmt.Errorf("undo: %w", err))
		}
	}
	u.created = nil
	return errors.Join(errs...)
}

// hashOf converts a validated digest for go-containerregistry's types.
func hashOf(d digest.Digest) v1.Hash {
	return v1.Hash{Algorithm: string(d.Algorithm()), Hex: d.Encoded()}
}

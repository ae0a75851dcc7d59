// Package registry pulls images from and pushes them to OCI distribution
// registries, and manages registry credentials, on top of the image store
// (blobs and records) and the snapshot store (unpacked layers).
//
// # The pull pipeline
//
//	manifest (index -> platform manifest) -> config -> chain IDs from rootfs.diff_ids
//	layer i:  HTTP body ─tee─> image.Store.Ingest   (blob kept for push/save)
//	                      └──> snapshot.Store.Apply (verifies digest and diffID)
//
// Every layer is read from the network once. Downloads run Parallel at a
// time, but a layer can only be applied on top of its parent's chain. A
// layer whose parent chain is ready when its download starts streams the
// body into both stores at once through an io.Pipe (apply paces the
// download); a layer that would have to wait for its parent is written to
// the blob store at full network speed, and applied from that file, still
// hot in the page cache, as soon as its parent's chain exists. Layer 0 thus
// always streams, and later layers overlap their download with the apply of
// the layers below them.
//
// # Consistency
//
// The whole pull holds an image.Store lease, so GC cannot free a blob
// between its ingest and the PutImage that references it. Nothing names the
// image until PutImage and Tag at the very end: a failed or killed pull
// leaves only unreferenced blobs (GC frees them, a rerun reuses them) and
// complete snapshots of the layers it finished (a rerun reuses them; they
// are never half-written, see the snapshot package).
package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/snapshot"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
)

// Pull fetches ref (by tag or digest) into the stores and returns the image
// record. An index selects o.Platform's manifest. It tags ref and the
// digest-pinned name@digest (docker's RepoDigest), which also keeps a pulled
// index in the store for push and save.
func Pull(ctx context.Context, images *image.Store, snaps *snapshot.Store, ref image.Reference, o Options) (*image.Image, error) {
	img, err := pull(ctx, images, snaps, ref, o.withDefaults())
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref.Familiar(), err)
	}
	return img, nil
}

func pull(ctx context.Context, images *image.Store, snaps *snapshot.Store, ref image.Reference, o Options) (*image.Image, error) {
	if ref.IsZero() {
		return nil, fmt.Errorf("%w: empty reference", image.ErrInvalidReference)
	}
	prog := newProgress(o.Progress)
	c, err := newClient(ctx, ref, o, transport.PullScope)
	if err != nil {
		return nil, err
	}
	release, err := images.Lease(ctx)
	if err != nil {
		return nil, err
	}
	defer release()

	tagOrDigest := ref.Tag()
	if ref.Digest() != "" {
		tagOrDigest = ref.Digest().String()
	}
	prog.status(tagOrDigest, "Pulling from "+ref.Path())

	raw, top, ctype, err := c.fetchManifest(ctx, tagOrDigest, ref.Familiar())
	if err != nil {
		return nil, err
	}
	mt, err := manifestType(raw, ctype)
	if err != nil {
		return nil, err
	}
	manifestDigest := top
	if mt.IsIndex() {
		// Keep the index: name@index-digest then pins it (see image.GC), so
		// push and save can reproduce what the registry served.
		if _, err := images.IngestBytes(ctx, raw); err != nil {
			return nil, err
		}
		desc, err := image.SelectPlatform(raw, o.Platform)
		if err != nil {
			return nil, err
		}
		manifestDigest = digest.Digest(desc.Digest.String())
		if raw, _, ctype, err = c.fetchManifest(ctx, manifestDigest.String(), ref.Repository()+"@"+manifestDigest.String()); err != nil {
			return nil, err
		}
		if mt, err = manifestType(raw, ctype); err != nil {
			return nil, err
		}
	}
	if !mt.IsImage() || mt == types.DockerManifestSchema1 || mt == types.DockerManifestSchema1Signed {
		return nil, fmt.Errorf("%w: manifest media type %q", image.ErrUnsupportedMediaType, mt)
	}
	var m v1.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", image.ErrInvalidManifest, err)
	}

	// Config: small, needed before any layer (it holds the diffIDs).
	cfgDigest, err := toDigest(m.Config.Digest)
	if err != nil {
		return nil, err
	}
	if m.Config.Size > image.MaxReadBlob {
		return nil, fmt.Errorf("config %s: %w: %d bytes", cfgDigest, image.ErrBlobTooLarge, m.Config.Size)
	}
	if !images.Has(cfgDigest) {
		body, _, err := c.fetchBlob(ctx, cfgDigest)
		if err != nil {
			return nil, err
		}
		err = images.Ingest(ctx, cfgDigest, m.Config.Size, body)
		body.Close()
		if err != nil {
			return nil, err
		}
	}
	cfgRaw, err := images.ReadBlob(cfgDigest)
	if err != nil {
		return nil, err
	}
	var cfg v1.ConfigFile
	if err := json.Unmarshal(cfgRaw, &cfg); err != nil {
		return nil, fmt.Errorf("%w: config %s: %v", image.ErrInvalidManifest, cfgDigest, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("%w: %d layers but %d rootfs.diff_ids", image.ErrInvalidManifest, len(m.Layers), len(cfg.RootFS.DiffIDs))
	}

	jobs := make([]*layerJob, len(m.Layers))
	diffIDs := make([]digest.Digest, len(m.Layers))
	for i, l := range m.Layers {
		if !l.MediaType.IsLayer() {
			return nil, fmt.Errorf("%w: layer %d media type %q", image.ErrUnsupportedMediaType, i, l.MediaType)
		}
		d, err := toDigest(l.Digest)
		if err != nil {
			return nil, err
		}
		if diffIDs[i], err = toDigest(cfg.RootFS.DiffIDs[i]); err != nil {
			return nil, err
		}
		jobs[i] = &layerJob{blob: d, size: l.Size, diffID: diffIDs[i], done: make(chan struct{})}
	}
	for i, chain := range image.ChainIDs(diffIDs) {
		jobs[i].chain = chain
		if i > 0 {
			jobs[i].parent = jobs[i-1]
		}
	}
	lp := &layerPuller{c: c, images: images, snaps: snaps, prog: prog, slots: make(chan struct{}, o.Parallel)}
	if err := lp.run(ctx, jobs); err != nil {
		return nil, err
	}

	if _, err := images.IngestBytes(ctx, raw); err != nil {
		return nil, err
	}
	// Docker's "up to date": the name already meant this very image and
	// nothing had to be fetched.
	upToDate := false
	if prev, err := images.Resolve(ref.String()); err == nil && prev.Manifest == manifestDigest && lp.fetched.Load() == 0 {
		upToDate = true
	}
	img, err := images.PutImage(ctx, manifestDigest)
	if err != nil {
		return nil, err
	}
	if err := images.Tag(ctx, ref, manifestDigest); err != nil {
		return nil, err
	}
	if pinned := ref.WithDigest(top); pinned.String() != ref.String() {
		if err := images.Tag(ctx, pinned, manifestDigest); err != nil {
			return nil, err
		}
	}
	prog.status("", "Digest: "+top.String())
	if upToDate {
		prog.status("", "Status: Image is up to date for "+ref.Familiar())
	} else {
		prog.status("", "Status: Downloaded newer image for "+ref.Familiar())
	}
	return img, nil
}

// manifestType reads a manifest's media type from its mediaType field,
// falling back to the Content-Type header and then to its shape (OCI allows
// omitting mediaType).
func manifestType(raw []byte, contentType string) (types.MediaType, error) {
	var probe struct {
		SchemaVersion int             `json:"schemaVersion"`
		MediaType     types.MediaType `json:"mediaType"`
		Config        json.RawMessage `json:"config"`
		Manifests     json.RawMessage `json:"manifests"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return "", fmt.Errorf("%w: %v", image.ErrInvalidManifest, err)
	}
	switch {
	case probe.MediaType != "":
		return probe.MediaType, nil
	case probe.SchemaVersion == 1:
		return types.DockerManifestSchema1, nil
	case probe.Manifests != nil:
		return types.OCIImageIndex, nil
	case probe.Config != nil:
		return types.OCIManifestSchema1, nil
	}
	return types.MediaType(contentType), nil
}

func toDigest(h v1.Hash) (digest.Digest, error) {
	d, err := digest.Parse(h.String())
	if err != nil || d.Algorithm() != digest.SHA256 {
		return "", fmt.Errorf("%w: %q", image.ErrInvalidDigest, h.String())
	}
	return d, nil
}

// streamLayers enables the one-pass download+apply; off, every layer is
// applied from its blob file after download (kept so tests can compare).
var streamLayers = true

// layerJob is one layer of the pull.
type layerJob struct {
	blob   digest.Digest
	size   int64
	diffID digest.Digest
	chain  digest.Digest
	parent *layerJob     // nil for the base layer
	done   chan struct{} // closed once chain exists in the snapshot store
}

func (j *layerJob) parentChain() digest.Digest {
	if j.parent == nil {
		return ""
	}
	return j.parent.chain
}

// parentReady reports, without waiting, whether the parent chain exists.
func (j *layerJob) parentReady() bool {
	if j.parent == nil {
		return true
	}
	select {
	case <-j.parent.done:
		return true
	default:
		return false
	}
}

type layerPuller struct {
	c       *client
	images  *image.Store
	snaps   *snapshot.Store
	prog    *progress
	slots   chan struct{} // download slots (Options.Parallel)
	fetched atomic.Int64  // layers downloaded
}

// run pulls every layer; the first failure cancels the others and is
// returned once all have stopped, so nothing touches the stores after run
// returns.
func (lp *layerPuller) run(ctx context.Context, jobs []*layerJob) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// Docker announces every layer first, then reports on each.
	for _, j := range jobs {
		if lp.images.Has(j.blob) && lp.snaps.Exists(j.chain) {
			lp.prog.status(shortID(j.blob), "Already exists")
		} else {
			lp.prog.status(shortID(j.blob), "Pulling fs layer")
		}
	}
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for _, j := range jobs {
		wg.Go(func() {
			if err := lp.layer(ctx, j); err != nil {
				once.Do(func() { first = err })
				cancel(err)
			}
		})
	}
	wg.Wait()
	return first
}

// layer brings one layer's blob into the image store and its chain into the
// snapshot store, reading the network at most once.
func (lp *layerPuller) layer(ctx context.Context, j *layerJob) error {
	id := shortID(j.blob)
	haveBlob, haveChain := lp.images.Has(j.blob), lp.snaps.Exists(j.chain)
	if haveChain {
		// Children may start applying right away.
		close(j.done)
		if haveBlob {
			return nil
		}
	}
	applied := false
	if !haveBlob {
		select {
		case lp.slots <- struct{}{}:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		var err error
		applied, err = lp.download(ctx, j, streamLayers && !haveChain && j.parentReady())
		<-lp.slots
		if err != nil {
			return err
		}
		lp.fetched.Add(1)
		lp.prog.status(id, "Download complete")
	}
	if !haveChain && !applied {
		if j.parent != nil {
			select {
			case <-j.parent.done:
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		}
		if err := lp.applyFromStore(ctx, j); err != nil {
			return err
		}
	}
	if !haveChain {
		lp.prog.status(id, "Pull complete")
		close(j.done)
	}
	return nil
}

// download fetches the blob into the image store and, if apply is set, in
// the same pass into the snapshot store. It reports whether it applied.
func (lp *layerPuller) download(ctx context.Context, j *layerJob, apply bool) (bool, error) {
	id := shortID(j.blob)
	body, _, err := lp.c.fetchBlob(ctx, j.blob)
	if err != nil {
		return false, err
	}
	defer body.Close()
	src := &countingReader{r: body, p: lp.prog, id: id, status: "Downloading", total: j.size}
	if !apply {
		if err := lp.images.Ingest(ctx, j.blob, j.size, src); err != nil {
			return false, err
		}
		lp.prog.status(id, "Verifying Checksum")
		return false, nil
	}

	// One stream, two consumers: Ingest reads the body through a tee whose
	// other side is the pipe Apply reads. Closing either end with an error
	// fails the other, so neither can block forever on a dead partner.
	pr, pw := io.Pipe()
	tee := io.TeeReader(src, pw)
	applyErr := make(chan error, 1)
	go func() {
		_, _, err := lp.snaps.Apply(ctx, j.parentChain(), pr, snapshot.LayerDigests{Compressed: j.blob, DiffID: j.diffID})
		if err == nil {
			// Apply returns without reading when another pull committed
			// the chain meanwhile; keep the tee flowing for Ingest.
			_, err = io.Copy(io.Discard, pr)
		}
		if err != nil {
			pr.CloseWithError(err)
		} else {
			pr.Close()
		}
		applyErr <- err
	}()
	ierr := lp.images.Ingest(ctx, j.blob, j.size, tee)
	if ierr == nil {
		// Ingest returns without reading when the blob appeared meanwhile
		// (a concurrent pull); the apply still needs the bytes.
		_, ierr = io.Copy(io.Discard, tee)
	}
	pw.CloseWithError(ierr) // nil: EOF for the apply side
	aerr := <-applyErr
	switch {
	case errors.Is(ierr, image.ErrDigestMismatch) || errors.Is(ierr, image.ErrSizeMismatch):
		// The blob is not what the manifest names: that is the diagnosis,
		// whatever the unpacker made of the wrong bytes.
		return false, ierr
	case ierr != nil && (aerr == nil || errors.Is(aerr, ierr)):
		return false, ierr
	case aerr != nil:
		return false, aerr
	}
	lp.prog.status(id, "Verifying Checksum")
	return true, nil
}

// applyFromStore unpacks a layer whose blob is already in the image store.
func (lp *layerPuller) applyFromStore(ctx context.Context, j *layerJob) error {
	f, err := lp.images.Open(j.blob)
	if err != nil {
		return err
	}
	defer f.Close()
	var size int64 = j.size
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	r := &countingReader{r: f, p: lp.prog, id: shortID(j.blob), status: "Extracting", total: size}
	lp.prog.bytes(r.id, "Extracting", 0, size)
	_, _, err = lp.snaps.Apply(ctx, j.parentChain(), r, snapshot.LayerDigests{Compressed: j.blob, DiffID: j.diffID})
	return err
}

package registry

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/berth-dev/berth/image"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
)

// Push uploads the image ref resolves to in the store, under ref's
// repository and tag (or digest). The manifest and config are pushed as
// stored, byte for byte, so the registry's digest equals the local one.
// Blobs the repository already has are skipped; a blob that an image of
// another repository on the same registry uses is cross-mounted (the
// registry falls back to an upload if it cannot mount).
func Push(ctx context.Context, images *image.Store, ref image.Reference, o Options) error {
	if err := push(ctx, images, ref, o.withDefaults()); err != nil {
		return fmt.Errorf("push %s: %w", ref.Familiar(), err)
	}
	return nil
}

func push(ctx context.Context, images *image.Store, ref image.Reference, o Options) error {
	rec, err := images.Resolve(ref.String())
	if err != nil {
		return err
	}
	img, err := ImageFromStore(images, rec)
	if err != nil {
		return err
	}
	si := img.(*storeImage)
	prog := newProgress(o.Progress)
	c, err := newClient(ctx, ref, o, transport.PushScope)
	if err != nil {
		return err
	}
	pusher, err := remote.NewPusher(
		remote.WithAuth(c.auth),
		remote.WithTransport(baseTransport()),
		remote.WithContext(ctx),
		remote.WithRetryBackoff(retryBackoff),
		remote.WithUserAgent(userAgent),
	)
	if err != nil {
		return err
	}
	prog.status("", "The push refers to repository ["+ref.Repository()+"]")

	mounts := mountSources(images, ref)
	// Docker lists layers top first; duplicates are pushed once.
	var layers []*storeLayer
	seen := map[v1.Hash]bool{}
	for _, l := range slices.Backward(si.layers) {
		if !seen[l.desc.Digest] && l.desc.MediaType.IsDistributable() {
			seen[l.desc.Digest] = true
			layers = append(layers, l)
			prog.status(shortID(digest.Digest(l.desc.Digest.String())), "Preparing")
		}
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	slots := make(chan struct{}, o.Parallel)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	fail := func(err error) {
		once.Do(func() { first = err })
		cancel(err)
	}
	for _, l := range layers {
		wg.Go(func() {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				fail(context.Cause(ctx))
				return
			}
			defer func() { <-slots }()
			if err := pushLayer(ctx, c, pusher, prog, l, mounts[l.desc.Digest]); err != nil {
				fail(err)
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}

	cfg := si.configLayer()
	if err := pusher.Upload(ctx, c.repo, cfg); err != nil {
		return classify(err, c.host, "config "+cfg.desc.Digest.String(), true)
	}
	target, err := pushTarget(c.repo, ref)
	if err != nil {
		return err
	}
	m := manifestOnly{raw: si.rawManifest, mediaType: si.mediaType}
	if err := pusher.Push(ctx, target, m); err != nil {
		return classify(err, c.host, ref.Familiar(), false)
	}
	dgst := digest.FromBytes(si.rawManifest)
	tag := ref.Tag()
	if ref.Digest() != "" {
		tag = ref.Digest().String()
	}
	prog.status("", fmt.Sprintf("%s: digest: %s size: %d", tag, dgst, len(si.rawManifest)))
	return nil
}

func pushTarget(repo name.Repository, ref image.Reference) (name.Reference, error) {
	if ref.Digest() != "" {
		return repo.Digest(ref.Digest().String()), nil
	}
	return repo.Tag(ref.Tag()), nil
}

// manifestOnly makes Pusher.Push write just the manifest: the blobs are
// already up, and a v1.Image would make it check them all again.
type manifestOnly struct {
	raw       []byte
	mediaType types.MediaType
}

func (m manifestOnly) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m manifestOnly) MediaType() (types.MediaType, error) { return m.mediaType, nil }

// pushLayer uploads one layer unless the repository has it, reporting
// docker's per-layer statuses.
func pushLayer(ctx context.Context, c *client, pusher *remote.Pusher, prog *progress, l *storeLayer, from *name.Repository) error {
	d := digest.Digest(l.desc.Digest.String())
	id := shortID(d)
	exists, err := c.headBlob(ctx, d)
	if err != nil {
		return err
	}
	if exists {
		prog.status(id, "Layer already exists")
		return nil
	}
	pl := &progressLayer{storeLayer: l, prog: prog, id: id}
	var layer v1.Layer = pl
	if from != nil {
		layer = &remote.MountableLayer{Layer: pl, Reference: from.Digest(d.String())}
	}
	if err := pusher.Upload(ctx, c.repo, layer); err != nil {
		return classify(err, c.host, d.String(), true)
	}
	switch {
	case pl.opened.Load():
		prog.status(id, "Pushed")
	case from != nil:
		// The upload never read the blob: the registry mounted it.
		prog.status(id, "Mounted from "+from.RepositoryStr())
	default:
		prog.status(id, "Layer already exists")
	}
	return nil
}

// mountSources maps each layer digest to a repository on ref's registry
// that an image using it is tagged in, as candidates for a cross-repository
// mount (docker keeps the same knowledge in its distribution metadata).
func mountSources(images *image.Store, ref image.Reference) map[v1.Hash]*name.Repository {
	out := map[v1.Hash]*name.Repository{}
	list, err := images.List()
	if err != nil {
		return out // mounting is an optimisation only
	}
	for _, s := range list {
		for _, r := range s.References {
			if r.Domain() != ref.Domain() || r.Repository() == ref.Repository() {
				continue
			}
			repo, err := name.NewRepository(r.Repository())
			if err != nil {
				continue
			}
			for _, l := range s.Image.Layers {
				h, err := v1.NewHash(l.Digest.String())
				if err != nil {
					continue
				}
				if _, ok := out[h]; !ok {
					out[h] = &repo
				}
			}
		}
	}
	return out
}

// progressLayer reports "Pushing" progress as ggcr reads the blob, and
// records whether it was read at all (not read: skipped or mounted).
type progressLayer struct {
	*storeLayer
	prog   *progress
	id     string
	opened atomic.Bool
}

func (p *progressLayer) Compressed() (io.ReadCloser, error) {
	rc, err := p.storeLayer.Compressed()
	if err != nil {
		return nil, err
	}
	p.opened.Store(true)
	return readCloser{&countingReader{r: rc, p: p.prog, id: p.id, status: "Pushing", total: p.desc.Size}, rc}, nil
}

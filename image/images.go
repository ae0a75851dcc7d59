package image

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// Layer is one layer of an image record.
type Layer struct {
	Digest    digest.Digest `json:"digest"`    // the blob as stored/distributed (compressed)
	Size      int64         `json:"size"`      // blob size in bytes
	MediaType string        `json:"mediaType"` // tar, tar+gzip, tar+zstd, ...
	DiffID    digest.Digest `json:"diffID"`    // digest of the uncompressed tar (config rootfs.diff_ids)
	ChainID   digest.Digest `json:"chainID"`   // snapshot key of this layer and all below it
}

// Image is the record of one image manifest in the store.
type Image struct {
	Manifest  digest.Digest `json:"manifest"`
	MediaType string        `json:"mediaType"`
	// Config is the config blob's digest, which is also docker's image ID.
	Config   digest.Digest `json:"config"`
	Layers   []Layer       `json:"layers"`
	Platform v1.Platform   `json:"platform"`
	// Created is the image's creation time from its config (docker's CREATED).
	Created time.Time `json:"created"`
	// Size is the stored size: manifest, config and layer blobs (compressed).
	Size int64 `json:"size"`
}

// ID is docker's image ID: the config digest.
func (img *Image) ID() string { return img.Config.String() }

// ShortID is the 12-hex form of ID that docker prints.
func (img *Image) ShortID() string { return img.Config.Encoded()[:12] }

// TopChainID is the chain ID of the whole layer stack, "" for no layers.
func (img *Image) TopChainID() digest.Digest {
	if len(img.Layers) == 0 {
		return ""
	}
	return img.Layers[len(img.Layers)-1].ChainID
}

// ImageSummary is an image with the references that point at it.
type ImageSummary struct {
	Image      Image
	References []Reference // sorted; empty for a dangling (<none>) image
}

// refRecord is the value of refs/<reference>.
type refRecord struct {
	Manifest  digest.Digest `json:"manifest"`
	MediaType string        `json:"mediaType"`
	Created   time.Time     `json:"created"`
}

// manifestProbe reads the fields that tell manifests from indexes, because
// OCI lets both omit mediaType.
type manifestProbe struct {
	SchemaVersion int             `json:"schemaVersion"`
	MediaType     string          `json:"mediaType"`
	Config        json.RawMessage `json:"config"`
	Manifests     json.RawMessage `json:"manifests"`
}

// PutImage records the image whose manifest (OCI or Docker schema 2) is the
// blob manifest. Its config and every distributable layer must already be in
// the store; an unknown manifest, config or layer media type is
// ErrUnsupportedMediaType. Recording an existing image again is harmless.
func (s *Store) PutImage(ctx context.Context, manifest digest.Digest) (*Image, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	// Shared lock: GC must not delete the blobs we check before the record
	// that makes them reachable is committed.
	unlock, err := s.lock(ctx, lockShared)
	if err != nil {
		return nil, fmt.Errorf("put image %s: %w", manifest, err)
	}
	defer unlock()

	img, err := s.buildRecord(manifest)
	if err != nil {
		return nil, fmt.Errorf("put image %s: %w", manifest, err)
	}
	if err := s.update(func(tx *bolt.Tx) error {
		return putJSON(tx.Bucket(bucketImages), manifest.String(), img)
	}); err != nil {
		return nil, fmt.Errorf("put image %s: %w", manifest, err)
	}
	return img, nil
}

// buildRecord reads and checks a manifest and its config; blob I/O happens
// here, outside any database transaction.
func (s *Store) buildRecord(manifest digest.Digest) (*Image, error) {
	raw, err := s.ReadBlob(manifest)
	if err != nil {
		return nil, err
	}
	var probe manifestProbe
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidManifest, err)
	}
	mt := types.MediaType(probe.MediaType)
	if mt == "" {
		switch {
		case probe.SchemaVersion == 1:
			mt = types.DockerManifestSchema1
		case probe.Manifests != nil:
			mt = types.OCIImageIndex
		case probe.Config != nil:
			mt = types.OCIManifestSchema1
		}
	}
	switch {
	case mt.IsImage():
	case mt.IsIndex():
		return nil, fmt.Errorf("%w: %s is an image index: select a platform's manifest first", ErrUnsupportedMediaType, mt)
	default:
		return nil, fmt.Errorf("%w: manifest media type %q", ErrUnsupportedMediaType, mt)
	}
	var m v1.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidManifest, err)
	}
	if m.SchemaVersion != 2 {
		return nil, fmt.Errorf("%w: schemaVersion %d", ErrInvalidManifest, m.SchemaVersion)
	}
	if !m.Config.MediaType.IsConfig() {
		return nil, fmt.Errorf("%w: config media type %q", ErrUnsupportedMediaType, m.Config.MediaType)
	}
	cfgDigest, err := hashDigest(m.Config.Digest)
	if err != nil {
		return nil, fmt.Errorf("%w: config: %v", ErrInvalidManifest, err)
	}
	cfgRaw, err := s.ReadBlob(cfgDigest)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if int64(len(cfgRaw)) != m.Config.Size {
		return nil, fmt.Errorf("%w: config %s is %d bytes, manifest says %d", ErrInvalidManifest, cfgDigest, len(cfgRaw), m.Config.Size)
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(cfgRaw))
	if err != nil {
		return nil, fmt.Errorf("%w: config %s: %v", ErrInvalidManifest, cfgDigest, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("%w: %d layers but %d rootfs.diff_ids", ErrInvalidManifest, len(m.Layers), len(cfg.RootFS.DiffIDs))
	}

	img := &Image{
		Manifest:  manifest,
		MediaType: string(mt),
		Config:    cfgDigest,
		Layers:    make([]Layer, len(m.Layers)),
		Platform: v1.Platform{
			OS:           cfg.OS,
			Architecture: cfg.Architecture,
			Variant:      cfg.Variant,
			OSVersion:    cfg.OSVersion,
		},
		Created: cfg.Created.Time,
		Size:    int64(len(raw)) + int64(len(cfgRaw)),
	}
	var parent digest.Digest
	for i, l := range m.Layers {
		if !l.MediaType.IsLayer() {
			return nil, fmt.Errorf("%w: layer %d media type %q", ErrUnsupportedMediaType, i, l.MediaType)
		}
		ld, err := hashDigest(l.Digest)
		if err != nil {
			return nil, fmt.Errorf("%w: layer %d: %v", ErrInvalidManifest, i, err)
		}
		diffID, err := hashDigest(cfg.RootFS.DiffIDs[i])
		if err != nil {
			return nil, fmt.Errorf("%w: diff_id %d: %v", ErrInvalidManifest, i, err)
		}
		// Non-distributable layers are fetched from their URLs by whoever
		// needs them, so they may legitimately be absent.
		fi, err := os.Stat(s.BlobPath(ld))
		switch {
		case err == nil && fi.Size() != l.Size:
			return nil, fmt.Errorf("%w: layer %s is %d bytes, manifest says %d", ErrInvalidManifest, ld, fi.Size(), l.Size)
		case os.IsNotExist(err) && l.MediaType.IsDistributable():
			return nil, fmt.Errorf("layer %s: %w", ld, ErrNotFound)
		case err != nil && !os.IsNotExist(err):
			return nil, fmt.Errorf("layer %s: %w", ld, err)
		}
		parent = ChainID(parent, diffID)
		img.Layers[i] = Layer{Digest: ld, Size: l.Size, MediaType: string(l.MediaType), DiffID: diffID, ChainID: parent}
		img.Size += l.Size
	}
	return img, nil
}

func hashDigest(h v1.Hash) (digest.Digest, error) {
	d := digest.Digest(h.String())
	return d, validateDigest(d)
}

// Tag points ref at the image recorded for manifest, replacing whatever ref
// pointed at before (that image stays, possibly dangling, as in docker).
func (s *Store) Tag(ctx context.Context, ref Reference, manifest digest.Digest) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if ref.IsZero() {
		return fmt.Errorf("tag: %w: empty reference", ErrInvalidReference)
	}
	// Shared lock: a name@digest reference makes its digest a GC root, so
	// GC must not be deciding what is reachable while we add one.
	unlock, err := s.lock(ctx, lockShared)
	if err != nil {
		return fmt.Errorf("tag %s: %w", ref, err)
	}
	defer unlock()
	return s.update(func(tx *bolt.Tx) error {
		var img Image
		found, err := getJSON(tx.Bucket(bucketImages), manifest.String(), &img)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("tag %s: image %s: %w", ref, manifest, ErrNotFound)
		}
		return putJSON(tx.Bucket(bucketRefs), ref.String(), refRecord{
			Manifest: manifest, MediaType: img.MediaType, Created: time.Now().UTC(),
		})
	})
}

// Untag removes ref. The image record stays even if this was its last
// reference; callers wanting docker's rmi behaviour Remove it then.
func (s *Store) Untag(ctx context.Context, ref Reference) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRefs)
		if b.Get([]byte(ref.String())) == nil {
			return fmt.Errorf("untag %s: %w", ref.Familiar(), ErrNotFound)
		}
		return b.Delete([]byte(ref.String()))
	})
}

// Resolve finds an image by reference ("debian", "x/y:tag", "x@sha256:..."),
// by image ID (config digest: full, 64 hex, or a unique hex prefix, with or
// without "sha256:", as docker accepts), or by manifest digest. Names are
// tried before ID prefixes, as in docker. A prefix matching several images is
// ErrAmbiguous; nothing matching is ErrNotFound.
func (s *Store) Resolve(query string) (*Image, error) {
	var imgs []*Image
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		imgs, err = resolveTx(tx, query)
		return err
	})
	if err != nil {
		return nil, err
	}
	return imgs[0], nil
}

// resolveTx returns every record query names: one, or several when they
// share a config (one image ID, several manifests), newest first.
func resolveTx(tx *bolt.Tx, query string) ([]*Image, error) {
	images := tx.Bucket(bucketImages)
	byDigest := func(d digest.Digest) ([]*Image, error) {
		var img Image
		if found, err := getJSON(images, d.String(), &img); err != nil || found {
			return []*Image{&img}, err
		}
		return matchImages(tx, func(img *Image) bool { return img.Config == d })
	}
	if d, err := digest.Parse(query); err == nil {
		return nonEmpty(byDigest(d))(query)
	}
	if isHex(query, 64, 64) {
		return nonEmpty(byDigest(digest.NewDigestFromEncoded(digest.SHA256, query)))(query)
	}
	if ref, err := ParseReference(query); err == nil {
		var rr refRecord
		found, err := getJSON(tx.Bucket(bucketRefs), ref.String(), &rr)
		if err != nil {
			return nil, err
		}
		if found {
			var img Image
			if ok, err := getJSON(images, rr.Manifest.String(), &img); err != nil || !ok {
				return nil, errors.Join(err, fmt.Errorf("image %s (of %s): %w", rr.Manifest, ref.Familiar(), ErrNotFound))
			}
			return []*Image{&img}, nil
		}
		if ref.Digest() != "" {
			var img Image
			if ok, err := getJSON(images, ref.Digest().String(), &img); err != nil || ok {
				return []*Image{&img}, err
			}
		}
	}
	if prefix := strings.TrimPrefix(query, "sha256:"); isHex(prefix, 1, 64) {
		imgs, err := matchImages(tx, func(img *Image) bool { return strings.HasPrefix(img.Config.Encoded(), prefix) })
		if err != nil {
			return nil, err
		}
		for _, img := range imgs[1:] {
			if img.Config != imgs[0].Config {
				return nil, fmt.Errorf("%w: %q matches %s and %s", ErrAmbiguous, query, imgs[0].ShortID(), img.ShortID())
			}
		}
		return nonEmpty(imgs, nil)(query)
	}
	return nil, fmt.Errorf("no such image: %s: %w", query, ErrNotFound)
}

// nonEmpty turns an empty result into ErrNotFound for query.
func nonEmpty(imgs []*Image, err error) func(query string) ([]*Image, error) {
	return func(query string) ([]*Image, error) {
		if err == nil && len(imgs) == 0 {
			err = fmt.Errorf("no such image: %s: %w", query, ErrNotFound)
		}
		return imgs, err
	}
}

// matchImages scans the image records (there are few: a full scan is
// cheaper than keeping a second index consistent) and returns the matches,
// newest first.
func matchImages(tx *bolt.Tx, match func(*Image) bool) ([]*Image, error) {
	var out []*Image
	err := tx.Bucket(bucketImages).ForEach(func(k, v []byte) error {
		img := new(Image)
		if err := json.Unmarshal(v, img); err != nil {
			return fmt.Errorf("decode images/%s: %w", k, err)
		}
		if match(img) {
			out = append(out, img)
		}
		return nil
	})
	sortImages(out)
	return out, err
}

func sortImages(imgs []*Image) {
	sort.SliceStable(imgs, func(i, j int) bool {
		if !imgs[i].Created.Equal(imgs[j].Created) {
			return imgs[i].Created.After(imgs[j].Created)
		}
		return imgs[i].Manifest < imgs[j].Manifest
	})
}

// List returns every image with its references, newest first.
func (s *Store) List() ([]ImageSummary, error) {
	var imgs []*Image
	byManifest := map[digest.Digest][]Reference{}
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		if imgs, err = matchImages(tx, func(*Image) bool { return true }); err != nil {
			return err
		}
		return tx.Bucket(bucketRefs).ForEach(func(k, v []byte) error {
			var rr refRecord
			if err := json.Unmarshal(v, &rr); err != nil {
				return fmt.Errorf("decode refs/%s: %w", k, err)
			}
			ref, err := ParseReference(string(k))
			if err != nil {
				return fmt.Errorf("refs/%s: %w", k, err)
			}
			byManifest[rr.Manifest] = append(byManifest[rr.Manifest], ref)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	out := make([]ImageSummary, len(imgs))
	for i, img := range imgs {
		refs := byManifest[img.Manifest]
		sort.Slice(refs, func(a, b int) bool { return refs[a].String() < refs[b].String() })
		out[i] = ImageSummary{Image: *img, References: refs}
	}
	return out, nil
}

// Config reads and parses the image's config blob.
func (s *Store) Config(img *Image) (*v1.ConfigFile, error) {
	raw, err := s.ReadBlob(img.Config)
	if err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("image config %s: %w: %v", img.Config, ErrInvalidManifest, err)
	}
	return cfg, nil
}

// Remove drops the image records id names (see Resolve; an image ID names
// every manifest with that config) and every reference to them, in one
// transaction. Blobs stay until GC. Callers check container use first.
func (s *Store) Remove(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := s.update(func(tx *bolt.Tx) error {
		imgs, err := resolveTx(tx, id)
		if err != nil {
			return err
		}
		gone := map[digest.Digest]bool{}
		released := tx.Bucket(bucketReleased)
		for _, img := range imgs {
			gone[img.Manifest] = true
			if err := tx.Bucket(bucketImages).Delete([]byte(img.Manifest.String())); err != nil {
				return err
			}
			// Remember the chains so GC can tell the snapshotter which
			// ones no image uses any more.
			for _, l := range img.Layers {
				if err := released.Put([]byte(l.ChainID.String()), nil); err != nil {
					return err
				}
			}
		}
		refs := tx.Bucket(bucketRefs)
		var drop [][]byte
		if err := refs.ForEach(func(k, v []byte) error {
			var rr refRecord
			if err := json.Unmarshal(v, &rr); err != nil {
				return fmt.Errorf("decode refs/%s: %w", k, err)
			}
			if gone[rr.Manifest] {
				drop = append(drop, append([]byte(nil), k...))
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range drop {
			if err := refs.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("remove image %s: %w", id, err)
	}
	return nil
}

// UsedChains returns the chain ID of every layer of every image, for a
// snapshotter reconciling its directories against the store.
func (s *Store) UsedChains() (map[digest.Digest]bool, error) {
	used := map[digest.Digest]bool{}
	err := s.view(func(tx *bolt.Tx) error {
		imgs, err := matchImages(tx, func(*Image) bool { return true })
		for _, img := range imgs {
			for _, l := range img.Layers {
				used[l.ChainID] = true
			}
		}
		return err
	})
	return used, err
}

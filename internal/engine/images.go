package engine

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	digest "github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/image"
)

// ErrConflict is docker's "must be forced" refusal.
var ErrConflict = errors.New("conflict")

// ImageRow is one line of `images`: an image with one of its references (or none).
type ImageRow struct {
	Image   image.Image
	Ref     image.Reference // zero for <none>
	Size    int64           // unpacked size of all layers, as docker reports
	Created time.Time
}

// ListImages returns a row per reference (one <none> row for an untagged image), newest first.
// Untagged images another image was built on (a build's intermediate steps) are left out
// unless all is set, as `docker images` does.
func (e *Engine) ListImages(all bool) ([]ImageRow, error) {
	sums, err := e.Images.List()
	if err != nil {
		return nil, err
	}
	var parents map[string]bool
	if !all {
		parents = e.parents(sums)
	}
	var rows []ImageRow
	for _, s := range sums {
		size := e.UnpackedSize(&s.Image)
		if len(s.References) == 0 {
			if parents[s.Image.ID()] {
				continue
			}
			rows = append(rows, ImageRow{Image: s.Image, Size: size, Created: s.Image.Created})
			continue
		}
		for _, r := range s.References {
			rows = append(rows, ImageRow{Image: s.Image, Ref: r, Size: size, Created: s.Image.Created})
		}
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Created.After(rows[j].Created) })
	return rows, nil
}

// parents returns the IDs of the images another image was built on (docker's intermediate
// images). Such an image is not dangling: it is a build's cache.
func (e *Engine) parents(sums []image.ImageSummary) map[string]bool {
	out := map[string]bool{}
	for _, p := range e.parentOf(sums) {
		out[p] = true
	}
	return out
}

// parentOf maps an image's ID to its parent's: the image whose history and layers are the
// child's minus its last step (berth, like docker's containerd store, records no parent).
func (e *Engine) parentOf(sums []image.ImageSummary) map[string]string {
	sig := func(h []v1.History, layers []image.Layer) string {
		d := sha256.New()
		for _, x := range h {
			fmt.Fprintf(d, "%s\x00%s\x00%v\x00%s\n", x.Created.UTC().Format(time.RFC3339Nano), x.CreatedBy, x.EmptyLayer, x.Comment)
		}
		for _, l := range layers {
			fmt.Fprintf(d, "%s\n", l.ChainID)
		}
		return string(d.Sum(nil))
	}
	own := map[string]string{}
	children := map[string]string{}
	for i := range sums {
		img := &sums[i].Image
		cfg, err := e.Images.Config(img)
		if err != nil || len(cfg.History) == 0 {
			continue
		}
		own[sig(cfg.History, img.Layers)] = img.ID()
		last := len(cfg.History) - 1
		layers := img.Layers
		if !cfg.History[last].EmptyLayer && len(layers) > 0 {
			layers = layers[:len(layers)-1]
		}
		children[img.ID()] = sig(cfg.History[:last], layers)
	}
	out := map[string]string{}
	for child, s := range children {
		if id, ok := own[s]; ok && id != child {
			out[child] = id
		}
	}
	return out
}

// UnpackedSize is the sum of the image's layers as unpacked in the snapshotter.
func (e *Engine) UnpackedSize(img *image.Image) int64 {
	var total int64
	for _, l := range img.Layers {
		if info, err := e.Snapshots.Info(l.ChainID); err == nil {
			total += info.Size
		}
	}
	return total
}

// RemoveImage implements `rmi`: a reference is untagged, and the image is deleted when no
// reference is left; an ID that several repositories name needs force. It returns docker's
// report lines ("Untagged: ...", "Deleted: ...").
//
// As docker's rmi, deleting an image also deletes the untagged parents it was built on (a
// build's intermediate images) that no other image and no container uses, unless noPrune.
func (e *Engine) RemoveImage(ctx context.Context, query string, force, noPrune bool) ([]string, error) {
	img, err := e.Images.Resolve(query)
	if err != nil {
		return nil, err
	}
	refs, err := e.references(img)
	if err != nil {
		return nil, err
	}
	if users := e.containersUsing(img.ID()); len(users) > 0 {
		// docker: an image a container uses is never deleted; with force its names go.
		if !force {
			return nil, fmt.Errorf("%w: unable to delete %s (must be forced) - image is being used by container %s", ErrConflict, img.ShortID(), users[0][:12])
		}
		var out []string
		for _, r := range refs {
			if err := e.Images.Untag(ctx, r); err != nil {
				return out, err
			}
			out = append(out, "Untagged: "+r.Familiar())
		}
		return out, nil
	}
	var out []string
	byRef := false
	if ref, perr := image.ParseReference(query); perr == nil {
		for _, r := range refs {
			if r.String() == ref.String() {
				byRef = true
				if err := e.Images.Untag(ctx, r); err != nil {
					return out, err
				}
				out = append(out, "Untagged: "+r.Familiar())
			}
		}
	}
	if byRef && len(refs) > 1 {
		return out, nil // other names still point at the image
	}
	if !byRef && len(refs) > 1 && !force {
		return nil, fmt.Errorf("%w: unable to delete %s (must be forced) - image is referenced in multiple repositories", ErrConflict, img.ShortID())
	}
	if !byRef {
		for _, r := range refs {
			out = append(out, "Untagged: "+r.Familiar())
		}
	}
	var parentOf map[string]string
	if !noPrune {
		sums, err := e.Images.List()
		if err != nil {
			return out, err
		}
		parentOf = e.parentOf(sums)
	}
	before := map[digest.Digest]bool{}
	for _, l := range img.Layers {
		before[l.ChainID] = e.Snapshots.Exists(l.ChainID)
	}
	if err := e.Images.Remove(ctx, img.ID()); err != nil {
		return out, err
	}
	out = append(out, "Deleted: "+img.ID())
	p := parentOf[img.ID()]
	delete(parentOf, img.ID())
	for p != "" && e.prunableParent(p, parentOf) {
		if err := e.Images.Remove(ctx, p); err != nil {
			return out, err
		}
		out = append(out, "Deleted: "+p)
		next := parentOf[p]
		delete(parentOf, p)
		p = next
	}
	if _, _, err := e.Images.GC(ctx); err != nil {
		return out, err
	}
	for i := len(img.Layers) - 1; i >= 0; i-- {
		c := img.Layers[i].ChainID
		if before[c] && !e.Snapshots.Exists(c) {
			out = append(out, "Deleted: "+c.String())
		}
	}
	return out, nil
}

// prunableParent says whether rmi may delete a parent: untagged, no container on it, and no
// remaining image built on it.
func (e *Engine) prunableParent(id string, parentOf map[string]string) bool {
	for _, p := range parentOf {
		if p == id {
			return false
		}
	}
	img, err := e.Images.Resolve(id)
	if err != nil {
		return false
	}
	refs, err := e.references(img)
	return err == nil && len(refs) == 0 && len(e.containersUsing(id)) == 0
}

func (e *Engine) references(img *image.Image) ([]image.Reference, error) {
	sums, err := e.Images.List()
	if err != nil {
		return nil, err
	}
	for _, s := range sums {
		if s.Image.Config == img.Config {
			return s.References, nil
		}
	}
	return nil, nil
}

// PruneImages removes dangling images (all unused ones with all=true) that no container
// uses, and returns the removed IDs and the bytes freed.
func (e *Engine) PruneImages(ctx context.Context, all bool) ([]string, int64, error) {
	var removed []string
	// Passes until nothing more goes: removing an orphaned build step makes its own parent
	// an orphan (docker's rmi removes such untagged parents at once).
	for progress := true; progress; {
		progress = false
		sums, err := e.Images.List()
		if err != nil {
			return removed, 0, err
		}
		var parents map[string]bool
		if !all {
			parents = e.parents(sums) // a build's cache, not dangling (docker keeps it too)
		}
		for _, s := range sums {
			if len(s.References) > 0 && !all || parents[s.Image.ID()] || len(e.containersUsing(s.Image.ID())) > 0 {
				continue
			}
			if err := e.Images.Remove(ctx, s.Image.ID()); err != nil && !errors.Is(err, image.ErrNotFound) {
				return removed, 0, err
			}
			removed = append(removed, s.Image.ID())
			progress = true
		}
	}
	committedBefore, _, _ := e.Snapshots.Usage()
	freed, _, err := e.Images.GC(ctx)
	committedAfter, _, _ := e.Snapshots.Usage()
	return removed, freed + committedBefore - committedAfter, err
}

// HistoryRow is one line of `history`, newest first.
type HistoryRow struct {
	ID        string // the image ID on the top row, "<missing>" below, as docker
	Created   time.Time
	CreatedBy string
	Size      int64
	Comment   string
	Empty     bool
}

// History returns the image's build history with the unpacked size of each layer.
func (e *Engine) History(query string) ([]HistoryRow, error) {
	img, err := e.Images.Resolve(query)
	if err != nil {
		return nil, err
	}
	cfg, err := e.Images.Config(img)
	if err != nil {
		return nil, err
	}
	hist := cfg.History
	if len(hist) == 0 {
		for range img.Layers {
			hist = append(hist, v1.History{Created: v1.Time{Time: img.Created}})
		}
	}
	var rows []HistoryRow
	layer := 0
	for _, h := range hist {
		row := HistoryRow{ID: "<missing>", Created: h.Created.Time, CreatedBy: h.CreatedBy, Comment: h.Comment, Empty: h.EmptyLayer}
		if !h.EmptyLayer && layer < len(img.Layers) {
			if info, err := e.Snapshots.Info(img.Layers[layer].ChainID); err == nil {
				row.Size = info.Size
			}
			layer++
		}
		rows = append(rows, row)
	}
	for i, j := 0, len(rows)-1; i < j; i, j = i+1, j-1 {
		rows[i], rows[j] = rows[j], rows[i]
	}
	if len(rows) > 0 {
		rows[0].ID = img.ID()
	}
	return rows, nil
}

// InspectImage is `image inspect`, shaped like docker's.
type InspectImage struct {
	ID           string            `json:"Id"`
	RepoTags     []string          `json:"RepoTags"`
	RepoDigests  []string          `json:"RepoDigests"`
	Parent       string            `json:"Parent"`
	Comment      string            `json:"Comment"`
	Created      string            `json:"Created"`
	Author       string            `json:"Author"`
	Config       *v1.Config        `json:"Config"`
	Architecture string            `json:"Architecture"`
	Variant      string            `json:"Variant,omitempty"`
	Os           string            `json:"Os"`
	Size         int64             `json:"Size"`
	RootFS       inspectRootFS     `json:"RootFS"`
	Metadata     map[string]string `json:"Metadata"`
}

type inspectRootFS struct {
	Type   string   `json:"Type"`
	Layers []string `json:"Layers"`
}

// Inspect returns docker's inspect document for the image.
func (e *Engine) Inspect(query string) (*InspectImage, error) {
	img, err := e.Images.Resolve(query)
	if err != nil {
		return nil, err
	}
	cfg, err := e.Images.Config(img)
	if err != nil {
		return nil, err
	}
	refs, err := e.references(img)
	if err != nil {
		return nil, err
	}
	out := &InspectImage{
		ID: img.ID(), RepoTags: []string{}, RepoDigests: []string{},
		Comment: comment(cfg), Created: cfg.Created.UTC().Format(time.RFC3339Nano),
		Author: cfg.Author, Config: &cfg.Config,
		Architecture: cfg.Architecture, Variant: cfg.Variant, Os: cfg.OS,
		Size:     e.UnpackedSize(img),
		RootFS:   inspectRootFS{Type: "layers"},
		Metadata: map[string]string{"LastTagTime": ""},
	}
	for _, r := range refs {
		if r.Digest() != "" {
			out.RepoDigests = append(out.RepoDigests, r.FamiliarName()+"@"+r.Digest().String())
		} else {
			out.RepoTags = append(out.RepoTags, r.Familiar())
		}
	}
	for _, d := range cfg.RootFS.DiffIDs {
		out.RootFS.Layers = append(out.RootFS.Layers, d.String())
	}
	return out, nil
}

func comment(cfg *v1.ConfigFile) string {
	for i := len(cfg.History) - 1; i >= 0; i-- {
		if c := strings.TrimSpace(cfg.History[i].Comment); c != "" {
			return c
		}
	}
	return ""
}

// DiskUsage is `system df` for what exists so far (images; containers, volumes and build
// cache come with their issues and are reported as zero).
type DiskUsage struct {
	Images, ActiveImages    int
	ImagesSize, Reclaimable int64
	LayersSize              int64
}

// Usage computes DiskUsage.
func (e *Engine) Usage() (*DiskUsage, error) {
	sums, err := e.Images.List()
	if err != nil {
		return nil, err
	}
	committed, _, err := e.Snapshots.Usage()
	if err != nil {
		return nil, err
	}
	blobs, err := e.Images.DiskUsage()
	if err != nil {
		return nil, err
	}
	// Both copies of a layer count: the unpacked snapshot and the compressed blob kept for
	// push and save.
	du := &DiskUsage{Images: len(sums), ImagesSize: committed + blobs, LayersSize: blobs}
	// No container uses an image yet: every image is reclaimable.
	du.Reclaimable = du.ImagesSize
	return du, nil
}

// Check verifies the image store and that every layer of every image is unpacked.
func (e *Engine) Check(ctx context.Context) ([]string, error) {
	problems, err := e.Images.Check(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range problems {
		out = append(out, p.String())
	}
	used, err := e.Images.UsedChains()
	if err != nil {
		return out, err
	}
	for c := range used {
		if !e.Snapshots.Exists(c) {
			out = append(out, fmt.Sprintf("snapshot %s: used by an image but not unpacked", c))
		}
	}
	sort.Strings(out)
	return out, nil
}

// containersUsing lists the containers made from image id.
func (e *Engine) containersUsing(id string) []string {
	recs, _ := e.Containers.List()
	var ids []string
	for _, r := range recs {
		if r.Image == id {
			ids = append(ids, r.ID)
		}
	}
	return ids
}

// UnpackedSizeByID is UnpackedSize for an image ID ("" when the image is gone).
func (e *Engine) UnpackedSizeByID(id string) int64 {
	img, err := e.Images.Resolve(id)
	if err != nil {
		return 0
	}
	return e.UnpackedSize(img)
}

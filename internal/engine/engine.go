// Package engine opens a berth data root and implements the verbs that the CLI (and, later,
// the API server) share, over the packages that own each part: image (blobs, records,
// references), snapshot (unpacked layers). It holds no state of its own beyond the open stores.
//
// Data root layout (default /var/lib/berth, or --root, or $BERTH_ROOT):
//
//	<root>/image/      the image store (see package image)
//	<root>/snapshots/  the snapshotter (see package snapshot)
//	<root>/containers/ containers (see package container)
//	<root>/volumes/    named volumes (see package volume)
//	<root>/networks/   bridge networks, addresses, endpoints (see package network)
package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	digest "github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/network"
	"github.com/berth-dev/berth/snapshot"
	"github.com/berth-dev/berth/volume"
)

// DefaultRoot is the data root when neither --root nor $BERTH_ROOT is given.
const DefaultRoot = "/var/lib/berth"

// Engine is an open data root.
type Engine struct {
	Root       string
	Images     *image.Store
	Snapshots  *snapshot.Store
	Volumes    *volume.Store
	Containers *container.Manager
	Networks   *network.Store
}

// Open opens (creating if needed) the data root.
func Open(root string) (*Engine, error) {
	if root == "" {
		root = DefaultRoot
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o711); err != nil {
		return nil, fmt.Errorf("data root %s: %w", root, err)
	}
	e := &Engine{Root: root}
	if e.Snapshots, err = snapshot.Open(filepath.Join(root, "snapshots")); err != nil {
		return nil, err
	}
	// GC hands over the chains no image uses while it still holds its lock, so a concurrent
	// pull cannot start using a snapshot that is being removed.
	e.Images, err = image.Open(filepath.Join(root, "image"), image.WithUnusedChainsHook(e.removeChains))
	if err != nil {
		return nil, err
	}
	if e.Volumes, err = volume.Open(root); err != nil {
		e.Images.Close()
		return nil, err
	}
	if e.Networks, err = network.Open(root); err != nil {
		e.Images.Close()
		return nil, err
	}
	if e.Containers, err = container.Open(root, e.Images, e.Snapshots, e.Volumes, e.Networks); err != nil {
		e.Images.Close()
		return nil, err
	}
	return e, nil
}

// Close releases the stores.
func (e *Engine) Close() error { return e.Images.Close() }

// removeChains removes unused snapshots top-down (a child before its parent); a chain still
// in use by a container's snapshot stays.
func (e *Engine) removeChains(ctx context.Context, chains []digest.Digest) error {
	pending := map[digest.Digest]bool{}
	for _, c := range chains {
		if e.Snapshots.Exists(c) {
			pending[c] = true
		}
	}
	for progress := true; progress && len(pending) > 0; {
		progress = false
		for c := range pending {
			err := e.Snapshots.Remove(ctx, c)
			if err == nil || errors.Is(err, snapshot.ErrNotFound) {
				delete(pending, c)
				progress = true
			} else if !errors.Is(err, snapshot.ErrInUse) {
				return err
			}
		}
	}
	return nil
}

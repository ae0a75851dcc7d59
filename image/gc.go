package image

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	digest "github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// GC deletes every blob not reachable from an image record, from the digest
// of a name@digest reference (an index a pull kept), or from extraRoots, and
// clears crashed writes out of ingest/. It returns the bytes freed and the
// chain IDs of removed images that no remaining image uses, for the caller
// to remove those snapshots (or see WithUnusedChainsHook).
//
// Why it is safe against concurrent writers: GC holds gc.lock exclusive for
// its whole run, and Ingest, PutImage, Tag and Lease hold it shared, so no
// blob is written and no record created while GC decides and deletes. The
// only concurrent change possible is Remove, which only shrinks what is
// reachable: GC may then keep some garbage until its next run, never delete
// something still needed.
func (s *Store) GC(ctx context.Context, extraRoots ...digest.Digest) (freed int64, unusedChains []digest.Digest, err error) {
	if err := s.checkOpen(); err != nil {
		return 0, nil, err
	}
	unlock, err := s.lock(ctx, lockExclusive)
	if err != nil {
		return 0, nil, fmt.Errorf("gc: %w", err)
	}
	defer unlock()

	live := map[digest.Digest]bool{}
	for _, r := range extraRoots {
		live[r] = true
	}
	var released []digest.Digest
	var used map[digest.Digest]bool
	if err := s.view(func(tx *bolt.Tx) error {
		var err error
		if used, err = reachableTx(tx, live); err != nil {
			return err
		}
		return tx.Bucket(bucketReleased).ForEach(func(k, _ []byte) error {
			released = append(released, digest.Digest(k))
			return nil
		})
	}); err != nil {
		return 0, nil, fmt.Errorf("gc: %w", err)
	}

	entries, err := os.ReadDir(s.blobDir)
	if err != nil {
		return 0, nil, fmt.Errorf("gc: %w", err)
	}
	removed := false
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return freed, nil, fmt.Errorf("gc: %w", err)
		}
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		// Leave files that are not blobs for Check to report: whatever put
		// them there, deleting unknown files is not GC's call.
		if live[d] || d.Validate() != nil {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // raced with another deleter: nothing to free
		}
		if err := os.Remove(filepath.Join(s.blobDir, e.Name())); err != nil && !os.IsNotExist(err) {
			return freed, nil, fmt.Errorf("gc: %w", err)
		}
		freed += fi.Size()
		removed = true
	}
	if removed {
		if err := syncDir(s.blobDir); err != nil {
			return freed, nil, fmt.Errorf("gc: %w", err)
		}
	}
	if err := s.cleanIngest(); err != nil {
		return freed, nil, fmt.Errorf("gc: %w", err)
	}

	for _, c := range released {
		if !used[c] {
			unusedChains = append(unusedChains, c)
		}
	}
	slices.Sort(unusedChains)
	if s.unusedChainsHook != nil && len(unusedChains) > 0 {
		if err := s.unusedChainsHook(ctx, unusedChains); err != nil {
			return freed, nil, fmt.Errorf("gc: removing unused snapshots: %w", err)
		}
	}
	// Forget the released chains we have settled: those reported unused, and
	// those still used by another image (its own Remove will release them
	// again). A chain that a concurrent Remove has just freed stays for the
	// next GC to report.
	if err := s.update(func(tx *bolt.Tx) error {
		usedNow, err := reachableTx(tx, map[digest.Digest]bool{})
		if err != nil {
			return err
		}
		b := tx.Bucket(bucketReleased)
		for _, c := range released {
			if !used[c] || usedNow[c] {
				if err := b.Delete([]byte(c)); err != nil {
					return err
				}
			}
		}
		return nil
	}); err != nil {
		return freed, unusedChains, fmt.Errorf("gc: %w", err)
	}
	return freed, unusedChains, nil
}

// reachableTx adds to live every blob the records reach, and returns the
// chain IDs the records use.
func reachableTx(tx *bolt.Tx, live map[digest.Digest]bool) (chains map[digest.Digest]bool, err error) {
	chains = map[digest.Digest]bool{}
	if err := tx.Bucket(bucketImages).ForEach(func(k, v []byte) error {
		var img Image
		if err := json.Unmarshal(v, &img); err != nil {
			return fmt.Errorf("decode images/%s: %w", k, err)
		}
		live[img.Manifest] = true
		live[img.Config] = true
		for _, l := range img.Layers {
			live[l.Digest] = true
			chains[l.ChainID] = true
		}
		return nil
	}); err != nil {
		return nil, err
	}
	err = tx.Bucket(bucketRefs).ForEach(func(k, v []byte) error {
		var rr refRecord
		if err := json.Unmarshal(v, &rr); err != nil {
			return fmt.Errorf("decode refs/%s: %w", k, err)
		}
		live[rr.Manifest] = true
		// name@digest may pin an index whose platform manifest is the
		// record; keeping the index lets push and save reproduce it.
		if ref, err := ParseReference(string(k)); err == nil && ref.Digest() != "" {
			live[ref.Digest()] = true
		}
		return nil
	})
	return chains, err
}

// DiskUsage returns the bytes held by blobs.
func (s *Store) DiskUsage() (blobs int64, err error) {
	entries, err := os.ReadDir(s.blobDir)
	if err != nil {
		return 0, fmt.Errorf("disk usage: %w", err)
	}
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			continue // deleted since ReadDir
		}
		blobs += fi.Size()
	}
	return blobs, nil
}

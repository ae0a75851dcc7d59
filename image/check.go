package image

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// ProblemKind classifies what Check found.
type ProblemKind string

const (
	// ProblemCorruptBlob: a blob's content does not hash to its name.
	ProblemCorruptBlob ProblemKind = "corrupt-blob"
	// ProblemStrayFile: a file in blobs/ that is not named by a digest.
	ProblemStrayFile ProblemKind = "stray-file"
	// ProblemMissingBlob: an image record names a blob that is not stored.
	ProblemMissingBlob ProblemKind = "missing-blob"
	// ProblemDanglingRef: a reference points to no image record.
	ProblemDanglingRef ProblemKind = "dangling-reference"
	// ProblemBadRecord: a database record that does not decode.
	ProblemBadRecord ProblemKind = "bad-record"
)

// Problem is one inconsistency Check found.
type Problem struct {
	Kind   ProblemKind
	Object string // the blob digest, file, reference or record concerned
	Detail string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s: %s: %s", p.Kind, p.Object, p.Detail)
}

// Check verifies every blob against its digest, that every image record's
// manifest, config and distributable layers are stored, and that every
// reference points to a record. An empty result means consistent; err is
// only for failing to check at all. It holds gc.lock shared so a concurrent
// GC cannot make blobs look missing.
func (s *Store) Check(ctx context.Context) ([]Problem, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	unlock, err := s.lock(ctx, lockShared)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	defer unlock()

	var problems []Problem
	entries, err := os.ReadDir(s.blobDir)
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	buf := make([]byte, 256<<10)
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("check: %w", err)
		}
		want := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if want.Validate() != nil || !e.Type().IsRegular() {
			problems = append(problems, Problem{ProblemStrayFile, filepath.Join(s.blobDir, e.Name()), "not a blob"})
			continue
		}
		got, err := hashFile(filepath.Join(s.blobDir, e.Name()), buf)
		if err != nil {
			problems = append(problems, Problem{ProblemCorruptBlob, want.String(), err.Error()})
		} else if got != want {
			problems = append(problems, Problem{ProblemCorruptBlob, want.String(), "content hashes to " + got.String()})
		}
	}

	err = s.view(func(tx *bolt.Tx) error {
		images := map[string]bool{}
		if err := tx.Bucket(bucketImages).ForEach(func(k, v []byte) error {
			var img Image
			if err := json.Unmarshal(v, &img); err != nil {
				problems = append(problems, Problem{ProblemBadRecord, "images/" + string(k), err.Error()})
				return nil
			}
			images[string(k)] = true
			need := func(d digest.Digest, what string) {
				if !s.Has(d) {
					problems = append(problems, Problem{ProblemMissingBlob, d.String(),
						fmt.Sprintf("%s of image %s is not stored", what, img.Manifest)})
				}
			}
			need(img.Manifest, "manifest")
			need(img.Config, "config")
			for i, l := range img.Layers {
				if isDistributable(l.MediaType) {
					need(l.Digest, fmt.Sprintf("layer %d", i))
				}
			}
			return nil
		}); err != nil {
			return err
		}
		return tx.Bucket(bucketRefs).ForEach(func(k, v []byte) error {
			var rr refRecord
			if err := json.Unmarshal(v, &rr); err != nil {
				problems = append(problems, Problem{ProblemBadRecord, "refs/" + string(k), err.Error()})
				return nil
			}
			if !images[rr.Manifest.String()] {
				problems = append(problems, Problem{ProblemDanglingRef, string(k), "points to missing image " + rr.Manifest.String()})
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("check: %w", err)
	}
	return problems, nil
}

func hashFile(path string, buf []byte) (digest.Digest, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	dg := digest.SHA256.Digester()
	if _, err := io.CopyBuffer(dg.Hash(), f, buf); err != nil {
		return "", err
	}
	return dg.Digest(), nil
}

func isDistributable(mediaType string) bool {
	return types.MediaType(mediaType).IsDistributable()
}

// Package image is berth's image store: a content-addressed blob store, the
// image records built from the manifests in it, the references (name:tag and
// name@digest) that point at those records, and the garbage collector that
// frees what nothing points at any more.
//
// # On-disk layout
//
//	<root>/
//	  blobs/sha256/<hex>   immutable content, named by the sha256 of its bytes
//	  ingest/<hex12>-<rnd> blobs being written; never read by anyone but the writer
//	  meta.db              bbolt: the indexes below
//	  gc.lock              flock: writers hold it shared, GC holds it exclusive
//
// meta.db buckets (all values are JSON):
//
//	meta/version           "1": schema version, for future migrations
//	refs/<reference>       normalized reference ("docker.io/library/debian:12",
//	                       "ghcr.io/x/y@sha256:...") -> refRecord{manifest, mediaType, created}
//	images/<manifest>      manifest digest -> Image{config, layers (digest, size, media
//	                       type, diffID, chainID), platform, created, size}
//	released/<chainID>     chain IDs of removed images, kept until GC reports the
//	                       ones no remaining image uses (so the snapshotter can drop them)
//
// # Crash safety
//
// The store is consistent after a crash at any instant because every step
// only ever adds something that is not yet referenced, or removes a reference
// before the thing it referenced:
//
//   - A blob is written to ingest/, verified against its digest and size,
//     fsynced, renamed into blobs/ (atomic) and the directory fsynced. A
//     crash leaves at worst a file in ingest/, which Open (or GC) removes.
//     A file in blobs/ is therefore always complete; Check re-verifies them.
//   - An image record is committed (bbolt transactions are atomic and
//     durable) only after PutImage has seen its manifest, config and layer
//     blobs in blobs/; a reference is committed only in the transaction that
//     sees its image record. So no record or reference ever names a missing
//     blob or record: a killed pull leaves unreferenced blobs, nothing half.
//   - Remove deletes records and references in one transaction; GC deletes
//     blobs only afterwards, so a crash between the two leaves garbage, which
//     the next GC frees, never a dangling record.
//
// # Concurrency
//
// Several berth processes share one store without a daemon. bbolt allows a
// single writer process per file, so the database is opened per operation
// (like podman's bolt state) and transactions are kept short: no blob I/O
// happens inside one. Blob writes need no database at all.
//
// GC must not delete a blob between its ingest and the PutImage that
// references it. gc.lock arbitrates: Ingest and PutImage hold it shared while
// they run, Lease holds it shared for a whole multi-step operation (a pull,
// load or import), and GC holds it exclusive, so GC waits for every in-flight
// writer and writers wait for a running GC. Concurrent ingests of one digest
// each write their own temp file and rename it over the same name; rename is
// atomic and the content identical, so both succeed.
package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	digest "github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

const (
	schemaVersion = "1"
	// dbTimeout bounds the wait for another process's transaction. They are
	// all short, so hitting it means a process is stuck, not busy.
	dbTimeout = 30 * time.Second
)

var (
	bucketMeta     = []byte("meta")
	bucketRefs     = []byte("refs")
	bucketImages   = []byte("images")
	bucketReleased = []byte("released")
	keyVersion     = []byte("version")
)

// Store is an image store rooted at a directory. It is safe for concurrent
// use by several goroutines and several processes.
type Store struct {
	root      string
	blobDir   string
	ingestDir string
	dbPath    string
	lockPath  string

	// dbMu serializes this process's bbolt opens: bbolt's own flock would
	// also do it, but by polling every 50 ms.
	dbMu   sync.RWMutex
	closed atomic.Bool

	unusedChainsHook func(ctx context.Context, chains []digest.Digest) error
}

// Option configures a Store at Open.
type Option func(*Store)

// WithUnusedChainsHook makes GC call fn with the chain IDs no image uses any
// more while it still holds the GC lock, so the snapshotter can remove those
// snapshots before a concurrent pull could start relying on them. An error
// from fn fails GC; the chain IDs are then reported again by the next GC.
func WithUnusedChainsHook(fn func(ctx context.Context, chains []digest.Digest) error) Option {
	return func(s *Store) { s.unusedChainsHook = fn }
}

// Open opens (creating if needed) the store rooted at root, and removes
// leftovers of crashed writes from ingest/ if no other writer is active.
func Open(root string, opts ...Option) (*Store, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open image store %s: %w", root, err)
	}
	s := &Store{
		root:      abs,
		blobDir:   filepath.Join(abs, "blobs", "sha256"),
		ingestDir: filepath.Join(abs, "ingest"),
		dbPath:    filepath.Join(abs, "meta.db"),
		lockPath:  filepath.Join(abs, "gc.lock"),
	}
	for _, o := range opts {
		o(s)
	}
	for _, d := range []string{s.blobDir, s.ingestDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("open image store %s: %w", root, err)
		}
	}
	// Every berth command opens the store: check the schema read-only first, so that only
	// the first open of a data root pays for a write transaction (and its fdatasync).
	//
	// Only a file with content is opened read-only: bbolt initialises an empty file, which a
	// read-only descriptor cannot do ("write: bad file descriptor"), and a file another berth
	// process has just created is empty until that process, holding bbolt's flock, has
	// written its first pages.
	ready := false
	if fi, err := os.Stat(s.dbPath); err == nil && fi.Size() > 0 {
		if err := s.view(func(tx *bolt.Tx) error {
			for _, b := range [][]byte{bucketRefs, bucketImages, bucketReleased} {
				if tx.Bucket(b) == nil {
					return nil
				}
			}
			if meta := tx.Bucket(bucketMeta); meta != nil {
				if v := meta.Get(keyVersion); v != nil {
					if string(v) != schemaVersion {
						return fmt.Errorf("unsupported store schema version %q (want %s)", v, schemaVersion)
					}
					ready = true
				}
			}
			return nil
		}); err != nil {
			return nil, fmt.Errorf("open image store %s: %w", root, err)
		}
	}
	if !ready {
		if err := s.initDB(); err != nil {
			return nil, fmt.Errorf("open image store %s: %w", root, err)
		}
	}
	// Files in ingest/ belong to crashed writers unless a writer is running
	// now; holding the lock exclusively proves none is. If one is, leave
	// cleaning to a later Open or GC rather than wait.
	if unlock, ok, err := s.tryLock(lockExclusive); err != nil {
		return nil, fmt.Errorf("open image store %s: %w", root, err)
	} else if ok {
		err := s.cleanIngest()
		unlock()
		if err != nil {
			return nil, fmt.Errorf("open image store %s: %w", root, err)
		}
	}
	return s, nil
}

// initDB creates the buckets and the schema version of a new store.
func (s *Store) initDB() error {
	return s.update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketRefs, bucketImages, bucketReleased} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		switch v := meta.Get(keyVersion); {
		case v == nil:
			return meta.Put(keyVersion, []byte(schemaVersion))
		case string(v) != schemaVersion:
			return fmt.Errorf("unsupported store schema version %q (want %s)", v, schemaVersion)
		}
		return nil
	})
}

// Close marks the store closed. It holds no long-lived resources (the
// database is opened per operation), so it only makes later calls fail.
func (s *Store) Close() error {
	s.closed.Store(true)
	return nil
}

// Root returns the store's root directory.
func (s *Store) Root() string { return s.root }

func (s *Store) checkOpen() error {
	if s.closed.Load() {
		return ErrClosed
	}
	return nil
}

// Lease holds off GC until release is called. Writers that ingest several
// blobs and then call PutImage and Tag (pull, load, import, build) hold one
// across all of it, so GC cannot collect a blob between its ingest and the
// record that makes it reachable. Do not call GC from the goroutine holding a
// lease: it would wait for the lease until ctx ends.
func (s *Store) Lease(ctx context.Context) (release func(), err error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	unlock, err := s.lock(ctx, lockShared)
	if err != nil {
		return nil, fmt.Errorf("lease: %w", err)
	}
	var once sync.Once
	return func() { once.Do(unlock) }, nil
}

// openDB opens meta.db for one operation. Read-only opens take bbolt's flock
// shared, so readers in different processes do not wait for each other.
func (s *Store) openDB(readOnly bool) (*bolt.DB, error) {
	return bolt.Open(s.dbPath, 0o600, &bolt.Options{Timeout: dbTimeout, ReadOnly: readOnly})
}

func (s *Store) view(fn func(tx *bolt.Tx) error) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	db, err := s.openDB(true)
	if err != nil {
		return fmt.Errorf("open %s: %w", s.dbPath, err)
	}
	err = db.View(fn)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return err
}

func (s *Store) update(fn func(tx *bolt.Tx) error) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	s.dbMu.Lock()
	defer s.dbMu.Unlock()
	db, err := s.openDB(false)
	if err != nil {
		return fmt.Errorf("open %s: %w", s.dbPath, err)
	}
	err = db.Update(fn)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return err
}

// getJSON decodes the value at key in bucket b into v; found is false if absent.
func getJSON(b *bolt.Bucket, key string, v any) (found bool, err error) {
	raw := b.Get([]byte(key))
	if raw == nil {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("decode record %s: %w", key, err)
	}
	return true, nil
}

func putJSON(b *bolt.Bucket, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), raw)
}

// cleanIngest removes every file in ingest/. Callers hold the lock exclusive.
func (s *Store) cleanIngest() error {
	entries, err := os.ReadDir(s.ingestDir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(s.ingestDir, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// syncDir makes a rename or unlink in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

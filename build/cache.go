package build

// The build cache: one file per step under <root>/build/cache/, named by the step's key (hex
// sha256), holding the ID of the image the step produced. A key covers the parent image ID,
// the instruction as executed (arguments expanded, with the build args a RUN sees) and, for
// COPY/ADD, the content hash of the files it reads. Files are written temp + fsync + rename
// (+ dir fsync), so a crash leaves either the old entry or the new one; a hit whose image was
// removed since is a miss.

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
)

// Cache maps step keys to image IDs.
type Cache struct{ dir string }

// OpenCache opens (creating) the cache directory.
func OpenCache(dir string) (*Cache, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return &Cache{dir: dir}, nil
}

// cacheKey is the key of a step.
func cacheKey(parentID string, parts ...string) string {
	h := sha256.New()
	h.Write([]byte("berth-build-v1\x00" + parentID))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Get returns the image ID recorded for key, "" if none.
func (c *Cache) Get(key string) string {
	b, err := os.ReadFile(filepath.Join(c.dir, key))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// Put records key -> imageID atomically.
func (c *Cache) Put(key, imageID string) error {
	f, err := os.CreateTemp(c.dir, ".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(imageID + "\n"); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), filepath.Join(c.dir, key)); err != nil {
		return err
	}
	d, err := os.Open(c.dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

package container

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	containertypes "github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"
)

// Record is containers/<id>/config.json: what `create` decided. It changes only on rename,
// commit-free updates (`update`), and restart-count bookkeeping done by the monitor lives in
// state.json instead, so the CLI is this file's only writer.
type Record struct {
	ID         string                     `json:"ID"`
	Name       string                     `json:"Name"` // without docker's leading "/"
	Created    time.Time                  `json:"Created"`
	Image      string                     `json:"Image"` // image ID (sha256:...)
	Config     *containertypes.Config     `json:"Config"`
	HostConfig *containertypes.HostConfig `json:"HostConfig"`
	Mounts     []MountPoint               `json:"Mounts"`
	// Chain is the image's top chain ID: the lower layers of the container's snapshot.
	Chain string `json:"Chain"`
	// Networks are the bridge networks the container joins at start, in order (the first
	// one is HostConfig.NetworkMode); empty for none, host and container:NAME.
	Networks []NetworkAttachment `json:"Networks,omitempty"`
}

// MountPoint is a resolved bind, volume or tmpfs mount (docker's inspect Mounts entry).
type MountPoint struct {
	Type        string `json:"Type"` // bind | volume | tmpfs
	Name        string `json:"Name,omitempty"`
	Source      string `json:"Source"`
	Destination string `json:"Destination"`
	Driver      string `json:"Driver,omitempty"`
	Mode        string `json:"Mode"`
	RW          bool   `json:"RW"`
	Propagation string `json:"Propagation"`
	// Anonymous volumes are removed with the container by `rm -v` and `--rm`.
	Anonymous bool `json:"Anonymous,omitempty"`
	NoCopy    bool `json:"NoCopy,omitempty"`
	// TmpfsOptions for type tmpfs (size=...,mode=...).
	TmpfsOptions string `json:"TmpfsOptions,omitempty"`
}

// ShortID is docker's 12-hex form.
func (r *Record) ShortID() string { return r.ID[:12] }

var namePattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// checkName validates a --name (docker's rule), without a leading "/".
func checkName(name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("%w %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", ErrBadName, "/"+name)
	}
	return nil
}

func newID() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

func (m *Manager) dir(id string) string        { return filepath.Join(m.ctrRoot, id) }
func (m *Manager) namePath(name string) string { return filepath.Join(m.ctrRoot, "names", name) }

// reserveName points names/<name> at id. symlink(2) fails on an existing name, so two
// creates racing for one name cannot both win.
func (m *Manager) reserveName(name, id string) error {
	if err := checkName(name); err != nil {
		return err
	}
	err := os.Symlink(id, m.namePath(name))
	if errors.Is(err, os.ErrExist) {
		owner, _ := os.Readlink(m.namePath(name))
		if _, serr := os.Stat(m.dir(owner)); serr != nil && owner != "" {
			// A name left by a removal that crashed half-way: reclaim it.
			if os.Remove(m.namePath(name)) == nil {
				return m.reserveName(name, id)
			}
		}
		return fmt.Errorf("%w: the container name \"/%s\" is already in use by container %q; remove (or rename) that container to reuse the name", ErrNameInUse, name, owner)
	}
	return err
}

// releaseName removes names/<name> if it still points at id.
func (m *Manager) releaseName(name, id string) {
	if owner, err := os.Readlink(m.namePath(name)); err == nil && owner == id {
		os.Remove(m.namePath(name))
	}
}

// writeRecord stores r atomically.
func (m *Manager) writeRecord(r *Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	// A --rm container's record need not survive a power loss (see snapshot.NoSync).
	return writeBytesAtomic(filepath.Join(m.dir(r.ID), "config.json"), b, 0o600, !r.HostConfig.AutoRemove)
}

func (m *Manager) readRecord(id string) (*Record, error) {
	b, err := os.ReadFile(filepath.Join(m.dir(id), "config.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		return nil, err
	}
	r := &Record{}
	if err := json.Unmarshal(b, r); err != nil {
		return nil, fmt.Errorf("container %s: corrupt record: %w", id, err)
	}
	return r, nil
}

// writeFileAtomic writes v as JSON: temp file, fsync, rename, fsync of the directory.
func writeFileAtomic(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return writeBytesAtomic(path, b, 0o600, true)
}

// writeBytesAtomic replaces path with b. durable adds the fsyncs that make the new content
// survive a power loss; files regenerated on every start (the spec, the monitor's config) do
// without them: after a crash they are rewritten before they are read again.
func writeBytesAtomic(path string, b []byte, mode os.FileMode, durable bool) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil && durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	if !durable {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Lookup finds a container by full id, name (with or without "/"), or unique id prefix.
func (m *Manager) Lookup(query string) (*Record, error) {
	q := strings.TrimPrefix(query, "/")
	if q == "" {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, query)
	}
	if len(q) == 64 {
		if r, err := m.readRecord(q); err == nil {
			return r, nil
		}
	}
	if id, err := os.Readlink(m.namePath(q)); err == nil && !strings.Contains(q, "/") {
		if r, err := m.readRecord(id); err == nil {
			return r, nil
		}
	}
	if !isHexPrefix(q) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, query)
	}
	ids, err := m.ids()
	if err != nil {
		return nil, err
	}
	var match []string
	for _, id := range ids {
		if strings.HasPrefix(id, q) {
			match = append(match, id)
		}
	}
	switch len(match) {
	case 0:
		return nil, fmt.Errorf("%w: %s", ErrNotFound, query)
	case 1:
		return m.readRecord(match[0])
	}
	return nil, fmt.Errorf("%w %q: give more of the id", ErrAmbiguous, query)
}

func isHexPrefix(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// ids lists the container ids with a complete record.
func (m *Manager) ids() ([]string, error) {
	ents, err := os.ReadDir(m.ctrRoot)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range ents {
		if len(e.Name()) == 64 && isHexPrefix(e.Name()) {
			ids = append(ids, e.Name())
		} else if strings.HasPrefix(e.Name(), ".trash-") {
			os.RemoveAll(filepath.Join(m.ctrRoot, e.Name())) // a removal that crashed half-way
		}
	}
	return ids, nil
}

// List returns every container record, newest first.
func (m *Manager) List() ([]*Record, error) {
	ids, err := m.ids()
	if err != nil {
		return nil, err
	}
	var recs []*Record
	for _, id := range ids {
		r, err := m.readRecord(id)
		if err != nil {
			m.reclaim(id) // a container being created, or one whose create crashed
			continue
		}
		recs = append(recs, r)
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Created.After(recs[j].Created) })
	return recs, nil
}

// lock takes the container's flock; every CLI operation that changes it holds it.
func (m *Manager) lock(id string) (func(), error) {
	fd, err := unix.Open(filepath.Join(m.dir(id), "lock"), unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		return nil, err
	}
	for {
		err = unix.Flock(fd, unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return func() { unix.Close(fd) }, nil
}

// reclaim removes what a create killed before it wrote the record left behind: a directory
// without config.json, its snapshot and its name. A create in progress is left alone: it
// holds the container's lock from just after the directory exists until the record is
// written (the two seconds cover the moment between mkdir and flock).
func (m *Manager) reclaim(id string) {
	if !m.stale(id) {
		return
	}
	dir := m.dir(id)
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err == nil {
		return
	}
	m.releaseNetwork(&Record{ID: id})
	m.unmountRootfs(id)
	m.Snapshots.RemoveActive(context.Background(), id)
	if ents, err := os.ReadDir(filepath.Join(m.ctrRoot, "names")); err == nil {
		for _, e := range ents {
			m.releaseName(e.Name(), id)
		}
	}
	trash := filepath.Join(m.ctrRoot, ".trash-"+id)
	if os.Rename(dir, trash) == nil {
		os.RemoveAll(trash)
	}
}

package volume

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/volume"
	"golang.org/x/sys/unix"
)

const (
	dirName   = "volumes"
	tmpDir    = ".tmp"
	lockFile  = ".lock"
	metaFile  = "meta.json"
	dataDir   = "_data"
	refsDir   = "refs"
	driver    = "local"
	scope     = "local"
	anonLabel = "com.docker.volume.anonymous"
)

var (
	nameRe = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)
	idRe   = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
	// The local driver's options (mount(8) type, device and options).
	validOpts = map[string]bool{"type": true, "device": true, "o": true, "size": true}
)

// Volume is a named volume.
type Volume struct {
	Name       string
	Driver     string // always "local"
	Mountpoint string // absolute path of its _data directory
	Scope      string // always "local"
	CreatedAt  time.Time
	Labels     map[string]string
	Options    map[string]string
	Anonymous  bool
}

// API returns the volume as docker's API type (volume inspect, volume ls).
func (v *Volume) API() volume.Volume {
	return volume.Volume{
		Name:       v.Name,
		Driver:     v.Driver,
		Mountpoint: v.Mountpoint,
		Scope:      v.Scope,
		CreatedAt:  v.CreatedAt.Format(time.RFC3339),
		Labels:     v.Labels,
		Options:    v.Options,
	}
}

// meta is meta.json.
type meta struct {
	Name      string
	CreatedAt time.Time
	Labels    map[string]string `json:",omitempty"`
	Options   map[string]string `json:",omitempty"`
	Anonymous bool              `json:",omitempty"`
}

// Store is the volumes of one data root.
type Store struct {
	dir string // <root>/volumes, absolute
}

// Open opens (creating it if needed) the volume store under data root root
// and sweeps work dirs left in volumes/.tmp by dead processes.
func Open(root string) (*Store, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	s := &Store{dir: filepath.Join(abs, dirName)}
	if err := os.MkdirAll(filepath.Join(s.dir, tmpDir), 0o700); err != nil {
		return nil, fmt.Errorf("volume: open: %w", err)
	}
	if err := os.Chmod(s.dir, 0o701); err != nil {
		return nil, fmt.Errorf("volume: open: %w", err)
	}
	if err := s.sweep(); err != nil {
		return nil, fmt.Errorf("volume: open: %w", err)
	}
	return s, nil
}

// lock takes volumes/.lock. Hold it briefly: never across a slow walk.
func (s *Store) lock() (func(), error) {
	fd, err := unix.Open(filepath.Join(s.dir, lockFile), unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("volume: lock: %w", err)
	}
	for {
		err = unix.Flock(fd, unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("volume: lock: %w", err)
	}
	return func() { unix.Close(fd) }, nil
}

// workDir is a flock'ed directory in volumes/.tmp.
type workDir struct {
	path string
	fd   int
}

func (w *workDir) release() { unix.Close(w.fd) }

// purge deletes the work dir and releases it.
func (w *workDir) purge() error {
	err := os.RemoveAll(w.path)
	w.release()
	return err
}

// lockDir opens and flocks a directory (LOCK_NB: fails if someone holds it).
func lockDir(path string) (*workDir, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &workDir{path: path, fd: fd}, nil
}

// newWorkDir makes a fresh locked work dir (under the store lock, so that a
// concurrent sweep never sees it unlocked).
func (s *Store) newWorkDir(prefix string) (*workDir, error) {
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	p, err := os.MkdirTemp(filepath.Join(s.dir, tmpDir), prefix)
	if err != nil {
		return nil, err
	}
	w, err := lockDir(p)
	if err != nil {
		os.Remove(p)
		return nil, err
	}
	return w, nil
}

// sweep deletes the work dirs nobody holds.
func (s *Store) sweep() error {
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	entries, err := os.ReadDir(filepath.Join(s.dir, tmpDir))
	if err != nil {
		unlock()
		return err
	}
	var stale []*workDir
	for _, e := range entries {
		w, err := lockDir(filepath.Join(s.dir, tmpDir, e.Name()))
		if err != nil {
			if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
				os.Remove(filepath.Join(s.dir, tmpDir, e.Name()))
			}
			continue // in use, or gone
		}
		stale = append(stale, w)
	}
	unlock()
	// Delete outside the store lock, holding each dir's own lock.
	var errs []error
	for _, w := range stale {
		if err := w.purge(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func checkName(name string) error {
	if !nameRe.MatchString(name) {
		return fmt.Errorf("%w: %q includes invalid characters for a local volume name, only %q are allowed", ErrBadName, name, "[a-zA-Z0-9][a-zA-Z0-9_.-]")
	}
	return nil
}

func checkID(id string) error {
	if !idRe.MatchString(id) || len(id) > 255 {
		return fmt.Errorf("volume: invalid container id %q", id)
	}
	return nil
}

func randomName() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

func (s *Store) path(name string) string { return filepath.Join(s.dir, name) }

// Create creates volume name ("" = a random 64-hex name) with labels and
// local driver options. If it exists already, the existing volume is
// returned, as docker does. Anonymous volumes get docker's anonymous label.
func (s *Store) Create(ctx context.Context, name string, labels, opts map[string]string, anonymous bool) (*Volume, error) {
	if name == "" {
		var err error
		if name, err = randomName(); err != nil {
			return nil, fmt.Errorf("volume: create: %w", err)
		}
	}
	if err := checkName(name); err != nil {
		return nil, err
	}
	for k := range opts {
		if !validOpts[k] {
			return nil, fmt.Errorf("%w: %q", ErrBadOption, k)
		}
	}
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if v, err := s.Get(name); err == nil {
			return v, nil
		} else if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		v, err := s.create(name, labels, opts, anonymous)
		// A concurrent Remove can delete the winner of a race before we
		// read it back: try again.
		if errors.Is(err, ErrNotFound) && attempt < 5 {
			continue
		}
		return v, err
	}
}

func (s *Store) create(name string, labels, opts map[string]string, anonymous bool) (*Volume, error) {
	m := meta{
		Name:      name,
		CreatedAt: time.Now().UTC().Truncate(time.Second),
		Labels:    maps.Clone(labels),
		Options:   maps.Clone(opts),
		Anonymous: anonymous,
	}
	if anonymous {
		if m.Labels == nil {
			m.Labels = map[string]string{}
		}
		m.Labels[anonLabel] = ""
	}
	w, err := s.newWorkDir("create-")
	if err != nil {
		return nil, fmt.Errorf("volume: create %s: %w", name, err)
	}
	published := false
	defer func() {
		if !published {
			w.purge()
		} else {
			w.release()
		}
	}()
	if err := build(w.path, &m); err != nil {
		return nil, fmt.Errorf("volume: create %s: %w", name, err)
	}
	if err := os.Rename(w.path, s.path(name)); err != nil {
		if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTEMPTY) {
			return s.Get(name) // a concurrent Create won
		}
		return nil, fmt.Errorf("volume: create %s: %w", name, err)
	}
	published = true
	if err := fsyncDir(s.dir); err != nil {
		return nil, fmt.Errorf("volume: create %s: %w", name, err)
	}
	return s.volume(&m), nil
}

// build fills a work dir: _data (0755), refs, meta.json (fsynced).
func build(dir string, m *meta) error {
	data := filepath.Join(dir, dataDir)
	if err := os.Mkdir(data, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(data, 0o755); err != nil { // umask
		return err
	}
	if err := os.Mkdir(filepath.Join(dir, refsDir), 0o700); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o701); err != nil {
		return err
	}
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, metaFile), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err = f.Write(b); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return fsyncDir(dir)
}

func fsyncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func (s *Store) volume(m *meta) *Volume {
	return &Volume{
		Name:       m.Name,
		Driver:     driver,
		Mountpoint: filepath.Join(s.path(m.Name), dataDir),
		Scope:      scope,
		CreatedAt:  m.CreatedAt,
		Labels:     m.Labels,
		Options:    m.Options,
		Anonymous:  m.Anonymous,
	}
}

// Get returns volume name (ErrNotFound if there is none).
func (s *Store) Get(name string) (*Volume, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	m, err := s.readMeta(name)
	if err != nil {
		return nil, err
	}
	return s.volume(m), nil
}

func (s *Store) readMeta(name string) (*meta, error) {
	b, err := os.ReadFile(filepath.Join(s.path(name), metaFile))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, fmt.Errorf("get %s: %w", name, ErrNotFound)
		}
		return nil, fmt.Errorf("volume: get %s: %w", name, err)
	}
	var m meta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("volume: get %s: meta.json: %w", name, err)
	}
	m.Name = name
	return &m, nil
}

// List returns every volume, sorted by name.
func (s *Store) List() ([]*Volume, error) {
	names, err := s.names()
	if err != nil {
		return nil, err
	}
	out := make([]*Volume, 0, len(names))
	for _, n := range names {
		v, err := s.Get(n)
		if errors.Is(err, ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func (s *Store) names() ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("volume: list: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() && nameRe.MatchString(e.Name()) {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// users lists refs/ of a volume (the store lock need not be held).
func (s *Store) users(name string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(s.path(name), refsDir))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if _, merr := s.readMeta(name); merr != nil {
				return nil, merr
			}
			return nil, nil
		}
		return nil, fmt.Errorf("volume: %s: %w", name, err)
	}
	ids := make([]string, 0, len(entries))
	for _, e := range entries {
		ids = append(ids, e.Name())
	}
	slices.Sort(ids)
	return ids, nil
}

// Users returns the ids of the containers using volume name, sorted.
func (s *Store) Users(name string) ([]string, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	return s.users(name)
}

// Ref records that container containerID uses volume name.
func (s *Store) Ref(name, containerID string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := checkID(containerID); err != nil {
		return err
	}
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := s.readMeta(name); err != nil {
		return err
	}
	refs := filepath.Join(s.path(name), refsDir)
	fd, err := unix.Open(filepath.Join(refs, containerID), unix.O_WRONLY|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("volume: ref %s: %w", name, err)
	}
	unix.Close(fd)
	if err := fsyncDir(refs); err != nil {
		return fmt.Errorf("volume: ref %s: %w", name, err)
	}
	return nil
}

// Unref drops containerID's use of volume name (no error if it had none).
func (s *Store) Unref(name, containerID string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := checkID(containerID); err != nil {
		return err
	}
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	refs := filepath.Join(s.path(name), refsDir)
	err = os.Remove(filepath.Join(refs, containerID))
	if errors.Is(err, fs.ErrNotExist) {
		if _, merr := s.readMeta(name); merr != nil {
			return merr
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("volume: unref %s: %w", name, err)
	}
	return fsyncDir(refs)
}

// trash renames a volume into a locked work dir (store lock held).
func (s *Store) trash(name string) (*workDir, error) {
	dst := filepath.Join(s.dir, tmpDir, "rm-"+name)
	if _, err := os.Lstat(dst); err == nil {
		p, err := os.MkdirTemp(filepath.Join(s.dir, tmpDir), "rm-")
		if err != nil {
			return nil, err
		}
		os.Remove(p)
		dst = p
	}
	if err := os.Rename(s.path(name), dst); err != nil {
		return nil, err
	}
	if err := fsyncDir(s.dir); err != nil {
		return nil, err
	}
	w, err := lockDir(dst)
	if err != nil {
		return nil, err
	}
	return w, nil
}

// Remove deletes volume name. A volume used by containers is refused with
// ErrInUse, even with force, as docker does; force only makes a missing
// volume not an error.
func (s *Store) Remove(ctx context.Context, name string, force bool) error {
	if err := checkName(name); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	users, err := s.users(name)
	if err != nil {
		unlock()
		if force && errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	}
	if len(users) > 0 {
		unlock()
		return fmt.Errorf("remove %s: %w - %v", name, ErrInUse, users)
	}
	w, err := s.trash(name)
	unlock()
	if err != nil {
		return fmt.Errorf("volume: remove %s: %w", name, err)
	}
	if err := w.purge(); err != nil {
		return fmt.Errorf("volume: remove %s: %w", name, err)
	}
	return nil
}

// Prune removes unused volumes: by default only anonymous ones (docker >=
// 23), with all every unused one. labelFilters narrow the choice, as
// docker's --filter label=... and label!=...: "key" and "key=value" must
// match, "!key" and "!key=value" must not. It returns the removed names and
// the bytes reclaimed.
func (s *Store) Prune(ctx context.Context, all bool, labelFilters []string) (removed []string, reclaimed int64, err error) {
	unlock, err := s.lock()
	if err != nil {
		return nil, 0, err
	}
	names, err := s.names()
	if err != nil {
		unlock()
		return nil, 0, err
	}
	type victim struct {
		name string
		w    *workDir
	}
	var victims []victim
	var errs []error
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		m, err := s.readMeta(n)
		if err != nil {
			continue
		}
		if !all && !m.Anonymous {
			continue
		}
		if !matchLabels(m.Labels, labelFilters) {
			continue
		}
		if users, err := s.users(n); err != nil || len(users) > 0 {
			continue
		}
		w, err := s.trash(n)
		if err != nil {
			errs = append(errs, fmt.Errorf("volume: prune %s: %w", n, err))
			continue
		}
		victims = append(victims, victim{n, w})
	}
	unlock()
	for _, v := range victims {
		size, _ := dirSize(filepath.Join(v.w.path, dataDir))
		if err := v.w.purge(); err != nil {
			errs = append(errs, fmt.Errorf("volume: prune %s: %w", v.name, err))
		}
		removed = append(removed, v.name)
		reclaimed += size
	}
	return removed, reclaimed, errors.Join(errs...)
}

func matchLabels(labels map[string]string, filters []string) bool {
	for _, f := range filters {
		neg := strings.HasPrefix(f, "!")
		f = strings.TrimPrefix(f, "!")
		k, want, hasValue := strings.Cut(f, "=")
		v, ok := labels[k]
		match := ok && (!hasValue || v == want)
		if match == neg {
			return false
		}
	}
	return true
}

// Size returns the bytes used by volume name's content (apparent sizes of
// everything but directories, each hard-linked inode once), as docker's
// `system df -v` reports.
func (s *Store) Size(name string) (int64, error) {
	if err := checkName(name); err != nil {
		return 0, err
	}
	if _, err := s.readMeta(name); err != nil {
		return 0, err
	}
	return dirSize(filepath.Join(s.path(name), dataDir))
}

// dirSize walks dir without following symlinks.
func dirSize(dir string) (int64, error) {
	seen := map[[2]uint64]bool{}
	var size int64
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while we walk
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
			id := [2]uint64{st.Dev, st.Ino}
			if seen[id] {
				return nil
			}
			seen[id] = true
		}
		size += info.Size()
		return nil
	})
	return size, err
}

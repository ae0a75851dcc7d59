// Package snapshot is berth's layer store and overlay snapshotter: every
// image layer is unpacked exactly once into a read-only directory keyed by its
// OCI chain ID and shared by every image and container that uses it; a
// container's root filesystem is an overlay mount of those directories plus
// its own thin upper and work directories.
//
// # On-disk layout
//
//	<root>/lock                    empty file; flock(LOCK_EX) around metadata mutations
//	                               (commit, remove, prepare) by any process
//	<root>/empty/                  always empty; the lower dir of a 0-layer rootfs
//	<root>/committed/<hex>/fs/     one layer's own diff in overlay format (whiteouts are
//	                               0/0 char devices, opaque dirs carry
//	                               trusted.overlay.opaque=y); <hex> is the sha256 chain ID
//	<root>/committed/<hex>/meta.json   {"parent":"sha256:..","diffID":"sha256:..","size":N}
//	<root>/active/<key>/upper/     a container's writable layer (overlay upperdir)
//	<root>/active/<key>/work/      overlay workdir
//	<root>/active/<key>/meta.json  {"parent":"sha256:.."} ("" for an empty rootfs)
//	<root>/tmp/<name>/             work in progress; flocked by its owner while alive
//
// # Crash safety
//
// Nothing becomes visible under committed/ or active/ except by a single
// rename(2) of a complete directory out of tmp/: a layer is unpacked into
// tmp/<name>/fs, its digests are verified, meta.json is written beside it, one
// syncfs(2) makes all of it durable, and only then is tmp/<name> renamed to
// committed/<hex> (and committed/ fsynced so the rename itself is durable).
// Removal is the same in reverse: the directory is first renamed into a
// tmp/ directory, which makes it disappear atomically, and then deleted. A
// kill -9 at any point therefore leaves either the old or the new state plus
// some garbage in tmp/. Open deletes that garbage; it skips tmp/ entries
// whose flock is still held, because those belong to a live Apply or Remove
// in another process (flocks vanish with their process, so a crashed owner
// never pins its leftovers).
//
// Because a committed directory is complete by construction, two concurrent
// Applies of the same layer can both unpack it: the first rename wins, the
// second fails with ENOTEMPTY/EEXIST and the loser deletes its own copy and
// returns the winner's chain ID.
package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

const (
	committedDir = "committed"
	activeDir    = "active"
	tmpDir       = "tmp"
	emptyDir     = "empty"
	lockFile     = "lock"
	tmpLockFile  = "tmp.lock" // held from mkdir to flock of a tmp/ entry, and by cleanTmp's scan
	metaFile     = "meta.json"
	layerFSDir   = "fs"
)

// Store is a snapshot store rooted at one directory. It is safe for
// concurrent use by several goroutines and several processes.
type Store struct {
	root string
}

// Info describes a committed layer.
type Info struct {
	ChainID digest.Digest `json:"-"`
	Parent  digest.Digest `json:"parent,omitempty"`
	DiffID  digest.Digest `json:"diffID"`
	// Size is the number of bytes of regular-file content in the layer's
	// own diff (not counting its parents).
	Size int64 `json:"size"`
}

// activeMeta is the content of active/<key>/meta.json.
type activeMeta struct {
	Parent digest.Digest `json:"parent,omitempty"`
}

// Open opens (creating if needed) the store at root and removes leftovers of
// crashed operations from root/tmp.
func Open(root string) (*Store, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("snapshot: open %s: %w", root, err)
	}
	s := &Store{root: abs}
	for _, d := range []string{"", committedDir, activeDir, tmpDir, emptyDir} {
		if err := os.MkdirAll(filepath.Join(abs, d), 0o700); err != nil {
			return nil, fmt.Errorf("snapshot: open %s: %w", root, err)
		}
	}
	// The empty lower dir must be world-traversable like any rootfs dir.
	if err := os.Chmod(filepath.Join(abs, emptyDir), 0o755); err != nil {
		return nil, fmt.Errorf("snapshot: open %s: %w", root, err)
	}
	if err := s.cleanTmp(); err != nil {
		return nil, fmt.Errorf("snapshot: open %s: %w", root, err)
	}
	return s, nil
}

// cleanTmp removes every tmp/ entry that no live process holds a flock on. The scan runs
// under tmp.lock, which newWorkDir also holds from mkdir to flock: without it, an
// entry another process has just made but not yet locked would look abandoned.
func (s *Store) cleanTmp() error {
	dir := filepath.Join(s.root, tmpDir)
	unlock, err := s.tmpLock()
	if err != nil {
		return err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		unlock()
		return err
	}
	type stale struct {
		path string
		fd   int
	}
	var gone []stale
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
		if err == nil {
			if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
				unix.Close(fd)
				continue // owned by a live Apply/Remove in another process
			}
		} else {
			fd = -1
		}
		gone = append(gone, stale{p, fd})
	}
	unlock()
	// Delete outside the store lock, holding each entry's own lock.
	var errs []error
	for _, g := range gone {
		if err := os.RemoveAll(g.path); err != nil {
			errs = append(errs, err)
		}
		if g.fd >= 0 {
			unix.Close(g.fd)
		}
	}
	return errors.Join(errs...)
}

// workDir is a locked directory under tmp/.
type workDir struct {
	path string
	fd   int
}

// newWorkDir creates tmp/<prefix>-<random> and flocks it so that a
// concurrent Open in another process does not delete it under us; both happen under
// tmp.lock (see cleanTmp).
func (s *Store) newWorkDir(prefix string) (*workDir, error) {
	unlock, err := s.tmpLock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	p, err := os.MkdirTemp(filepath.Join(s.root, tmpDir), prefix+"-")
	if err != nil {
		return nil, err
	}
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		os.RemoveAll(p)
		return nil, err
	}
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		unix.Close(fd)
		os.RemoveAll(p)
		return nil, err
	}
	return &workDir{path: p, fd: fd}, nil
}

// discard deletes the work dir (if it is still there) and drops the lock.
func (w *workDir) discard() error {
	var err error
	if w.path != "" {
		err = os.RemoveAll(w.path)
	}
	w.release()
	return err
}

// published records that the work dir was renamed into place: discard
// must then not delete by its old name, which a new work dir could reuse.
func (w *workDir) published() {
	w.path = ""
	w.release()
}

// release drops the lock without deleting (after the dir was renamed away).
func (w *workDir) release() {
	if w.fd >= 0 {
		unix.Close(w.fd)
		w.fd = -1
	}
}

// lock takes the store-wide metadata lock. It is held only around short
// check-then-rename sequences, never across unpacking.
func (s *Store) lock() (func(), error) { return s.lockNamed(lockFile) }

// tmpLock serialises creating tmp/ entries with cleaning them (see cleanTmp); it is separate
// from the metadata lock because Remove makes a tmp/ entry while holding that one.
func (s *Store) tmpLock() (func(), error) { return s.lockNamed(tmpLockFile) }

func (s *Store) lockNamed(name string) (func(), error) {
	fd, err := unix.Open(filepath.Join(s.root, name), unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("snapshot: lock: %w", err)
	}
	// Each call opens its own file description, so the flock also excludes
	// other goroutines of this process.
	for {
		err = unix.Flock(fd, unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("snapshot: lock: %w", err)
	}
	return func() { unix.Close(fd) }, nil
}

// ChainID computes the OCI chain ID: ChainID(parent, diffID) =
// sha256(parent + " " + diffID), or diffID for the base layer (parent == "").
func ChainID(parent, diffID digest.Digest) digest.Digest {
	if parent == "" {
		return diffID
	}
	return digest.NewDigestFromBytes(digest.SHA256, sha256Sum([]byte(string(parent)+" "+string(diffID))))
}

func sha256Sum(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}

// checkChainID rejects anything but a well-formed sha256 digest, because
// its hex part becomes a directory name.
func checkChainID(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("%w: chain ID %q: %v", ErrInvalidArgument, d, err)
	}
	if d.Algorithm() != digest.SHA256 {
		return fmt.Errorf("%w: chain ID %q: only sha256 is supported", ErrInvalidArgument, d)
	}
	return nil
}

func (s *Store) chainPath(chainID digest.Digest) string {
	return filepath.Join(s.root, committedDir, chainID.Encoded())
}

// layerPath is the unpacked directory of a committed chain.
func (s *Store) layerPath(chainID digest.Digest) string {
	return filepath.Join(s.chainPath(chainID), layerFSDir)
}

// Exists reports whether chainID is committed.
func (s *Store) Exists(chainID digest.Digest) bool {
	if checkChainID(chainID) != nil {
		return false
	}
	_, err := os.Stat(filepath.Join(s.chainPath(chainID), metaFile))
	return err == nil
}

// Info returns the metadata of a committed chain.
func (s *Store) Info(chainID digest.Digest) (Info, error) {
	if err := checkChainID(chainID); err != nil {
		return Info{}, err
	}
	b, err := os.ReadFile(filepath.Join(s.chainPath(chainID), metaFile))
	if errors.Is(err, fs.ErrNotExist) {
		return Info{}, fmt.Errorf("snapshot: info %s: %w", chainID, ErrNotFound)
	}
	if err != nil {
		return Info{}, fmt.Errorf("snapshot: info %s: %w", chainID, err)
	}
	var info Info
	if err := json.Unmarshal(b, &info); err != nil {
		return Info{}, fmt.Errorf("snapshot: info %s: corrupt %s: %w", chainID, metaFile, err)
	}
	info.ChainID = chainID
	return info, nil
}

// Walk calls fn for every committed chain, in directory order. It stops at
// and returns the first error fn returns.
func (s *Store) Walk(fn func(Info) error) error {
	ents, err := os.ReadDir(filepath.Join(s.root, committedDir))
	if err != nil {
		return fmt.Errorf("snapshot: walk: %w", err)
	}
	for _, e := range ents {
		info, err := s.Info(digest.NewDigestFromEncoded(digest.SHA256, e.Name()))
		if errors.Is(err, ErrNotFound) {
			continue // removed concurrently
		}
		if err != nil {
			return err
		}
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

// Remove deletes a committed chain. It refuses (ErrInUse) while another
// committed chain or an active snapshot has it as parent.
func (s *Store) Remove(ctx context.Context, chainID digest.Digest) error {
	if err := checkChainID(chainID); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if !s.Exists(chainID) {
		return fmt.Errorf("snapshot: remove %s: %w", chainID, ErrNotFound)
	}
	errUsed := errors.New("used")
	var user string
	err = s.Walk(func(i Info) error {
		if i.Parent == chainID {
			user = "layer " + i.ChainID.String()
			return errUsed
		}
		return nil
	})
	if err == nil {
		err = s.walkActive(func(key string, m activeMeta) error {
			if m.Parent == chainID {
				user = "active snapshot " + key
				return errUsed
			}
			return nil
		})
	}
	if err == errUsed {
		return fmt.Errorf("snapshot: remove %s: parent of %s: %w", chainID, user, ErrInUse)
	}
	if err != nil {
		return err
	}
	return s.trash(s.chainPath(chainID), filepath.Join(s.root, committedDir))
}

// trash makes dir disappear atomically by renaming it into a locked tmp/
// work dir, then deletes it. parent is fsynced so the disappearance is
// durable before the slow delete starts.
func (s *Store) trash(dir, parent string) error {
	w, err := s.newWorkDir("rm")
	if err != nil {
		return fmt.Errorf("snapshot: remove %s: %w", dir, err)
	}
	if err := os.Rename(dir, filepath.Join(w.path, "victim")); err != nil {
		w.discard()
		return fmt.Errorf("snapshot: remove %s: %w", dir, err)
	}
	if err := fsyncDir(parent); err != nil {
		w.discard()
		return fmt.Errorf("snapshot: remove %s: %w", dir, err)
	}
	if err := w.discard(); err != nil {
		// Already invisible; Open will finish the job.
		return fmt.Errorf("snapshot: remove %s: %w", dir, err)
	}
	return nil
}

func fsyncDir(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Fsync(fd)
}

// writeJSON writes v to path (inside a not-yet-visible work dir: the
// directory rename that publishes it is what makes it atomic).
func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// checkKey accepts ^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$ (a loop: the regexp cost every berth
// command 2 ms of package init).
func checkKey(key string) error {
	ok := len(key) > 0 && len(key) <= 128
	for i := 0; ok && i < len(key); i++ {
		c := key[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		ok = alnum || i > 0 && (c == '_' || c == '.' || c == '-')
	}
	if !ok {
		return fmt.Errorf("%w: active snapshot key %q", ErrInvalidArgument, key)
	}
	return nil
}

func (s *Store) activePath(key string) string {
	return filepath.Join(s.root, activeDir, key)
}

func (s *Store) readActive(key string) (activeMeta, error) {
	var m activeMeta
	b, err := os.ReadFile(filepath.Join(s.activePath(key), metaFile))
	if errors.Is(err, fs.ErrNotExist) {
		return m, fmt.Errorf("snapshot: active %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return m, fmt.Errorf("snapshot: active %s: %w", key, err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("snapshot: active %s: corrupt %s: %w", key, metaFile, err)
	}
	return m, nil
}

func (s *Store) walkActive(fn func(string, activeMeta) error) error {
	ents, err := os.ReadDir(filepath.Join(s.root, activeDir))
	if err != nil {
		return err
	}
	for _, e := range ents {
		m, err := s.readActive(e.Name())
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if err := fn(e.Name(), m); err != nil {
			return err
		}
	}
	return nil
}

// PrepareOpt is an option of Prepare.
type PrepareOpt func(*prepareOpts)

type prepareOpts struct{ noSync bool }

// NoSync skips the directory fsync that makes a new active snapshot survive a power loss:
// for a snapshot that must not outlive its process anyway (a `run --rm` container).
func NoSync() PrepareOpt { return func(o *prepareOpts) { o.noSync = true } }

// Prepare makes an active snapshot (empty upper and work dirs) on top of
// chain ("" for an empty rootfs).
func (s *Store) Prepare(ctx context.Context, key string, chain digest.Digest, opts ...PrepareOpt) error {
	var o prepareOpts
	for _, f := range opts {
		f(&o)
	}
	if err := checkKey(key); err != nil {
		return err
	}
	if chain != "" {
		if err := checkChainID(chain); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	w, err := s.newWorkDir("active")
	if err != nil {
		return fmt.Errorf("snapshot: prepare %s: %w", key, err)
	}
	defer w.discard()
	if err := os.Mkdir(filepath.Join(w.path, "upper"), 0o755); err != nil {
		return fmt.Errorf("snapshot: prepare %s: %w", key, err)
	}
	if err := os.Mkdir(filepath.Join(w.path, "work"), 0o700); err != nil {
		return fmt.Errorf("snapshot: prepare %s: %w", key, err)
	}
	if err := writeJSON(filepath.Join(w.path, metaFile), activeMeta{Parent: chain}); err != nil {
		return fmt.Errorf("snapshot: prepare %s: %w", key, err)
	}
	// The parent check and the publishing rename happen under the store
	// lock so that a concurrent Remove cannot delete the parent in between.
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if chain != "" && !s.Exists(chain) {
		return fmt.Errorf("snapshot: prepare %s: parent %s: %w", key, chain, ErrNotFound)
	}
	if err := os.Rename(w.path, s.activePath(key)); err != nil {
		if errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("snapshot: prepare %s: %w", key, ErrExists)
		}
		return fmt.Errorf("snapshot: prepare %s: %w", key, err)
	}
	w.published()
	if o.noSync {
		return nil
	}
	if err := fsyncDir(filepath.Join(s.root, activeDir)); err != nil {
		return fmt.Errorf("snapshot: prepare %s: %w", key, err)
	}
	return nil
}

// RemoveActive deletes an active snapshot. It refuses (ErrInUse) while its
// overlay is mounted in this mount namespace.
func (s *Store) RemoveActive(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	unlock, err := s.lock()
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := s.readActive(key); err != nil {
		return fmt.Errorf("snapshot: remove active: %w", err)
	}
	mounted, err := overlayMounted(filepath.Join(s.activePath(key), "upper"))
	if err != nil {
		return fmt.Errorf("snapshot: remove active %s: %w", key, err)
	}
	if mounted {
		return fmt.Errorf("snapshot: remove active %s: still mounted: %w", key, ErrInUse)
	}
	return s.trash(s.activePath(key), filepath.Join(s.root, activeDir))
}

// overlayMounted reports whether an overlay with this upperdir is in
// /proc/self/mountinfo.
func overlayMounted(upper string) (bool, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	want := "upperdir=" + mountinfoEscape(upper)
	for _, line := range strings.Split(string(b), "\n") {
		_, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		f := strings.Fields(post)
		if len(f) < 3 || f[0] != "overlay" {
			continue
		}
		for _, o := range strings.Split(f[2], ",") {
			if o == want {
				return true, nil
			}
		}
	}
	return false, nil
}

// mountinfoEscape mirrors the kernel's octal escaping of mountinfo fields.
func mountinfoEscape(s string) string {
	r := strings.NewReplacer(" ", `\040`, "\t", `\011`, "\n", `\012`, `\`, `\134`, ",", `\054`)
	return r.Replace(s)
}

// Usage returns the bytes of regular-file content in committed layers (from
// their metadata) and in active upper dirs (walked; hard links counted once).
func (s *Store) Usage() (committed int64, active int64, err error) {
	err = s.Walk(func(i Info) error {
		committed += i.Size
		return nil
	})
	if err != nil {
		return 0, 0, err
	}
	seen := map[[2]uint64]bool{}
	err = s.walkActive(func(key string, _ activeMeta) error {
		return filepath.WalkDir(filepath.Join(s.activePath(key), "upper"), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if !d.Type().IsRegular() {
				return nil
			}
			var st unix.Stat_t
			if err := unix.Lstat(p, &st); err != nil {
				if errors.Is(err, unix.ENOENT) {
					return nil
				}
				return err
			}
			id := [2]uint64{st.Dev, st.Ino}
			if st.Nlink > 1 {
				if seen[id] {
					return nil
				}
				seen[id] = true
			}
			active += st.Size
			return nil
		})
	})
	if err != nil {
		return 0, 0, fmt.Errorf("snapshot: usage: %w", err)
	}
	return committed, active, nil
}

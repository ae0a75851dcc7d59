package files

// docker diff from an overlay upper dir.
//
//	upper dir entry                          change
//	char device 0/0 (whiteout)               Deleted
//	directory with trusted.overlay.opaque=y  Modified if the lower view has the path (and
//	                                         Deleted for each lower child it hides), else Added
//	anything else                            Modified if the lower view has the path, else Added;
//	                                         a directory whose mode, size and mtime equal the
//	                                         lower one is not itself a change
//	below an opaque directory                Added (the lower content is hidden)
//
// As docker does, the parent directory of an Added or Deleted path is
// reported Modified even when its own metadata did not change. "The lower
// view" is the merged stack of lowerDirs (top first, as in overlay's
// lowerdir=), honouring whiteouts and opaque directories in the lower
// layers themselves. The upper dir may belong to a running container, so it
// is read fd-relative with O_NOFOLLOW.

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"
)

// Changes lists the changes of an overlay upper dir against its lower dirs
// (top layer first), sorted by path.
func Changes(ctx context.Context, upperDir string, lowerDirs []string) ([]container.FilesystemChange, error) {
	upper, err := unix.Open(upperDir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("diff: %s: %w", upperDir, err)
	}
	defer unix.Close(upper)
	lv := &lowerView{}
	defer lv.close()
	for _, l := range lowerDirs {
		fd, err := unix.Open(l, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("diff: lower %s: %w", l, err)
		}
		lv.fds = append(lv.fds, fd)
	}
	d := &differ{ctx: ctx, lower: lv, seen: map[string]bool{}, changedDirs: map[string]bool{}}
	if err := d.dir(upper, "/", false); err != nil {
		return nil, fmt.Errorf("diff: %w", err)
	}
	slices.SortFunc(d.out, func(a, b container.FilesystemChange) int { return strings.Compare(a.Path, b.Path) })
	return d.out, nil
}

type differ struct {
	ctx         context.Context
	lower       *lowerView
	out         []container.FilesystemChange
	seen        map[string]bool // paths already reported
	changedDirs map[string]bool // directories reported (docker's rule for parents)
}

func (d *differ) add(p string, kind container.ChangeType) {
	if d.seen[p] {
		return
	}
	d.seen[p] = true
	d.out = append(d.out, container.FilesystemChange{Path: p, Kind: kind})
}

// parentChanged reports p's parent as Modified once (docker's rule).
func (d *differ) parentChanged(p string) {
	parent := path.Dir(p)
	if parent == "/" || d.changedDirs[parent] {
		return
	}
	d.changedDirs[parent] = true
	d.add(parent, container.ChangeModify)
}

// dir walks upper directory dirfd, which is container path p; hidden means
// the lower view is hidden below p (an opaque directory above).
func (d *differ) dir(dirfd int, p string, hidden bool) error {
	names, err := readDirNames(dirfd)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	for _, name := range names {
		if err := d.ctx.Err(); err != nil {
			return err
		}
		if err := d.entry(dirfd, path.Join(p, name), name, hidden); err != nil {
			return err
		}
	}
	return nil
}

func (d *differ) entry(dirfd int, p, name string, hidden bool) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if err == unix.ENOENT {
			return nil
		}
		return fmt.Errorf("%s: %w", p, err)
	}
	if isWhiteout(&st) {
		if !hidden {
			d.add(p, container.ChangeDelete)
			d.parentChanged(p)
		}
		return nil
	}
	var lst unix.Stat_t
	inLower := !hidden && d.lower.lookup(p, &lst)
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		if inLower {
			d.add(p, container.ChangeModify)
		} else {
			d.add(p, container.ChangeAdd)
			d.parentChanged(p)
		}
		return nil
	}

	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if err == unix.ENOENT || err == unix.ENOTDIR || err == unix.ELOOP {
			return nil // replaced while we walk
		}
		return fmt.Errorf("%s: %w", p, err)
	}
	defer unix.Close(fd)
	opaque := isOpaque(fd)
	switch {
	case !inLower:
		d.add(p, container.ChangeAdd)
		d.changedDirs[p] = true
		d.parentChanged(p)
	case opaque:
		d.add(p, container.ChangeModify)
		d.changedDirs[p] = true
		for _, n := range d.lower.list(p) {
			if unix.Fstatat(fd, n, &unix.Stat_t{}, unix.AT_SYMLINK_NOFOLLOW) == unix.ENOENT {
				d.add(path.Join(p, n), container.ChangeDelete)
			}
		}
	case lst.Mode&unix.S_IFMT == unix.S_IFDIR && lst.Mode == st.Mode && lst.Size == st.Size && sameTime(&lst.Mtim, &st.Mtim):
		// Only copied up because something below changed.
	default:
		d.add(p, container.ChangeModify)
		d.changedDirs[p] = true
	}
	return d.dir(fd, p, hidden || opaque || !inLower)
}

// sameTime compares mtimes as docker does: to the second when either side
// lacks nanoseconds.
func sameTime(a, b *unix.Timespec) bool {
	if a.Nsec == 0 || b.Nsec == 0 {
		return a.Sec == b.Sec
	}
	return *a == *b
}

func isWhiteout(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

// isOpaque reads overlay's opaque marker (trusted.*, or user.* for
// userxattr mounts) on an open directory.
func isOpaque(fd int) bool {
	for _, name := range []string{"trusted.overlay.opaque", "user.overlay.opaque"} {
		buf := make([]byte, 4)
		n, err := unix.Fgetxattr(fd, name, buf)
		if err == nil && n == 1 && buf[0] == 'y' {
			return true
		}
	}
	return false
}

// lowerView looks paths up in a stack of overlay-format lower dirs.
type lowerView struct {
	fds []int // top first
}

func (lv *lowerView) close() {
	for _, fd := range lv.fds {
		unix.Close(fd)
	}
}

type layerState int

const (
	absent layerState = iota
	present
	whitedOut
)

// walkResult is what one lower layer says about a path.
type walkResult struct {
	state   layerState
	blocked bool // the layers below cannot contribute this path
	st      unix.Stat_t
	dirfd   int // an open fd of the path when asked for and a directory, else -1
}

// walk looks container path p up in one overlay-format layer, component by
// component without following symlinks. A whiteout, a non-directory or an
// opaque directory on the way hides the layers below.
func walk(layer int, p string, wantDir bool) walkResult {
	r := walkResult{dirfd: -1}
	comps := strings.Split(strings.TrimPrefix(p, "/"), "/")
	fd := layer
	defer func() {
		if fd != layer {
			unix.Close(fd)
		}
	}()
	for i, c := range comps {
		if err := unix.Fstatat(fd, c, &r.st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return r // absent; blocked if an opaque directory was passed
		}
		if isWhiteout(&r.st) {
			r.state, r.blocked = whitedOut, true
			return r
		}
		isDir := r.st.Mode&unix.S_IFMT == unix.S_IFDIR
		if i == len(comps)-1 {
			r.state, r.blocked = present, true
			if wantDir && isDir {
				r.dirfd, _ = unix.Openat(fd, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
				if r.dirfd < 0 {
					r.dirfd = -1
				}
			}
			return r
		}
		if !isDir {
			r.blocked = true
			return r
		}
		next, err := unix.Openat(fd, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			r.blocked = true
			return r
		}
		if fd != layer {
			unix.Close(fd)
		}
		fd = next
		if isOpaque(fd) {
			r.blocked = true
		}
	}
	return r
}

// lookup reports whether container path p exists in the merged lower view
// (st then describes it).
func (lv *lowerView) lookup(p string, st *unix.Stat_t) bool {
	for _, layer := range lv.fds {
		r := walk(layer, p, false)
		if r.state == present {
			*st = r.st
			return true
		}
		if r.blocked {
			return false
		}
	}
	return false
}

// list returns the names in directory p of the merged lower view.
func (lv *lowerView) list(p string) []string {
	present := map[string]bool{}
	gone := map[string]bool{}
	for _, layer := range lv.fds {
		r := walk(layer, p, true)
		if r.state == absent && !r.blocked {
			continue
		}
		if r.dirfd < 0 {
			break // whited out, hidden, or not a directory here
		}
		names, err := readDirNames(r.dirfd)
		for _, n := range names {
			if present[n] || gone[n] {
				continue
			}
			var cst unix.Stat_t
			if unix.Fstatat(r.dirfd, n, &cst, unix.AT_SYMLINK_NOFOLLOW) == nil && isWhiteout(&cst) {
				gone[n] = true
			} else {
				present[n] = true
			}
		}
		opaque := isOpaque(r.dirfd)
		unix.Close(r.dirfd)
		if err != nil || opaque {
			break
		}
	}
	out := make([]string, 0, len(present))
	for n := range present {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

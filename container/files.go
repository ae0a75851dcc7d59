package container

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	containertypes "github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/container/files"
)

// WithRootfs calls fn with a host path that shows the container's file system. With
// withMounts, for a running container that is /proc/<pid>/root, which includes its volumes
// and tmpfs mounts (docker cp's view); otherwise the overlay rootfs alone (docker export's),
// mounted for the call when the container is stopped (under the container's lock).
func (m *Manager) WithRootfs(ctx context.Context, rec *Record, withMounts bool, fn func(root string) error) error {
	if st := m.Status(rec); st.Running() {
		if withMounts {
			return fn(fmt.Sprintf("/proc/%d/root", st.Pid))
		}
		return fn(m.rootfs(rec.ID))
	}
	unlock, err := m.lock(rec.ID)
	if err != nil {
		return err
	}
	defer unlock()
	if st := m.Status(rec); st.Running() {
		return fn(m.rootfs(rec.ID))
	}
	if err := m.mountRootfs(ctx, rec.ID); err != nil {
		return err
	}
	defer m.unmountRootfs(rec.ID)
	return fn(m.rootfs(rec.ID))
}

// Changes lists what the container changed in its image (docker diff).
func (m *Manager) Changes(rec *Record) ([]containertypes.FilesystemChange, error) {
	lowers, err := m.Snapshots.LowerDirs(rec.ID)
	if err != nil {
		return nil, err
	}
	changes, err := files.Changes(context.Background(), m.Snapshots.UpperDir(rec.ID), lowers)
	if err != nil {
		return nil, err
	}
	skip := m.initLayer(rec.ID)
	// A directory reported only because an init-layer mount point was created in it (C /etc
	// for /etc/hosts) is no change either.
	parents := map[string]bool{}
	for p := range skip {
		for d := path.Dir("/" + p); d != "/"; d = path.Dir(d) {
			parents[d] = true
		}
	}
	var out []containertypes.FilesystemChange
	for _, c := range changes {
		if skip[strings.TrimPrefix(c.Path, "/")] {
			continue
		}
		out = append(out, c)
	}
	var kept []containertypes.FilesystemChange
	for _, c := range out {
		if parents[c.Path] && c.Kind == containertypes.ChangeModify && !hasChild(out, c.Path) {
			continue
		}
		kept = append(kept, c)
	}
	return kept, nil
}

func hasChild(changes []containertypes.FilesystemChange, dir string) bool {
	for _, c := range changes {
		if strings.HasPrefix(c.Path, dir+"/") {
			return true
		}
	}
	return false
}

// Export writes the container's whole file system as a tar (docker export).
func (m *Manager) Export(ctx context.Context, rec *Record, w io.Writer) error {
	return m.WithRootfs(ctx, rec, false, func(root string) error { return files.Export(ctx, root, w) })
}

// UpperDir is the container's writable layer.
func (m *Manager) UpperDir(id string) string { return m.Snapshots.UpperDir(id) }

// initPaths are the mount points the runtime may create in a container's upper dir for
// berth's own mounts (docker's "init layer"): they are not changes of the container, so
// diff and commit leave them out when they are still empty mount points.
var initPaths = []string{"etc/hostname", "etc/hosts", "etc/resolv.conf", "etc/mtab", ".dockerenv",
	"dev/console", "dev/shm", "dev/pts", "dev/mqueue", "proc", "sys", "dev"}

// initLayer returns those of initPaths that are bare mount points in the upper dir (an empty
// file or directory), as tar names.
func (m *Manager) initLayer(id string) map[string]bool {
	upper := m.Snapshots.UpperDir(id)
	out := map[string]bool{}
	for _, p := range initPaths {
		fi, err := os.Lstat(filepath.Join(upper, p))
		if err != nil {
			continue
		}
		switch {
		case fi.Mode().IsRegular() && fi.Size() == 0:
			out[p] = true
		case fi.IsDir():
			if ents, err := os.ReadDir(filepath.Join(upper, p)); err == nil && len(ents) == 0 {
				out[p] = true
			}
		}
	}
	return out
}

// Diff writes the container's changes as an uncompressed layer tar (for commit).
func (m *Manager) Diff(ctx context.Context, rec *Record, w io.Writer) error {
	_, _, err := m.Snapshots.DiffExcluding(ctx, rec.ID, w, m.initLayer(rec.ID))
	return err
}

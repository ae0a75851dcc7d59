package container

import (
	"context"
	"fmt"
	"io"

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
	return files.Changes(context.Background(), m.Snapshots.UpperDir(rec.ID), lowers)
}

// Export writes the container's whole file system as a tar (docker export).
func (m *Manager) Export(ctx context.Context, rec *Record, w io.Writer) error {
	return m.WithRootfs(ctx, rec, false, func(root string) error { return files.Export(ctx, root, w) })
}

// UpperDir is the container's writable layer.
func (m *Manager) UpperDir(id string) string { return m.Snapshots.UpperDir(id) }

package cgroups

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/opencontainers/cgroups"
	// Imported for its side effect: it installs cgroups.DevicesSetV1/V2.
	// Without it the library refuses device rules (ErrDevicesUnsupported)
	// and cannot build the v2 eBPF device filter.
	_ "github.com/opencontainers/cgroups/devices"
	"github.com/opencontainers/cgroups/manager"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Manager is the cgroup of one container. It holds no kernel state, so any
// process can rebuild it with New from the container's saved configuration.
type Manager struct {
	id   string
	path string // absolute path inside the hierarchy, e.g. "/berth/<id>"
	mode Mode
	// lm is the library manager, built once: building it resolves every
	// controller's mount point, and one runtime command asks several times.
	lm cgroups.Manager
}

// New returns a manager for the container's cgroup; see the package doc for
// how cgroupsPath is resolved. Nothing is created yet.
func New(cgroupsPath, id string, useSystemd bool) (*Manager, error) {
	p, err := resolvePath(cgroupsPath, id, useSystemd)
	if err != nil {
		return nil, err
	}
	return &Manager{id: id, path: p, mode: DetectMode()}, nil
}

// Path is the resolved cgroup path relative to the hierarchy root.
func (m *Manager) Path() string { return m.path }

// Mode is the host layout the manager was built for.
func (m *Manager) Mode() Mode { return m.mode }

// lib builds the library manager (fs on v1/hybrid, fs2 on v2). res is what
// the library consults while creating/joining the cgroup (v1 cpu and cpuset
// need it then); Set takes its resources separately.
func (m *Manager) lib(res *cgroups.Resources) (cgroups.Manager, error) {
	if res == nil && m.lm != nil {
		return m.lm, nil
	}
	cached := res == nil
	if res == nil {
		res = &cgroups.Resources{}
	}
	var paths map[string]string // nil: the library finds them (v2: one directory, no lookup)
	if m.mode != Unified {
		var err error
		if paths, err = v1Paths(m.path); err != nil {
			return nil, fmt.Errorf("cgroup %s: %w", m.path, err)
		}
	}
	lm, err := manager.NewWithPaths(&cgroups.Cgroup{Path: m.path, Resources: res}, paths)
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", m.path, err)
	}
	if cached {
		m.lm = lm
	}
	return lm, nil
}

// Create makes the cgroup (every v1 controller, or the v2 directory with its
// parents' controllers enabled) and applies r. Reusing an existing, empty
// cgroup is allowed (as runc does, e.g. for a pre-made parent-owned path);
// one that already holds processes belongs to someone else and is refused.
func (m *Manager) Create(r *specs.LinuxResources) error {
	res, err := FromSpec(r)
	if err != nil {
		return err
	}
	// SkipDevices also stops the v1 devices controller from creating its
	// directory; the directory must exist regardless of whether we write rules.
	createRes := *res
	createRes.SkipDevices = false
	// One library manager serves the checks and the creation: building one resolves every
	// controller's mount point, a good part of a cold create.
	lm, err := m.lib(&createRes)
	if err != nil {
		return err
	}
	existed := lm.Exists()
	if existed {
		if pids, err := lm.GetAllPids(); err == nil && len(pids) > 0 {
			return fmt.Errorf("cgroup %s: %w (%d processes)", m.path, ErrNotEmpty, len(pids))
		}
	}
	if m.mode != Unified && !existed {
		if err := m.createV1(lm, r, res); err != nil {
			return m.undoCreate(lm, false, err)
		}
		m.lm = lm
		return nil
	}
	if err := lm.Apply(-1); err != nil {
		return m.undoCreate(lm, existed, fmt.Errorf("create cgroup %s: %w", m.path, err))
	}
	if err := lm.Set(res); err != nil {
		return m.undoCreate(lm, existed, fmt.Errorf("set resources on cgroup %s: %w", m.path, err))
	}
	// A manager built before the directories existed may have left controllers out.
	m.lm = lm
	return nil
}

func (m *Manager) undoCreate(lm cgroups.Manager, existed bool, err error) error {
	if !existed {
		if derr := lm.Destroy(); derr != nil {
			err = errors.Join(err, derr)
		}
	}
	return err
}

// CloneIntoFD opens the v2 cgroup directory for clone3(CLONE_INTO_CGROUP),
// which lets the container process start life inside its cgroup, so no
// limit is ever missing, not even for a moment. On v1/hybrid the controllers
// are not in the v2 tree, so the caller must fall back to Apply.
func (m *Manager) CloneIntoFD() (int, bool, error) {
	if m.mode != Unified {
		return -1, false, nil
	}
	lm, err := m.lib(nil)
	if err != nil {
		return -1, false, err
	}
	dir := lm.Path("")
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_CLOEXEC|unix.O_RDONLY, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return -1, false, fmt.Errorf("cgroup %s: %w", m.path, ErrNotExist)
		}
		return -1, false, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	return fd, true, nil
}

// Apply moves pid into the cgroup. The cgroup must have been created: a
// missing one means Create was skipped or Destroy already ran, and silently
// recreating it would run the process without its limits.
func (m *Manager) Apply(pid int) error {
	if !m.Exists() {
		return fmt.Errorf("cgroup %s: %w", m.path, ErrNotExist)
	}
	lm, err := m.lib(nil)
	if err != nil {
		return err
	}
	if m.mode != Unified && m.applyV1(lm, pid) == nil {
		return nil
	}
	if err := lm.Apply(pid); err != nil {
		return fmt.Errorf("move pid %d into cgroup %s: %w", pid, m.path, err)
	}
	return nil
}

// applyV1 writes pid into every hierarchy's cgroup.procs of a cgroup Create made. The
// library's Apply first re-ensures every directory and copies cpuset values down from the
// parents again, which Create already did; on the start path that is a few milliseconds.
// Any failure falls back to the library.
func (m *Manager) applyV1(lm cgroups.Manager, pid int) error {
	b := []byte(strconv.Itoa(pid))
	for _, dir := range lm.GetPaths() {
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), b, 0); err != nil {
			return err
		}
	}
	return nil
}

// Set applies r to the existing cgroup. Unset fields keep their current
// value; an empty device list leaves the device rules alone (see FromSpec).
func (m *Manager) Set(r *specs.LinuxResources) error {
	res, err := FromSpec(r)
	if err != nil {
		return err
	}
	if !m.Exists() {
		return fmt.Errorf("cgroup %s: %w", m.path, ErrNotExist)
	}
	lm, err := m.lib(nil)
	if err != nil {
		return err
	}
	if err := lm.Set(res); err != nil {
		return fmt.Errorf("set resources on cgroup %s: %w", m.path, err)
	}
	return nil
}

// Freeze stops every process in the cgroup (pause).
func (m *Manager) Freeze() error { return m.setFreezer(cgroups.Frozen) }

// Thaw resumes a frozen cgroup (resume).
func (m *Manager) Thaw() error { return m.setFreezer(cgroups.Thawed) }

func (m *Manager) setFreezer(state cgroups.FreezerState) error {
	lm, err := m.lib(nil)
	if err != nil {
		return err
	}
	if err := lm.Freeze(state); err != nil {
		return fmt.Errorf("freezer %s on cgroup %s: %w", state, m.path, err)
	}
	return nil
}

// Paused reports whether the cgroup is frozen.
func (m *Manager) Paused() (bool, error) {
	lm, err := m.lib(nil)
	if err != nil {
		return false, err
	}
	st, err := lm.GetFreezerState()
	if err != nil {
		return false, err
	}
	return st == cgroups.Frozen, nil
}

// Pids lists every process in the cgroup and its sub-cgroups (containers may
// create their own sub-cgroups when given a writable cgroupfs).
func (m *Manager) Pids() ([]int, error) {
	lm, err := m.lib(nil)
	if err != nil {
		return nil, err
	}
	return lm.GetAllPids()
}

// Stats returns the library's statistics for the cgroup.
func (m *Manager) Stats() (*cgroups.Stats, error) {
	lm, err := m.lib(nil)
	if err != nil {
		return nil, err
	}
	return lm.GetStats()
}

// OOMKillCount is the number of processes the kernel OOM killer has killed in
// the cgroup (v1 memory.oom_control, v2 memory.events "oom_kill").
func (m *Manager) OOMKillCount() (uint64, error) {
	lm, err := m.lib(nil)
	if err != nil {
		return 0, err
	}
	return lm.OOMKillCount()
}

// Destroy removes the cgroup directories, including sub-cgroups. A cgroup
// that is already gone is fine. One that still has processes is refused up
// front: rmdir would fail with EBUSY anyway, but only after the library's
// retry loop, and the caller should kill the processes first.
func (m *Manager) Destroy() error {
	lm, err := m.lib(nil)
	if err != nil {
		return err
	}
	if m.mode != Unified && removeV1(lm.GetPaths()) == nil {
		return nil
	}
	if pids, err := lm.GetAllPids(); err == nil && len(pids) > 0 {
		return fmt.Errorf("destroy cgroup %s: %w (%d processes)", m.path, ErrNotEmpty, len(pids))
	}
	if err := lm.Destroy(); err != nil {
		return fmt.Errorf("destroy cgroup %s: %w", m.path, err)
	}
	return nil
}

// Exists reports whether the cgroup directory exists (on v1, the devices one,
// which the library treats as mandatory).
func (m *Manager) Exists() bool {
	lm, err := m.lib(nil)
	if err != nil {
		return false
	}
	return lm.Exists()
}

// Paths maps controller name to absolute directory. On v2 the only key is "";
// on hybrid "" is the directory in the unified tree.
func (m *Manager) Paths() map[string]string {
	lm, err := m.lib(nil)
	if err != nil {
		return nil
	}
	// Cloned because the library hands out its internal map and mutates it.
	return maps.Clone(lm.GetPaths())
}

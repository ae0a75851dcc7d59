package container

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/network"
	"github.com/berth-dev/berth/runtime"
	"github.com/berth-dev/berth/snapshot"
	"github.com/berth-dev/berth/volume"
)

// Binaries are the helper executables the engine starts. They live next to the berth
// executable (bin/ in the tree, /usr/local/bin when installed).
type Binaries struct {
	Runtime string // berth-runtime: the OCI runtime the monitor drives
	Monitor string // berth-monitor: the per-container supervisor
	Init    string // berth-init: the --init process
	Self    string // berth itself: the monitor's exit command
}

// Manager owns the containers of one data root.
type Manager struct {
	Root        string // the data root
	ctrRoot     string // <root>/containers
	RuntimeRoot string // the runtime's state root for this data root
	Bin         Binaries
	Images      *image.Store
	Snapshots   *snapshot.Store
	Volumes     *volume.Store
	Net         *network.Store
	rt          *runtime.Runtime
}

// Open prepares the containers directory of the data root.
func Open(root string, images *image.Store, snaps *snapshot.Store, vols *volume.Store, nets *network.Store) (*Manager, error) {
	m := &Manager{
		Root:      root,
		ctrRoot:   filepath.Join(root, "containers"),
		Images:    images,
		Snapshots: snaps,
		Volumes:   vols,
		Net:       nets,
		Bin:       defaultBinaries(),
	}
	if nets != nil {
		nets.Self = m.Bin.Self
	}
	if err := os.MkdirAll(filepath.Join(m.ctrRoot, "names"), 0o700); err != nil {
		return nil, fmt.Errorf("containers: %w", err)
	}
	m.RuntimeRoot = runtimeRoot(root)
	m.rt = &runtime.Runtime{Root: m.RuntimeRoot}
	return m, nil
}

// runtimeRoot keeps the runtime's state on /run (cleared by a reboot, which is what
// "the container is no longer running" means after one), separate per data root so that
// test data roots never see each other's containers.
func runtimeRoot(dataRoot string) string {
	if v := os.Getenv("BERTH_RUNTIME_ROOT"); v != "" {
		return v
	}
	if dataRoot == "/var/lib/berth" {
		return "/run/berth/runtime"
	}
	sum := sha256.Sum256([]byte(dataRoot))
	return "/run/berth/rt-" + hex.EncodeToString(sum[:6])
}

func defaultBinaries() Binaries {
	self, err := os.Executable()
	if err != nil {
		self = "/proc/self/exe"
	}
	dir := filepath.Dir(self)
	b := Binaries{
		Runtime: filepath.Join(dir, "berth-runtime"),
		Monitor: filepath.Join(dir, "berth-monitor"),
		Init:    filepath.Join(dir, "berth-init"),
		Self:    self,
	}
	if v := os.Getenv("BERTH_RUNTIME"); v != "" {
		b.Runtime = v
	}
	return b
}

// EventsLog is the path of the engine's event journal.
func (m *Manager) EventsLog() string { return filepath.Join(m.Root, "events.log") }

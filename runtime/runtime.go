// Package runtime implements the OCI runtime operations on a bundle (create, start, state,
// kill, delete, exec, pause, resume, update, stats, ps, list). It knows nothing of images.
//
// A container's life, in processes:
//
//	create: runtime ──spawn──> berth init (runtime/nsenter joins/unshares namespaces, forks
//	        into the pid namespace) ──handshake──> rootfs, hooks, confinement; init then blocks
//	        opening <state>/exec.fifo, and create returns.
//	start:  opens the fifo; init unblocks and execve's the program, which keeps init's pid.
//	exec:   the same spawn, joining the namespaces of the init pid instead of creating them.
//	delete: kills what is left in the cgroup, runs poststop hooks, removes cgroup and state.
package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/runtime/cgroups"
	"github.com/berth-dev/berth/runtime/specjson"
	"github.com/berth-dev/berth/runtime/state"
)

// Runtime holds the global options of the runc-compatible CLI.
type Runtime struct {
	Root    string // state directory root (default /run/berth/runtime)
	Systemd bool   // --systemd-cgroup: cgroupsPath is "slice:prefix:name"
	// Warn receives non-fatal notices (an LSM the host lacks, a poststop hook failure).
	Warn func(format string, args ...any)
	// Debug, when set (--debug), receives what the runtime chose (which init, say).
	Debug func(format string, args ...any)

	// mu guards the two caches below: the engine uses one Runtime from several goroutines
	// (`rm -f A B C`).
	mu sync.Mutex
	// cgroups remembers managers by container id for the life of this process: `run` loads
	// its container four times, and each manager resolves every controller's mount once.
	cgroups map[string]*cgroups.Manager
	// states caches records this process wrote or read; every Load still derives the status
	// from the kernel.
	states map[string]*state.State
}

// Status values beyond the OCI ones.
const statusPaused = "paused"

func (r *Runtime) debug(format string, args ...any) {
	if r.Debug != nil {
		r.Debug(format, args...)
	}
}

func (r *Runtime) warn(format string, args ...any) {
	if r.Warn != nil {
		r.Warn(format, args...)
	}
}

func (r *Runtime) seccompCache() string { return filepath.Join(r.Root, ".seccomp-cache") }

// Container is a loaded state record plus its live status.
type Container struct {
	*state.State
	Status string
	dir    string
	rt     *Runtime
	cg     *cgroups.Manager
}

// Load reads a container's record and derives its status from the kernel.
func (r *Runtime) Load(id string) (*Container, error) {
	c, err := r.load(id)
	if err != nil {
		return nil, err
	}
	c.Status = c.status()
	return c, nil
}

// load reads a container's record without its status: deriving it reads /proc and the
// freezer, which operations that do not look at it (or derive it under the lock) skip.
func (r *Runtime) load(id string) (*Container, error) {
	r.mu.Lock()
	st, ok := r.states[id]
	r.mu.Unlock()
	if !ok {
		var err error
		if st, err = state.Load(r.Root, id); err != nil {
			return nil, err
		}
		r.loaded(st)
	}
	dir, _ := state.Dir(r.Root, id)
	return &Container{State: st, dir: dir, rt: r}, nil
}

func (c *Container) alive() bool {
	return c.Pid > 0 && state.StartTime(c.Pid) == c.PidStart
}

func (c *Container) status() string {
	if !c.alive() {
		return string(specs.StateStopped)
	}
	if _, err := os.Lstat(filepath.Join(c.dir, "exec.fifo")); err == nil {
		return string(specs.StateCreated)
	}
	if cg, err := c.cgroup(); err == nil {
		if paused, _ := cg.Paused(); paused {
			return statusPaused
		}
	}
	return string(specs.StateRunning)
}

func (c *Container) cgroup() (*cgroups.Manager, error) {
	if c.cg != nil {
		return c.cg, nil
	}
	c.rt.mu.Lock()
	cg, ok := c.rt.cgroups[c.ID]
	c.rt.mu.Unlock()
	if ok {
		c.cg = cg
		return cg, nil
	}
	cg, err := cgroups.New(c.CgroupsPath, c.ID, c.Systemd)
	if err != nil {
		return nil, err
	}
	c.cg = cg
	c.rt.remember(c.ID, cg)
	return cg, nil
}

func (r *Runtime) loaded(st *state.State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.states == nil {
		r.states = map[string]*state.State{}
	}
	r.states[st.ID] = st
}

func (r *Runtime) remember(id string, cg *cgroups.Manager) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cgroups == nil {
		r.cgroups = map[string]*cgroups.Manager{}
	}
	r.cgroups[id] = cg
}

// OCIState is the OCI state of the container (what `state` prints, and hooks read).
func (c *Container) OCIState() *specs.State {
	return &specs.State{
		Version:     specs.Version,
		ID:          c.ID,
		Status:      specs.ContainerState(c.Status),
		Pid:         c.pidIfAlive(),
		Bundle:      c.Bundle,
		Annotations: c.Annotations,
	}
}

func (c *Container) pidIfAlive() int {
	if c.Status == string(specs.StateStopped) {
		return 0
	}
	return c.Pid
}

// StateJSON is `runc state` output: the OCI state plus rootfs, created and owner.
type StateJSON struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Describe returns the record `state` and `list` print.
func (c *Container) Describe() StateJSON {
	return StateJSON{
		OCIVersion: specs.Version, ID: c.ID, Pid: c.pidIfAlive(), Status: c.Status,
		Bundle: c.Bundle, Rootfs: c.Rootfs, Created: c.Created, Owner: c.Owner,
		Annotations: c.Annotations,
	}
}

// List loads every container under the root.
func (r *Runtime) List() ([]*Container, error) {
	ids, err := state.List(r.Root)
	if err != nil {
		return nil, err
	}
	var out []*Container
	for _, id := range ids {
		if c, err := r.Load(id); err == nil {
			out = append(out, c)
		}
	}
	return out, nil
}

// LoadSpec reads and checks <bundle>/config.json.
func LoadSpec(bundle string) (*specs.Spec, error) {
	spec, _, err := LoadSpecJSON(bundle)
	return spec, err
}

// LoadSpecJSON is LoadSpec that also returns config.json's bytes (for CreateOpts.SpecJSON).
func LoadSpecJSON(bundle string) (*specs.Spec, []byte, error) {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, fmt.Errorf("%w: %s/config.json does not exist", ErrBadConfig, bundle)
		}
		return nil, nil, err
	}
	var spec specs.Spec
	if err := specjson.Unmarshal(data, &spec); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrBadConfig, err)
	}
	if err := validate(&spec); err != nil {
		return nil, nil, err
	}
	return &spec, data, nil
}

func validate(spec *specs.Spec) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadConfig, fmt.Sprintf(format, args...))
	}
	if spec.Root == nil || spec.Root.Path == "" {
		return bad("root.path is required")
	}
	if spec.Process == nil {
		return bad("process is required")
	}
	if len(spec.Process.Args) == 0 {
		return bad("process.args must not be empty")
	}
	if spec.Linux == nil {
		return bad("linux section is required")
	}
	seen := map[specs.LinuxNamespaceType]bool{}
	for _, ns := range spec.Linux.Namespaces {
		if _, ok := nsFlags[ns.Type]; !ok {
			return bad("unknown namespace type %q", ns.Type)
		}
		if seen[ns.Type] {
			return bad("namespace %q listed twice", ns.Type)
		}
		seen[ns.Type] = true
	}
	if seen[specs.UserNamespace] && len(spec.Linux.UIDMappings) == 0 && !hasPath(spec, specs.UserNamespace) {
		return bad("a new user namespace needs linux.uidMappings and linux.gidMappings")
	}
	return nil
}

func hasPath(spec *specs.Spec, t specs.LinuxNamespaceType) bool {
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == t && ns.Path != "" {
			return true
		}
	}
	return false
}

// forget drops the cached record and cgroup manager of a deleted container.
func (r *Runtime) forget(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.cgroups, id)
	delete(r.states, id)
}

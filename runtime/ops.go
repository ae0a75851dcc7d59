package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/opencontainers/cgroups"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/runtime/hooks"
	"github.com/berth-dev/berth/runtime/state"
)

// Start lets a created container's init execve its program.
func (r *Runtime) Start(id string) error {
	c, err := r.load(id)
	if err != nil {
		return err
	}
	unlock, err := state.Lock(c.dir)
	if err != nil {
		return err
	}
	defer unlock()
	if c.Started {
		c.poststart(r)
		return nil
	}
	if c.status() != string(specs.StateCreated) {
		return fmt.Errorf("%w: %s is %s", ErrNotCreated, id, c.status())
	}
	fifoPath := filepath.Join(c.dir, "exec.fifo")
	// Non-blocking open: init is (or will be) blocked opening the other end for writing; our
	// open releases it, and we then wait for its byte while watching that it stays alive.
	fd, err := unix.Open(fifoPath, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open exec fifo: %w", err)
	}
	defer unix.Close(fd)
	buf := make([]byte, 1)
	for {
		n, err := unix.Read(fd, buf)
		if n == 1 {
			break
		}
		if err != nil && !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("read exec fifo: %w", err)
		}
		if !c.alive() {
			return fmt.Errorf("container init exited before start")
		}
		unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 10)
	}
	os.Remove(fifoPath)
	c.poststart(r)
	return nil
}

func (c *Container) poststart(r *Runtime) {
	if c.Config.Hooks != nil {
		c.Status = string(specs.StateRunning)
		if err := hooks.Run("poststart", c.Config.Hooks.Poststart, c.OCIState()); err != nil {
			r.warn("%v", err)
		}
	}
}

// Kill sends sig to the init, or with all to every process in the container's cgroup.
func (r *Runtime) Kill(id string, sig unix.Signal, all bool) error {
	c, err := r.Load(id)
	if err != nil {
		return err
	}
	if c.Status == string(specs.StateStopped) {
		return fmt.Errorf("%w: %s", ErrNotRunning, id)
	}
	if all {
		cg, err := c.cgroup()
		if err != nil {
			return err
		}
		return signalAll(cg, sig)
	}
	return c.signal(sig)
}

// signal goes through a pidfd so a recycled pid can never be hit.
func (c *Container) signal(sig unix.Signal) error {
	pfd, err := unix.PidfdOpen(c.Pid, 0)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrNotRunning, c.ID)
	}
	defer unix.Close(pfd)
	if !c.alive() {
		return fmt.Errorf("%w: %s", ErrNotRunning, c.ID)
	}
	return unix.PidfdSendSignal(pfd, sig, nil, 0)
}

type cgroupPids interface {
	Pids() ([]int, error)
	Freeze() error
	Thaw() error
}

type cgroupControl interface {
	cgroupPids
	Exists() bool
	Destroy() error
}

// signalAll freezes the cgroup while signalling so no process can fork away in between.
func signalAll(cg cgroupPids, sig unix.Signal) error {
	frozen := sig == unix.SIGKILL && cg.Freeze() == nil
	pids, err := cg.Pids()
	for _, p := range pids {
		unix.Kill(p, sig)
	}
	if frozen {
		cg.Thaw()
	}
	return err
}

// Delete removes a stopped (or created) container; force kills a running one first.
func (r *Runtime) Delete(id string, force bool) error {
	c, err := r.load(id)
	if err != nil {
		if dir, derr := state.Dir(r.Root, id); derr == nil && errors.Is(err, state.ErrNotExist) && force {
			// A create killed before it saved the record: only its directory (and perhaps an
			// empty cgroup, which the next create of this id reuses) is left.
			state.RemoveStale(dir)
		}
		return err
	}
	unlock, err := state.Lock(c.dir)
	if err != nil {
		return err
	}
	defer unlock()
	status := c.status()
	if (status == string(specs.StateRunning) || status == statusPaused) && !force {
		return fmt.Errorf("%w: %s; stop it first or use --force", ErrRunning, id)
	}
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	if status != string(specs.StateStopped) {
		c.signal(unix.SIGKILL)
	}
	// Whatever else is left in the cgroup (exec'd processes, a container without its own pid
	// namespace) goes too, so the cgroup can be removed.
	if err := emptyAndDestroy(cg, 10*time.Second); err != nil {
		return err
	}
	r.forget(id)
	if c.Pid > 0 {
		waitGone(c.Pid, time.Second)
	}
	if c.Config != nil && c.Config.Hooks != nil {
		c.Status = string(specs.StateStopped)
		if err := hooks.Run("poststop", c.Config.Hooks.Poststop, c.OCIState()); err != nil {
			r.warn("%v", err)
		}
	}
	return os.RemoveAll(c.dir)
}

// emptyAndDestroy kills every process in the cgroup, waits until the cgroup is really empty
// (a dying task stays listed until all its threads have exited), then removes it.
func emptyAndDestroy(cg cgroupControl, timeout time.Duration) error {
	// Usually it is empty by now (the init of a pid namespace takes the others with it), and
	// removing it is all there is to do; Destroy refuses a cgroup that still has processes.
	if cg.Destroy() == nil {
		return nil
	}
	deadline := time.Now().Add(timeout)
	for cg.Exists() {
		pids, _ := cg.Pids()
		if len(pids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v did not die", pids)
		}
		signalAll(cg, unix.SIGKILL)
		time.Sleep(2 * time.Millisecond)
	}
	if err := cg.Destroy(); err != nil {
		return fmt.Errorf("remove cgroup: %w", err)
	}
	return nil
}

// Pause freezes every process of the container.
func (r *Runtime) Pause(id string) error {
	c, err := r.Load(id)
	if err != nil {
		return err
	}
	if c.Status != string(specs.StateRunning) {
		return fmt.Errorf("%w: %s is %s", ErrNotRunning, id, c.Status)
	}
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	return cg.Freeze()
}

// Resume thaws a paused container.
func (r *Runtime) Resume(id string) error {
	c, err := r.Load(id)
	if err != nil {
		return err
	}
	if c.Status != statusPaused {
		return fmt.Errorf("container %s is not paused", id)
	}
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	return cg.Thaw()
}

// Update changes the resource limits of a live container and records them.
func (r *Runtime) Update(id string, res *specs.LinuxResources) error {
	c, err := r.Load(id)
	if err != nil {
		return err
	}
	if c.Status == string(specs.StateStopped) {
		return fmt.Errorf("%w: %s", ErrNotRunning, id)
	}
	unlock, err := state.Lock(c.dir)
	if err != nil {
		return err
	}
	defer unlock()
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	if err := cg.Set(res); err != nil {
		return err
	}
	c.Config.Linux.Resources = res
	c.ConfigJSON = nil // config.json's bytes (kept by a create in this process) no longer match
	return state.Save(c.dir, c.State)
}

// Stats returns the cgroup statistics of a container and its OOM kill count; they stay
// readable after the container stopped, until delete.
func (r *Runtime) Stats(id string) (*cgroups.Stats, uint64, error) {
	c, err := r.Load(id)
	if err != nil {
		return nil, 0, err
	}
	cg, err := c.cgroup()
	if err != nil {
		return nil, 0, err
	}
	if !cg.Exists() {
		return nil, 0, fmt.Errorf("%w: %s", ErrNotRunning, id)
	}
	st, err := cg.Stats()
	if err != nil {
		return nil, 0, err
	}
	oom, _ := cg.OOMKillCount()
	return st, oom, nil
}

// OOMKills returns how many processes of the container the OOM killer took, reading only that
// counter (foreground `run` asks once per container, on the exit path).
func (r *Runtime) OOMKills(id string) (uint64, error) {
	c, err := r.load(id)
	if err != nil {
		return 0, err
	}
	cg, err := c.cgroup()
	if err != nil {
		return 0, err
	}
	return cg.OOMKillCount()
}

// Pids lists the host pids of every process of the container.
func (r *Runtime) Pids(id string) ([]int, error) {
	c, err := r.load(id)
	if err != nil {
		return nil, err
	}
	cg, err := c.cgroup()
	if err != nil {
		return nil, err
	}
	if !cg.Exists() {
		return nil, nil
	}
	return cg.Pids()
}

package runtime

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/runtime/cgroups"
	"github.com/berth-dev/berth/runtime/handshake"
	"github.com/berth-dev/berth/runtime/hooks"
	"github.com/berth-dev/berth/runtime/seccomp"
	"github.com/berth-dev/berth/runtime/state"
)

// CreateOpts are the flags of `create` (and `run`).
type CreateOpts struct {
	ID            string
	Bundle        string
	PidFile       string
	ConsoleSocket string
	PreserveFds   int
	NoPivot       bool
	NoNewKeyring  bool
	// Stdio of the container process; nil entries inherit the runtime's.
	Stdio [3]*os.File
	// Spec, when set, is the bundle's config.json already read by LoadSpec; SpecJSON, when
	// set with it, the file's bytes (LoadSpecJSON): the state record then stores them as they
	// are instead of encoding the spec again.
	Spec     *specs.Spec
	SpecJSON []byte
	// StartNow is `run`: Start follows at once. A container set up by the C init then execs
	// its program as soon as it is ready instead of waiting on exec.fifo (one round trip
	// less), and Start only runs the poststart hooks. The Go init ignores it.
	StartNow bool
}

// Create sets up the container and leaves its init waiting for Start. On any error nothing is
// left behind: no process, cgroup, mount or state directory.
func (r *Runtime) Create(o CreateOpts) (pid int, err error) {
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return 0, err
	}
	spec, specJSON := o.Spec, o.SpecJSON
	if spec == nil {
		if spec, specJSON, err = LoadSpecJSON(bundle); err != nil {
			return 0, err
		}
	}
	rootfs := spec.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(bundle, rootfs)
	}
	if st, err := os.Stat(rootfs); err != nil || !st.IsDir() {
		return 0, fmt.Errorf("%w: %s", ErrNoRootfs, rootfs)
	}
	if spec.Process.Terminal && o.ConsoleSocket == "" {
		return 0, errors.New("process.terminal is true but no --console-socket was given")
	}
	prog, flags, err := r.compileSeccomp(spec)
	if err != nil {
		return 0, err
	}
	lsm, caps := r.dropMissingLSM(spec.Process), r.dropUnavailableCaps(spec.Process)
	if lsm || caps {
		specJSON = nil // the record keeps the spec as it will run
	}

	dir, unlock, err := state.Create(r.Root, o.ID)
	if err != nil {
		return 0, err
	}
	// Held until create returns: `delete` waits for it, and a crashed create is told apart
	// from a running one (state.RemoveStale).
	defer unlock()
	var cg *cgroups.Manager
	var initPid int
	defer func() {
		if err == nil {
			return
		}
		if initPid > 0 {
			unix.Kill(initPid, unix.SIGKILL)
		}
		if cg != nil {
			if cerr := emptyAndDestroy(cg, 5*time.Second); cerr != nil {
				r.warn("cleaning up after a failed create: %v", cerr)
			}
		}
		os.RemoveAll(dir)
	}()

	cg, err = cgroups.New(spec.Linux.CgroupsPath, o.ID, r.Systemd)
	if err != nil {
		return 0, err
	}
	r.remember(o.ID, cg)
	// Made before the child: on cgroup v2 it is born in it (clone3 CLONE_INTO_CGROUP); on v1
	// it is moved in after its pid report, before it gets anything that runs container code.
	// (Making a v1 cgroup in the background while the child starts measured the same: on the
	// machines we measure, work done in parallel is not faster.)
	if err = cg.Create(cgroupResources(spec)); err != nil {
		cg = existingOrNil(cg)
		return 0, fmt.Errorf("cgroup: %w", err)
	}

	fifoPath := filepath.Join(dir, "exec.fifo")
	// 0622: init may already run as the container's user when it opens the fifo to wait.
	if err = unix.Mkfifo(fifoPath, 0o622); err != nil {
		return 0, err
	}
	if err = os.Chmod(fifoPath, 0o622); err != nil { // mkfifo is subject to the umask
		return 0, err
	}
	// In a user namespace init is an unprivileged host uid: the fifo must be its own to be
	// reopened for writing.
	if uid, gid := hostRoot(spec); uid != 0 || gid != 0 {
		if err = os.Chown(fifoPath, uid, gid); err != nil {
			return 0, err
		}
	}
	fifo, err := os.OpenFile(fifoPath, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer fifo.Close()

	so := spawnOpts{cgroup: cg, stdio: o.Stdio, uidMaps: spec.Linux.UIDMappings, gidMaps: spec.Linux.GIDMappings}
	so.preserve(o.PreserveFds)
	for clock, off := range spec.Linux.TimeOffsets {
		so.timeOffsets += fmt.Sprintf("%s %d %d\n", clock, off.Secs, off.Nanosecs)
	}
	namespaces := map[string]string{}
	inUserNS, newCgroupNS := false, false
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.UserNamespace {
			inUserNS = true
		}
		switch {
		case ns.Path != "":
			so.join = append(so.join, nsJoin{ns.Type, ns.Path})
		case ns.Type == specs.CgroupNamespace:
			newCgroupNS = true // unshared by init, once it is in its cgroup
		default:
			so.unshare |= nsFlags[ns.Type]
		}
		namespaces[string(ns.Type)] = ns.Path
	}
	cfg := &handshake.Config{
		Spec: spec, Rootfs: rootfs, NoPivot: o.NoPivot,
		NoNewKeyring: o.NoNewKeyring, PreserveFds: o.PreserveFds, InUserNS: inUserNS, NewCgroupNS: newCgroupNS,
		Seccomp: prog, SeccompFlags: flags, ConsoleFd: -1,
	}
	cfg.FifoFd = so.inherit(fifo)
	if o.ConsoleSocket != "" {
		sock, err := connectConsole(o.ConsoleSocket)
		if err != nil {
			return 0, err
		}
		defer sock.Close()
		cfg.ConsoleFd = so.inherit(sock)
	}

	// The C init (no Go in the container's first process) unless the spec needs the Go one.
	if why := planUnsupported(cfg); why != "" {
		r.debug("container %s: set up by the Go init (%s)", o.ID, why)
	} else {
		so.plan = true
		r.debug("container %s: set up by the C init", o.ID)
	}
	// The runtime's own hooks run while init waits; without any, the C init does not stop.
	//lint:ignore SA1019 prestart is deprecated, but engines still send it.
	hostHooks := spec.Hooks != nil && (len(spec.Hooks.Prestart) > 0 || len(spec.Hooks.CreateRuntime) > 0)
	syncFd := 3 + len(so.extra) // spawn passes the socket after the other descriptors
	ch, err := spawn(so)
	if err != nil {
		return 0, err
	}
	defer ch.conn.Close()
	if so.plan {
		// The plan's first part goes out as soon as it is written; the rest is written while
		// the child starts and carries out the first, and goes out once the child has reported
		// its pid and is in its cgroups.
		rest, perr := buildPlan(cfg, syncFd, planOpts{hooks: hostHooks, startNow: o.StartNow}, cg.Paths(), func(part []byte) error {
			_, err := ch.sock.Write(part)
			return err
		})
		if perr == nil {
			perr = ch.await()
		}
		if perr == nil {
			_, perr = ch.sock.Write(rest)
		}
		if perr != nil {
			// A child that failed has said why and gone: report that, not the broken pipe
			// or the plan step it interrupted.
			err = ch.why(perr)
			ch.kill()
			return 0, err
		}
	} else if err = ch.await(); err != nil {
		return 0, err
	}
	initPid = ch.pid
	ociState := &specs.State{Version: specs.Version, ID: o.ID, Status: specs.StateCreating, Pid: ch.pid, Bundle: bundle, Annotations: spec.Annotations}
	cfg.State = ociState
	if !so.plan {
		if err = ch.conn.Send(handshake.Message{Kind: handshake.KindConfig, Config: cfg}); err != nil {
			return 0, err
		}
	}
	// The state record is written while the child sets itself up (nothing reads it before
	// create returns: the container lock is held until then).
	st := &state.State{
		ID: o.ID, Bundle: bundle, Rootfs: rootfs, Pid: ch.pid, PidStart: state.StartTime(ch.pid),
		Created: time.Now().UTC(), Annotations: spec.Annotations, CgroupsPath: spec.Linux.CgroupsPath,
		Systemd: r.Systemd, Namespaces: namespaces, Config: spec, ConfigJSON: specJSON, Started: so.plan && o.StartNow,
	}
	if err = state.Save(dir, st); err != nil {
		return 0, err
	}
	r.loaded(st)
	if !so.plan || hostHooks {
		if _, err = ch.conn.Expect(handshake.KindHooks); err != nil {
			return 0, err
		}
		if spec.Hooks != nil {
			//lint:ignore SA1019 prestart is deprecated, but engines still send it.
			if err = hooks.Run("prestart", spec.Hooks.Prestart, ociState); err != nil {
				return 0, err
			}
			if err = hooks.Run("createRuntime", spec.Hooks.CreateRuntime, ociState); err != nil {
				return 0, err
			}
		}
		if err = ch.conn.Send(handshake.Message{Kind: handshake.KindResume}); err != nil {
			return 0, err
		}
	}
	if _, err = ch.conn.Expect(handshake.KindReady); err != nil {
		return 0, err
	}
	if st.Started {
		os.Remove(fifoPath) // the program runs: the container is not "created" any more
	}
	if o.PidFile != "" {
		if err = writePidFile(o.PidFile, ch.pid); err != nil {
			return 0, err
		}
	}
	return ch.pid, nil
}

// hostRoot returns the host uid and gid that the container's root maps to.
func hostRoot(spec *specs.Spec) (int, int) {
	find := func(ms []specs.LinuxIDMapping) int {
		for _, m := range ms {
			if m.ContainerID == 0 {
				return int(m.HostID)
			}
		}
		return 0
	}
	return find(spec.Linux.UIDMappings), find(spec.Linux.GIDMappings)
}

// existingOrNil keeps the manager for cleanup only if Create got far enough to make dirs.
func existingOrNil(cg *cgroups.Manager) *cgroups.Manager {
	if cg.Exists() {
		return cg
	}
	return nil
}

func (r *Runtime) compileSeccomp(spec *specs.Spec) ([]unix.SockFilter, uint, error) {
	if spec.Linux == nil || spec.Linux.Seccomp == nil {
		return nil, 0, nil
	}
	prog, err := seccomp.CompileCached(spec.Linux.Seccomp, r.seccompCache())
	if err != nil {
		return nil, 0, err
	}
	flags, err := seccomp.Flags(spec.Linux.Seccomp)
	if err != nil {
		return nil, 0, err
	}
	return prog, flags, nil
}

// dropMissingLSM clears an AppArmor profile or SELinux label the host cannot apply, with a
// warning, as the issue asks (skip with a warning when the host lacks the LSM).
func (r *Runtime) dropMissingLSM(p *specs.Process) (changed bool) {
	if p.ApparmorProfile != "" {
		if _, err := os.Stat("/sys/kernel/security/apparmor"); err != nil {
			r.warn("apparmor is not enabled on this host: ignoring profile %q", p.ApparmorProfile)
			p.ApparmorProfile = ""
			changed = true
		}
	}
	if p.SelinuxLabel != "" {
		if _, err := os.Stat("/sys/fs/selinux/enforce"); err != nil {
			r.warn("selinux is not enabled on this host: ignoring label %q", p.SelinuxLabel)
			p.SelinuxLabel = ""
			changed = true
		}
	}
	return changed
}

func connectConsole(path string) (*os.File, error) {
	conn, err := net.Dial("unix", path)
	if err != nil {
		return nil, fmt.Errorf("connect to console socket: %w", err)
	}
	uc := conn.(*net.UnixConn)
	f, err := uc.File()
	uc.Close()
	return f, err
}

func writePidFile(path string, pid int) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	return state.WriteFileAtomic(abs, []byte(strconv.Itoa(pid)), 0o644)
}

// waitGone polls until pid no longer exists (it may not be our child) or the timeout passes.
func waitGone(pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		if state.StartTime(pid) == 0 { // gone, or a zombie nobody reaped yet
			return true
		}
		time.Sleep(2 * time.Millisecond)
	}
	return false
}

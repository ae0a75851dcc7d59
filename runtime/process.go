package runtime

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/runtime/cgroups"
	"github.com/berth-dev/berth/runtime/exeseal"
	"github.com/berth-dev/berth/runtime/handshake"
)

// nsJoin is one namespace to enter by path.
type nsJoin struct {
	typ  specs.LinuxNamespaceType
	path string
}

// spawnOpts describes the child to start: where it goes (namespaces, cgroup) and what it
// inherits (stdio, preserved descriptors).
type spawnOpts struct {
	join    []nsJoin
	unshare int
	// timeOffsets is written to a new time namespace's timens_offsets.
	timeOffsets string
	uidMaps     []specs.LinuxIDMapping
	gidMaps     []specs.LinuxIDMapping
	cgroup      *cgroups.Manager
	stdio       [3]*os.File
	// plan makes the child wait for a plan (runtime/initplan) instead of starting Go.
	plan bool
	// extra are inherited from fd 3 up: the preserved descriptors first, then ours.
	extra []*os.File
}

// preserve passes the caller's descriptors 3..3+n-1 on at the same numbers (--preserve-fds);
// call it before inherit.
func (o *spawnOpts) preserve(n int) {
	for i := 0; i < n; i++ {
		o.extra = append(o.extra, os.NewFile(uintptr(3+i), "preserved"))
	}
}

// inherit passes f to the child and returns the descriptor number it will have there.
func (o *spawnOpts) inherit(f *os.File) int {
	o.extra = append(o.extra, f)
	return 3 + len(o.extra) - 1
}

// child is a spawned init/exec process; after await, past runtime/nsenter's byte protocol and
// in its cgroup.
type child struct {
	pid  int // the process that runs the container program (after await)
	conn *handshake.Conn
	proc *os.Process // the process started, an intermediate when it forks into a pid ns
	sock *os.File
	o    spawnOpts
	// bornInCgroup: started with CLONE_INTO_CGROUP, no move needed.
	bornInCgroup bool
	reaped       bool
	// failed is why await failed (the child is gone then).
	failed error
}

var nsNames = map[specs.LinuxNamespaceType]string{
	specs.PIDNamespace: "pid", specs.NetworkNamespace: "net", specs.MountNamespace: "mnt",
	specs.IPCNamespace: "ipc", specs.UTSNamespace: "uts", specs.UserNamespace: "user",
	specs.CgroupNamespace: "cgroup", specs.TimeNamespace: "time",
}

var nsFlags = map[specs.LinuxNamespaceType]int{
	specs.PIDNamespace: unix.CLONE_NEWPID, specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.MountNamespace: unix.CLONE_NEWNS, specs.IPCNamespace: unix.CLONE_NEWIPC,
	specs.UTSNamespace: unix.CLONE_NEWUTS, specs.UserNamespace: unix.CLONE_NEWUSER,
	specs.CgroupNamespace: unix.CLONE_NEWCGROUP, specs.TimeNamespace: unix.CLONE_NEWTIME,
}

// spawn starts `berth init` from the sealed executable; child.await then runs the pre-Go
// protocol of runtime/nsenter (nsenter.c describes it), which yields the pid that will run the
// container program. The socket is for the plan and runtime/handshake. On error nothing is
// left running.
func spawn(o spawnOpts) (*child, error) {
	var joins []string
	for _, j := range o.join {
		joins = append(joins, nsNames[j.typ]+":"+j.path)
	}
	// The container inherits the runtime's stdio unless told otherwise, as with runc: engines
	// hand their pipes or fifos to the runtime for exactly this.
	for i, def := range []*os.File{os.Stdin, os.Stdout, os.Stderr} {
		if o.stdio[i] == nil {
			o.stdio[i] = def
		}
	}
	sealed, _, err := exeseal.Open()
	if err != nil {
		return nil, fmt.Errorf("seal runtime binary: %w", err)
	}
	// exec.Cmd dup2s ExtraFiles onto 3, 4, ... in the child before execve resolves
	// /proc/self/fd/N: keep N far above them.
	exeFd, err := unix.FcntlInt(sealed.Fd(), unix.F_DUPFD_CLOEXEC, 256+len(o.extra))
	sealed.Close()
	if err != nil {
		return nil, err
	}
	defer unix.Close(exeFd)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	parentSock := os.NewFile(uintptr(fds[0]), "sync-parent")
	childSock := os.NewFile(uintptr(fds[1]), "sync-child")
	defer childSock.Close()

	extra := append(append([]*os.File(nil), o.extra...), childSock)
	// Namespaces that need nothing done before their first process enters are created by
	// clone itself, as crun does: the child starts as pid 1 of its pid namespace, and
	// nsenter.c neither unshares nor forks an intermediate. Joining by path, user namespaces
	// (id maps) and time namespaces (clock offsets) keep nsenter.c's way.
	unshare, cloneflags := o.unshare, 0
	if len(o.join) == 0 && unshare&(unix.CLONE_NEWUSER|unix.CLONE_NEWTIME) == 0 {
		unshare, cloneflags = 0, o.unshare
	}
	cmd := &exec.Cmd{
		Path: fmt.Sprintf("/proc/self/fd/%d", exeFd),
		Args: []string{"berth", "init"},
		Env: []string{
			"_BERTH_SYNC=" + strconv.Itoa(3+len(extra)-1),
			"_BERTH_JOIN=" + strings.Join(joins, ","),
			"_BERTH_UNSHARE=" + strconv.Itoa(unshare),
			"_BERTH_TIMENS=" + o.timeOffsets,
			// init is short-lived and allocates little: one P and no collector make the
			// Go runtime start about a millisecond sooner (measured in bench/RESULTS.md).
			"GOMAXPROCS=1", "GOGC=off",
		},
		Stdin: o.stdio[0], Stdout: o.stdio[1], Stderr: o.stdio[2],
		ExtraFiles:  extra,
		SysProcAttr: &syscall.SysProcAttr{Cloneflags: uintptr(cloneflags)},
	}
	if o.plan {
		cmd.Env = append(cmd.Env, "_BERTH_PLAN=1")
	}
	if o.cgroup != nil {
		// Born in its cgroup on cgroup v2 (clone3 CLONE_INTO_CGROUP): no window in which the
		// child runs unaccounted, and no write to cgroup.procs on the start path.
		if fd, ok, err := o.cgroup.CloneIntoFD(); err != nil {
			parentSock.Close()
			return nil, err
		} else if ok {
			defer unix.Close(fd)
			cmd.SysProcAttr.UseCgroupFD = true
			cmd.SysProcAttr.CgroupFD = fd
		}
	}
	if err := cmd.Start(); err != nil {
		parentSock.Close()
		return nil, fmt.Errorf("start init: %w", err)
	}
	return &child{conn: handshake.New(parentSock), proc: cmd.Process, sock: parentSock, o: o, bornInCgroup: cmd.SysProcAttr.UseCgroupFD}, nil
}

// kill ends a child that will not be used, whatever state it is in; the closed socket ends a
// grandchild whose pid was not reported yet.
func (c *child) kill() {
	if c.pid > 0 {
		unix.Kill(c.pid, unix.SIGKILL)
	}
	if !c.reaped {
		if c.proc.Kill() == nil { // an error: released to the caller, which reaps it
			c.proc.Wait()
		}
		c.reaped = true
	}
	c.sock.Close()
}

// await runs nsenter's protocol up to the pid report ('P') and puts that process in its
// cgroup. On error the child is gone and c.failed says why.
func (c *child) await() error {
	o, parentSock := c.o, c.sock
	fail := func(err error) error {
		c.kill()
		c.failed = err
		return err
	}
	r := c.conn.Reader()
	for c.pid == 0 {
		tag, err := r.ReadByte()
		if err != nil {
			return fail(errors.New("container init exited during setup"))
		}
		switch tag {
		case 'U':
			if err := writeIDMaps(c.proc.Pid, o.uidMaps, o.gidMaps); err != nil {
				return fail(err)
			}
			if _, err := parentSock.Write([]byte{'u'}); err != nil {
				return fail(err)
			}
		case 'P':
			var pid int32
			if err := binary.Read(r, binary.NativeEndian, &pid); err != nil {
				return fail(err)
			}
			c.pid = int(pid)
			if pid == 0 { // no fork in nsenter.c: the process we started
				c.pid = c.proc.Pid
			}
		case 'E':
			var n int32
			if err := binary.Read(r, binary.NativeEndian, &n); err != nil {
				return fail(err)
			}
			msg := make([]byte, n)
			io.ReadFull(r, msg)
			return fail(errors.New(string(msg)))
		default:
			return fail(fmt.Errorf("nsenter: unexpected sync byte %q", tag))
		}
	}
	if o.cgroup != nil && !c.bornInCgroup {
		// Still in the runtime's cgroup: nothing of the container program runs before the
		// plan's second part or the Go init's configuration, which follow this move.
		if err := o.cgroup.Apply(c.pid); err != nil {
			return fail(fmt.Errorf("join cgroup: %w", err))
		}
	}
	if c.pid != c.proc.Pid {
		// The intermediate forked into the pid namespace and exits now; reap it.
		c.proc.Wait()
		c.reaped = true
	} else {
		c.proc.Release()
	}
	return nil
}

// why returns what the child said when it died, for err (a write to its socket that failed,
// a plan step that stopped): nsenter's message before the pid report, a handshake error line
// after it; err itself when there is neither.
func (c *child) why(err error) error {
	if c.failed != nil {
		return c.failed
	}
	if c.pid == 0 {
		if aerr := c.await(); aerr != nil {
			return aerr
		}
		return err
	}
	if m, rerr := c.conn.Recv(); rerr == nil && m.Kind == handshake.KindError {
		return errors.New(m.Error)
	}
	return err
}

func writeIDMaps(pid int, uids, gids []specs.LinuxIDMapping) error {
	format := func(ms []specs.LinuxIDMapping) []byte {
		var b strings.Builder
		for _, m := range ms {
			fmt.Fprintf(&b, "%d %d %d\n", m.ContainerID, m.HostID, m.Size)
		}
		return []byte(b.String())
	}
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/uid_map", pid), format(uids), 0); err != nil {
		return fmt.Errorf("write uid_map: %w", err)
	}
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/gid_map", pid), format(gids), 0); err != nil {
		return fmt.Errorf("write gid_map: %w", err)
	}
	return nil
}

package runtime

import (
	"fmt"
	"io"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/runtime/handshake"
)

// ExecOpts are the flags of `exec` once the CLI has built the process.
type ExecOpts struct {
	Process       *specs.Process
	PidFile       string
	ConsoleSocket string
	PreserveFds   int
	Stdio         [3]*os.File
}

// Exec starts a process inside a running container: it joins every namespace of the init,
// its cgroup, and gets the container's seccomp filter, capabilities and LSM label (those of
// Process, which the CLI derives from the container's). It returns the host pid.
func (r *Runtime) Exec(id string, o ExecOpts) (int, error) {
	c, err := r.Load(id)
	if err != nil {
		return 0, err
	}
	switch c.Status {
	case statusPaused:
		return 0, fmt.Errorf("%w: cannot exec in %s", ErrPaused, id)
	case "running", "created":
	default:
		return 0, fmt.Errorf("%w: cannot exec in %s", ErrNotRunning, id)
	}
	p := o.Process
	if len(p.Args) == 0 {
		return 0, fmt.Errorf("exec: no command given")
	}
	if p.Terminal && o.ConsoleSocket == "" {
		return 0, fmt.Errorf("exec --tty needs --console-socket")
	}
	r.dropMissingLSM(p)
	r.dropUnavailableCaps(p)
	prog, flags, err := r.compileSeccomp(c.Config)
	if err != nil {
		return 0, err
	}
	cg, err := c.cgroup()
	if err != nil {
		return 0, err
	}
	so := spawnOpts{cgroup: cg, stdio: o.Stdio}
	so.preserve(o.PreserveFds)
	// Join what the container has, through the init's own links, which name the namespaces
	// it actually runs in (a path given at create may since have been re-bound).
	inUserNS := false
	for t := range c.Namespaces {
		typ := specs.LinuxNamespaceType(t)
		if typ == specs.UserNamespace {
			inUserNS = true
		}
		so.join = append(so.join, nsJoin{typ, fmt.Sprintf("/proc/%d/ns/%s", c.Pid, nsNames[typ])})
	}
	cfg := &handshake.Config{
		Exec: true, Process: p, PreserveFds: o.PreserveFds, InUserNS: inUserNS,
		Seccomp: prog, SeccompFlags: flags, ConsoleFd: -1, FifoFd: -1,
	}
	if o.ConsoleSocket != "" {
		sock, err := connectConsole(o.ConsoleSocket)
		if err != nil {
			return 0, err
		}
		defer sock.Close()
		cfg.ConsoleFd = so.inherit(sock)
	}
	ch, err := spawn(so)
	if err != nil {
		return 0, err
	}
	defer ch.conn.Close()
	if err := ch.await(); err != nil {
		return 0, err
	}
	if err := ch.conn.Send(handshake.Message{Kind: handshake.KindConfig, Config: cfg}); err != nil {
		return 0, err
	}
	if _, err := ch.conn.Expect(handshake.KindReady); err != nil {
		return 0, err
	}
	// After ready the child confines itself and calls execve, which closes the socket.
	if m, err := ch.conn.Recv(); err != io.EOF {
		if err == nil && m.Kind == handshake.KindError {
			err = fmt.Errorf("%s", m.Error)
		}
		return 0, err
	}
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, ch.pid); err != nil {
			return 0, err
		}
	}
	return ch.pid, nil
}

package runtimecli

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/sys/capability"
	"github.com/moby/sys/signal"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/runtime"
)

type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer) *table   { return &table{tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)} }
func (t *table) row(cols ...string) { fmt.Fprintln(t.tw, strings.Join(cols, "\t")) }
func (t *table) flush() error       { return t.tw.Flush() }

func parseSignal(s string) (unix.Signal, error) {
	sig, err := signal.ParseSignal(s)
	if err != nil {
		return 0, fmt.Errorf("unknown signal %q: use a name like SIGTERM or a number", s)
	}
	return unix.Signal(sig), nil
}

// psTable runs the host's ps with psArgs (default -ef) and keeps the header and the rows of
// the container's pids, as runc does.
func psTable(w io.Writer, pids []int, psArgs []string) error {
	if len(psArgs) == 0 {
		psArgs = []string{"-ef"}
	}
	out, err := exec.Command("ps", psArgs...).Output()
	if err != nil {
		return fmt.Errorf("ps %s: %w", strings.Join(psArgs, " "), err)
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	col := -1
	for i, h := range strings.Fields(lines[0]) {
		if h == "PID" {
			col = i
		}
	}
	if col < 0 {
		return fmt.Errorf("ps output has no PID column")
	}
	in := map[string]bool{}
	for _, p := range pids {
		in[strconv.Itoa(p)] = true
	}
	fmt.Fprintln(w, lines[0])
	for _, l := range lines[1:] {
		if f := strings.Fields(l); len(f) > col && in[f[col]] {
			fmt.Fprintln(w, l)
		}
	}
	return nil
}

func eventsCommand(rt *runtime.Runtime) *cobra.Command {
	var stats bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "events [--stats] [--interval D] CONTAINER-ID",
		Short: "print container events (stats, oom) as JSON lines",
		Args:  ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			out := cmd.OutOrStdout()
			var lastOOM uint64
			first := true
			for {
				st, oom, err := rt.Stats(id)
				if err != nil {
					if first {
						return err
					}
					return nil // the container is gone: the stream ends
				}
				if !first && oom > lastOOM {
					printJSON(out, map[string]any{"type": "oom", "id": id}, false)
				}
				lastOOM = oom
				if stats || first {
					if err := printJSON(out, map[string]any{"type": "stats", "id": id, "data": st, "oom_kills": oom}, false); err != nil {
						return err
					}
				}
				if stats {
					return nil
				}
				first = false
				time.Sleep(interval)
			}
		},
	}
	cmd.Flags().BoolVar(&stats, "stats", false, "print one stats event and exit")
	cmd.Flags().DurationVar(&interval, "interval", 5*time.Second, "stats interval")
	return cmd
}

func updateCommand(rt *runtime.Runtime) *cobra.Command {
	var resources string
	var mem, swap, reservation, cpusetCpus, cpusetMems string
	var shares, quota, period, pidsLimit int64
	var blkioWeight uint16
	cmd := &cobra.Command{
		Use:   "update [flags] CONTAINER-ID",
		Short: "change the resource limits of a running container",
		Args:  ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := rt.Load(args[0])
			if err != nil {
				return err
			}
			var r specs.LinuxResources
			if c.Config != nil && c.Config.Linux != nil && c.Config.Linux.Resources != nil {
				r = *c.Config.Linux.Resources
			}
			if resources != "" {
				r = specs.LinuxResources{}
				if err := readJSONFile(resources, &r); err != nil {
					return err
				}
			}
			f := cmd.Flags()
			size := func(name, v string) (*int64, error) {
				if v == "-1" {
					n := int64(-1)
					return &n, nil
				}
				n, err := units.RAMInBytes(v)
				if err != nil {
					return nil, fmt.Errorf("--%s %q: %v", name, v, err)
				}
				return &n, nil
			}
			ensureMem := func() {
				if r.Memory == nil {
					r.Memory = &specs.LinuxMemory{}
				}
			}
			ensureCPU := func() {
				if r.CPU == nil {
					r.CPU = &specs.LinuxCPU{}
				}
			}
			for _, s := range []struct {
				name string
				val  string
				dst  func(*int64)
			}{
				{"memory", mem, func(n *int64) { ensureMem(); r.Memory.Limit = n }},
				{"memory-swap", swap, func(n *int64) { ensureMem(); r.Memory.Swap = n }},
				{"memory-reservation", reservation, func(n *int64) { ensureMem(); r.Memory.Reservation = n }},
			} {
				if f.Changed(s.name) {
					n, err := size(s.name, s.val)
					if err != nil {
						return err
					}
					s.dst(n)
				}
			}
			if f.Changed("cpu-shares") {
				ensureCPU()
				v := uint64(shares)
				r.CPU.Shares = &v
			}
			if f.Changed("cpu-quota") {
				ensureCPU()
				r.CPU.Quota = &quota
			}
			if f.Changed("cpu-period") {
				ensureCPU()
				v := uint64(period)
				r.CPU.Period = &v
			}
			if f.Changed("cpuset-cpus") {
				ensureCPU()
				r.CPU.Cpus = cpusetCpus
			}
			if f.Changed("cpuset-mems") {
				ensureCPU()
				r.CPU.Mems = cpusetMems
			}
			if f.Changed("pids-limit") {
				r.Pids = &specs.LinuxPids{Limit: &pidsLimit}
			}
			if f.Changed("blkio-weight") {
				if r.BlockIO == nil {
					r.BlockIO = &specs.LinuxBlockIO{}
				}
				r.BlockIO.Weight = &blkioWeight
			}
			return rt.Update(args[0], &r)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&resources, "resources", "r", "", "JSON file (or -) with linux.resources")
	f.StringVar(&mem, "memory", "", "memory limit (e.g. 512m)")
	f.StringVar(&swap, "memory-swap", "", "memory+swap limit, -1 for unlimited")
	f.StringVar(&reservation, "memory-reservation", "", "memory soft limit")
	f.Int64Var(&shares, "cpu-shares", 0, "CPU shares")
	f.Int64Var(&quota, "cpu-quota", 0, "CFS quota in microseconds")
	f.Int64Var(&period, "cpu-period", 0, "CFS period in microseconds")
	f.StringVar(&cpusetCpus, "cpuset-cpus", "", "CPUs allowed (0-3, 0,1)")
	f.StringVar(&cpusetMems, "cpuset-mems", "", "memory nodes allowed")
	f.Int64Var(&pidsLimit, "pids-limit", 0, "maximum number of tasks")
	f.Uint16Var(&blkioWeight, "blkio-weight", 0, "block IO weight (10-1000)")
	return cmd
}

// sendPidfd implements --pidfd-socket: a pidfd of the init, sent like the console master.
func sendPidfd(cmd *cobra.Command, pid int) error {
	path, _ := cmd.Flags().GetString("pidfd-socket")
	if path == "" {
		return nil
	}
	pfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	conn, err := net.Dial("unix", path)
	if err != nil {
		return fmt.Errorf("connect to pidfd socket: %w", err)
	}
	defer conn.Close()
	_, _, err = conn.(*net.UnixConn).WriteMsgUnix([]byte("pidfd"), unix.UnixRights(pfd), nil)
	return err
}

func featuresCommand() *cobra.Command {
	return &cobra.Command{
		Use: "features", Short: "print what this runtime supports (JSON)", Args: ExactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return printJSON(cmd.OutOrStdout(), features(), true)
		},
	}
}

func features() map[string]any {
	var nss []string
	for _, n := range []specs.LinuxNamespaceType{specs.CgroupNamespace, specs.IPCNamespace, specs.MountNamespace, specs.NetworkNamespace, specs.PIDNamespace, specs.TimeNamespace, specs.UserNamespace, specs.UTSNamespace} {
		nss = append(nss, string(n))
	}
	return map[string]any{
		"ociVersionMin": "1.0.0",
		"ociVersionMax": "1.2.0",
		"hooks":         []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"},
		"mountOptions": []string{"tmpcopyup", "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "mand", "noatime",
			"nodev", "nodiratime", "noexec", "nostrictatime", "nosuid", "private", "rbind", "relatime", "remount", "ro",
			"rprivate", "rshared", "rslave", "runbindable", "rw", "shared", "slave", "strictatime", "suid", "sync", "unbindable"},
		"linux": map[string]any{
			"namespaces":   nss,
			"capabilities": capNames(),
			"cgroup":       map[string]bool{"v1": true, "v2": true, "systemd": false, "rdma": true},
			"seccomp": map[string]any{
				"enabled":   true,
				"actions":   []string{"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"},
				"operators": []string{"SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"},
				"archs":     []string{"SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"},
				"supportedFlags": []string{"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
					"SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"},
			},
			"apparmor": map[string]bool{"enabled": true},
			"selinux":  map[string]bool{"enabled": true},
			"intelRdt": map[string]bool{"enabled": false},
		},
	}
}

func specCommand() *cobra.Command {
	var bundle string
	cmd := &cobra.Command{
		Use: "spec", Short: "write a default config.json into the bundle directory", Args: ExactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := bundle + "/config.json"
			if _, err := os.Stat(path); err == nil {
				return fmt.Errorf("%s already exists: remove it first", path)
			}
			var buf bytes.Buffer
			if err := printJSON(&buf, runtime.DefaultSpec(), true); err != nil {
				return err
			}
			return os.WriteFile(path, buf.Bytes(), 0o644)
		},
	}
	cmd.Flags().StringVarP(&bundle, "bundle", "b", ".", "bundle directory")
	cmd.Flags().Bool("rootless", false, "accepted for compatibility")
	return cmd
}

// terminal is the console socket `run`/`exec` use when they own the terminal themselves
// (foreground with process.terminal and no --console-socket): it receives the pty master,
// puts our terminal in raw mode and copies both ways.
type terminal struct {
	socketPath string
	dir        string
	ln         *net.UnixListener
	master     *os.File
	restore    func()
	done       chan struct{}
}

func newTerminal() (*terminal, error) {
	dir, err := os.MkdirTemp("", "berth-tty-")
	if err != nil {
		return nil, err
	}
	path := dir + "/console.sock"
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &terminal{socketPath: path, dir: dir, ln: ln, done: make(chan struct{})}, nil
}

// attach receives the master (sent during create/exec) and starts copying.
func (t *terminal) attach(pid int) error {
	t.ln.SetDeadline(time.Now().Add(10 * time.Second))
	conn, err := t.ln.AcceptUnix()
	if err != nil {
		return fmt.Errorf("console socket: %w", err)
	}
	defer conn.Close()
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) == 0 {
		return fmt.Errorf("console socket: no pty master received")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) == 0 {
		return fmt.Errorf("console socket: no pty master received")
	}
	t.master = os.NewFile(uintptr(fds[0]), "pty-master")
	if st, err := unix.IoctlGetTermios(0, unix.TCGETS); err == nil {
		raw := *st
		raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		raw.Oflag &^= unix.OPOST
		raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		raw.Cflag &^= unix.CSIZE | unix.PARENB
		raw.Cflag |= unix.CS8
		raw.Cc[unix.VMIN], raw.Cc[unix.VTIME] = 1, 0
		unix.IoctlSetTermios(0, unix.TCSETS, &raw)
		t.restore = func() { unix.IoctlSetTermios(0, unix.TCSETS, st) }
		if ws, err := unix.IoctlGetWinsize(0, unix.TIOCGWINSZ); err == nil {
			unix.IoctlSetWinsize(int(t.master.Fd()), unix.TIOCSWINSZ, ws)
		}
	}
	go io.Copy(t.master, os.Stdin)
	go func() {
		io.Copy(os.Stdout, bufio.NewReader(t.master))
		close(t.done)
	}()
	return nil
}

// wait lets the output drain after the process exits.
func (t *terminal) wait() {
	select {
	case <-t.done:
	case <-time.After(time.Second):
	}
}

func (t *terminal) close() {
	if t.restore != nil {
		t.restore()
	}
	if t.master != nil {
		t.master.Close()
	}
	t.ln.Close()
	os.RemoveAll(t.dir)
}

func capNames() []string {
	var out []string
	for _, c := range capability.ListKnown() {
		out = append(out, "CAP_"+strings.ToUpper(c.String()))
	}
	return out
}

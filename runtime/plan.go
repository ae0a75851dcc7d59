package runtime

// Choosing and writing the C init's plan (runtime/nsenter/plan.c, runtime/initplan): the
// container's first process then never starts Go. Everything the Go init (runtime/initproc)
// does is planned here in the same order; specs that need what the plan cannot express keep
// the Go init.

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/runtime/handshake"
	"github.com/berth-dev/berth/runtime/initplan"
	"github.com/berth-dev/berth/runtime/initproc"
	"github.com/berth-dev/berth/runtime/rootfs"
)

// GoInitEnv, set to 1, makes every container use the Go init (for comparison and tests).
const GoInitEnv = "BERTH_GO_INIT"

// planUnsupported says why cfg needs the Go init ("" when the plan can do it).
func planUnsupported(cfg *handshake.Config) string {
	spec := cfg.Spec
	p := spec.Process
	switch {
	case os.Getenv(GoInitEnv) == "1":
		return GoInitEnv + "=1"
	case !openat2Available():
		return "no openat2"
	case cfg.InUserNS:
		return "user namespace"
	case p.Terminal:
		return "terminal"
	case cfg.NoPivot:
		return "no pivot"
	case spec.Hooks != nil && (len(spec.Hooks.CreateContainer) > 0 || len(spec.Hooks.StartContainer) > 0):
		return "hooks inside the container"
	case p.Scheduler != nil:
		return "scheduler"
	case p.ApparmorProfile != "" || p.SelinuxLabel != "":
		return "LSM label"
	case cfg.SeccompFlags&unix.SECCOMP_FILTER_FLAG_NEW_LISTENER != 0:
		return "seccomp notify"
	}
	return rootfs.PlanUnsupported(spec)
}

var openat2Available = sync.OnceValue(func() bool {
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT}
	fd, err := unix.Openat2(unix.AT_FDCWD, "/", &how)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
})

// planOpts are the runtime's choices beyond the spec.
type planOpts struct {
	hooks    bool // stop before pivot_root for the runtime's prestart/createRuntime hooks
	startNow bool // exec the program right after ready (CreateOpts.StartNow)
}

// buildPlan writes the plan for the container's init; syncFd is the socket's number in the
// child and cgroupDirs its cgroup's directories (cgroups.Manager.Paths). sendFirst is called
// once, with the part that comes before the first step that needs the child in its cgroups;
// the result is the rest, which the caller sends once the child is in them.
func buildPlan(cfg *handshake.Config, syncFd int, o planOpts, cgroupDirs map[string]string, sendFirst func(part []byte) error) ([]byte, error) {
	spec := cfg.Spec
	p := spec.Process
	var pl initplan.Plan
	keep := []any{3 + cfg.PreserveFds, syncFd, cfg.FifoFd}
	pl.Add(initplan.OpCloseInherited, keep...)
	enter := func(pl *initplan.Plan) error {
		if err := sendFirst(pl.Flush()); err != nil {
			return err
		}
		// A cgroup namespace takes its root from the cgroup the process is in when it is made.
		if cfg.NewCgroupNS {
			pl.Add(initplan.OpUnshare, uint64(unix.CLONE_NEWCGROUP))
		}
		return nil
	}
	po := rootfs.PlanOptions{Rootfs: cfg.Rootfs, InCgroup: enter, CgroupDirs: cgroupDirs, NewCgroupNS: cfg.NewCgroupNS, Hooks: o.hooks}
	if err := rootfs.Plan(&pl, spec, po); err != nil {
		return nil, err
	}
	if initproc.HasNamespace(spec, specs.UTSNamespace) {
		if spec.Hostname != "" {
			pl.Add(initplan.OpHostname, spec.Hostname)
		}
		if spec.Domainname != "" {
			pl.Add(initplan.OpDomainname, spec.Domainname)
		}
	}
	if !cfg.NoNewKeyring {
		pl.Add(initplan.OpKeyring)
	}
	if len(p.Args) == 0 {
		return nil, errors.New("process args are empty")
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range p.Env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	pl.Add(initplan.OpLookPath, p.Args[0], path)
	for _, rl := range p.Rlimits {
		res, ok := initproc.Rlimits[rl.Type]
		if !ok {
			return nil, fmt.Errorf("unknown rlimit %q", rl.Type)
		}
		pl.Add(initplan.OpRlimit, res, rl.Soft, rl.Hard, rl.Type)
	}
	if p.OOMScoreAdj != nil {
		pl.Add(initplan.OpWrite, "/proc/self/oom_score_adj", strconv.Itoa(*p.OOMScoreAdj), "set oom_score_adj")
	}
	if p.IOPriority != nil {
		classes := map[specs.IOPriorityClass]int{specs.IOPRIO_CLASS_RT: 1, specs.IOPRIO_CLASS_BE: 2, specs.IOPRIO_CLASS_IDLE: 3}
		class, ok := classes[p.IOPriority.Class]
		if !ok {
			return nil, fmt.Errorf("unknown io priority class %q", p.IOPriority.Class)
		}
		pl.Add(initplan.OpIOPrio, class<<13|p.IOPriority.Priority)
	}
	cwd := p.Cwd
	if cwd == "" {
		cwd = "/"
	}
	if !strings.HasPrefix(cwd, "/") {
		return nil, fmt.Errorf("cwd %q must be an absolute path", cwd)
	}
	pl.Add(initplan.OpCwd, cwd)
	var prog []byte
	if len(cfg.Seccomp) > 0 {
		prog = unsafe.Slice((*byte)(unsafe.Pointer(&cfg.Seccomp[0])), len(cfg.Seccomp)*int(unsafe.Sizeof(cfg.Seccomp[0])))
	}
	if prog != nil && !p.NoNewPrivileges {
		pl.Add(initplan.OpSeccomp, prog, uint64(cfg.SeccompFlags))
	}
	if err := planCaps(&pl, p); err != nil {
		return nil, err
	}
	if p.NoNewPrivileges {
		pl.Add(initplan.OpNNP)
		if prog != nil {
			pl.Add(initplan.OpSeccomp, prog, uint64(cfg.SeccompFlags))
		}
	}
	pl.Add(initplan.OpCloseExtra, 3+cfg.PreserveFds)
	pl.Add(initplan.OpReady)
	if !o.startNow {
		pl.Add(initplan.OpWaitFifo, cfg.FifoFd)
	}
	pl.Add(initplan.OpExec, initplan.List(p.Args), initplan.List(p.Env))
	return pl.Bytes(), nil
}

func planCaps(pl *initplan.Plan, p *specs.Process) error {
	last, err := capability.LastCap()
	if err != nil {
		return err
	}
	mask := func(names []string) (uint64, error) {
		var m uint64
		for _, n := range names {
			c, ok := initproc.CapByName[strings.ToUpper(n)]
			if !ok {
				return 0, fmt.Errorf("unknown capability %q", n)
			}
			if c <= last { // a capability the kernel does not know is ignored, as runc does
				m |= 1 << uint(c)
			}
		}
		return m, nil
	}
	var sets [5]uint64
	if c := p.Capabilities; c != nil {
		for i, names := range [][]string{c.Bounding, c.Effective, c.Permitted, c.Inheritable, c.Ambient} {
			if sets[i], err = mask(names); err != nil {
				return err
			}
		}
	}
	groups := make([]byte, 0, 4*len(p.User.AdditionalGids))
	for _, g := range p.User.AdditionalGids {
		groups = append(groups, byte(g), byte(g>>8), byte(g>>16), byte(g>>24))
	}
	umask := int64(-1)
	if p.User.Umask != nil {
		umask = int64(*p.User.Umask)
	}
	pl.Add(initplan.OpCaps, sets[0], sets[1], sets[2], sets[3], sets[4], uint64(last),
		uint64(p.User.UID), uint64(p.User.GID), groups, uint64(umask))
	return nil
}

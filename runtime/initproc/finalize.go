package initproc

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/runtime/handshake"
	"github.com/berth-dev/berth/runtime/seccomp"
)

// finalize confines the calling thread; see the order in the package comment.
func finalize(cfg *handshake.Config, p *specs.Process) error {
	for _, rl := range p.Rlimits {
		res, ok := Rlimits[rl.Type]
		if !ok {
			return fmt.Errorf("unknown rlimit %q", rl.Type)
		}
		if err := unix.Setrlimit(res, &unix.Rlimit{Cur: rl.Soft, Max: rl.Hard}); err != nil {
			return fmt.Errorf("set %s: %w", rl.Type, err)
		}
	}
	if p.OOMScoreAdj != nil {
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(*p.OOMScoreAdj)), 0); err != nil {
			return fmt.Errorf("set oom_score_adj: %w", err)
		}
	}
	if p.IOPriority != nil {
		if err := setIOPriority(p.IOPriority); err != nil {
			return err
		}
	}
	if p.Scheduler != nil {
		if err := setScheduler(p.Scheduler); err != nil {
			return err
		}
	}
	if err := setLabels(p); err != nil {
		return err
	}
	if err := enterCwd(p.Cwd); err != nil {
		return err
	}
	if len(cfg.Seccomp) > 0 && !p.NoNewPrivileges {
		if _, err := seccomp.Load(cfg.Seccomp, cfg.SeccompFlags); err != nil {
			return fmt.Errorf("load seccomp filter: %w", err)
		}
	}
	if err := dropPrivileges(p); err != nil {
		return err
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("set no_new_privs: %w", err)
		}
		if len(cfg.Seccomp) > 0 {
			if _, err := seccomp.Load(cfg.Seccomp, cfg.SeccompFlags); err != nil {
				return fmt.Errorf("load seccomp filter: %w", err)
			}
		}
	}
	return closeExtraFds(3 + cfg.PreserveFds)
}

// enterCwd changes to the process's working directory and checks that it is inside the
// container's root: a path like /proc/self/fd/N through a descriptor leaked from the host
// would otherwise start the program in a host directory (CVE-2024-21626). The kernel reports
// a cwd outside the root as "(unreachable)/...".
func enterCwd(cwd string) error {
	if cwd == "" {
		cwd = "/"
	}
	if !strings.HasPrefix(cwd, "/") {
		return fmt.Errorf("cwd %q must be an absolute path", cwd)
	}
	if err := unix.Chdir(cwd); err != nil {
		return fmt.Errorf("chdir to cwd %q: %w", cwd, err)
	}
	wd, err := unix.Getwd()
	if err != nil || !strings.HasPrefix(wd, "/") {
		return fmt.Errorf("cwd %q is outside the container root", cwd)
	}
	return nil
}

func dropPrivileges(p *specs.Process) error {
	last, err := capability.LastCap()
	if err != nil {
		return err
	}
	want := func(names []string) ([]capability.Cap, error) {
		var out []capability.Cap
		for _, n := range names {
			c, ok := CapByName[strings.ToUpper(n)]
			if !ok {
				return nil, fmt.Errorf("unknown capability %q", n)
			}
			// A capability the kernel does not know is ignored, as runc does.
			if c <= last {
				out = append(out, c)
			}
		}
		return out, nil
	}
	var sets = map[capability.CapType][]string{}
	if c := p.Capabilities; c != nil {
		sets[capability.BOUNDING] = c.Bounding
		sets[capability.EFFECTIVE] = c.Effective
		sets[capability.PERMITTED] = c.Permitted
		sets[capability.INHERITABLE] = c.Inheritable
		sets[capability.AMBIENT] = c.Ambient
	}
	next, err := capability.NewPid2(0)
	if err != nil {
		return err
	}
	next.Clear(capability.CAPS | capability.BOUNDS | capability.AMBS)
	for which, names := range sets {
		cs, err := want(names)
		if err != nil {
			return err
		}
		next.Set(which, cs...)
	}
	// The bounding set first, while we still hold CAP_SETPCAP.
	if err := next.Apply(capability.BOUNDS); err != nil {
		return fmt.Errorf("apply capability bounding set: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return err
	}
	if err := setUser(p); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return err
	}
	if err := next.Apply(capability.CAPS | capability.AMBS); err != nil {
		return fmt.Errorf("apply capabilities: %w", err)
	}
	return nil
}

func setUser(p *specs.Process) error {
	u := p.User
	groups := make([]int, 0, len(u.AdditionalGids))
	for _, g := range u.AdditionalGids {
		groups = append(groups, int(g))
	}
	// setgroups(2) is denied in a user namespace whose setgroups file says "deny"; then only
	// an empty request may be skipped.
	if err := unix.Setgroups(groups); err != nil && !(len(groups) == 0 && errors.Is(err, unix.EPERM)) {
		return fmt.Errorf("setgroups %v: %w", groups, err)
	}
	if err := unix.Setresgid(int(u.GID), int(u.GID), int(u.GID)); err != nil {
		return fmt.Errorf("setgid %d: %w", u.GID, err)
	}
	if err := unix.Setresuid(int(u.UID), int(u.UID), int(u.UID)); err != nil {
		return fmt.Errorf("setuid %d: %w", u.UID, err)
	}
	if u.Umask != nil {
		unix.Umask(int(*u.Umask))
	}
	return nil
}

// closeExtraFds marks every descriptor from min up close-on-exec, so nothing the runtime had
// open reaches the program. Only the preserved ones below min survive execve.
func closeExtraFds(min int) error {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("list descriptors: %w", err)
	}
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < min {
			continue
		}
		unix.CloseOnExec(fd)
	}
	return nil
}

func setIOPriority(io *specs.LinuxIOPriority) error {
	classes := map[specs.IOPriorityClass]int{
		specs.IOPRIO_CLASS_RT: 1, specs.IOPRIO_CLASS_BE: 2, specs.IOPRIO_CLASS_IDLE: 3,
	}
	class, ok := classes[io.Class]
	if !ok {
		return fmt.Errorf("unknown io priority class %q", io.Class)
	}
	const ioprioWhoProcess = 1
	prio := class<<13 | io.Priority
	if _, _, errno := unix.Syscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, 0, uintptr(prio)); errno != 0 {
		return fmt.Errorf("set io priority: %w", errno)
	}
	return nil
}

func setScheduler(s *specs.Scheduler) error {
	policies := map[specs.LinuxSchedulerPolicy]uint32{
		specs.SchedOther: 0, specs.SchedFIFO: 1, specs.SchedRR: 2, specs.SchedBatch: 3,
		specs.SchedIdle: 5, specs.SchedDeadline: 6,
	}
	pol, ok := policies[s.Policy]
	if !ok {
		return fmt.Errorf("unknown scheduler policy %q", s.Policy)
	}
	attr := unix.SchedAttr{
		Size:     unix.SizeofSchedAttr,
		Policy:   pol,
		Nice:     s.Nice,
		Priority: uint32(s.Priority),
		Runtime:  s.Runtime,
		Deadline: s.Deadline,
		Period:   s.Period,
	}
	for _, f := range s.Flags {
		attr.Flags |= schedFlags[f]
	}
	if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
		return fmt.Errorf("set scheduler: %w", err)
	}
	return nil
}

var schedFlags = map[specs.LinuxSchedulerFlag]uint64{
	specs.SchedFlagResetOnFork: 0x01, specs.SchedFlagReclaim: 0x02, specs.SchedFlagDLOverrun: 0x04,
	specs.SchedFlagKeepPolicy: 0x08, specs.SchedFlagKeepParams: 0x10, specs.SchedFlagUtilClampMin: 0x20,
	specs.SchedFlagUtilClampMax: 0x40,
}

// Rlimits maps the spec's rlimit names to their numbers.
var Rlimits = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE,
	"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK": unix.RLIMIT_STACK,
}

// CapByName maps "CAP_X" names to the capabilities this library knows.
var CapByName = func() map[string]capability.Cap {
	m := map[string]capability.Cap{}
	for _, c := range capability.ListKnown() {
		m["CAP_"+strings.ToUpper(c.String())] = c
	}
	return m
}()

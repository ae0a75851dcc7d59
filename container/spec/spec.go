package spec

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/container/opts"
	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/profiles/seccomp"
	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const (
	// InitPathInContainer is where HostConfig.Init's init binary is mounted, as in docker.
	InitPathInContainer = "/sbin/docker-init"
	// DefaultShmSize is the size of /dev/shm when HostConfig.ShmSize is 0 (docker's 64 MiB).
	DefaultShmSize = 64 << 20
	// DefaultPathEnv is the PATH a container gets when neither it nor its image sets one.
	DefaultPathEnv = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// DefaultCaps is Docker's default capability set.
var DefaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// DefaultMaskedPaths are Docker's masked paths (bind-mounted over with /dev/null or an empty
// read-only tmpfs). Generate adds /sys/devices/system/cpu/cpuN/thermal_throttle for each one the
// host has, as Docker 28 does.
var DefaultMaskedPaths = []string{
	"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
	"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
	"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
}

// DefaultReadonlyPaths are Docker's read-only paths.
var DefaultReadonlyPaths = []string{
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
}

// Input is everything Generate needs about one container.
type Input struct {
	ID string
	// Rootfs is the host path of the container's mounted root filesystem; /etc/passwd and
	// /etc/group are read inside it.
	Rootfs string
	// Config is docker's Config, already merged with the image (see Merge).
	Config *container.Config
	Host   *container.HostConfig
	// Mounts are the bind and volume mounts (HostConfig.Binds, HostConfig.Mounts of type bind
	// and volume, the image's anonymous volumes), resolved by the engine to host sources, as
	// BindMount makes them. Tmpfs mounts (HostConfig.Tmpfs, HostConfig.Mounts of type tmpfs)
	// are Generate's.
	Mounts []specs.Mount
	// Host files bind-mounted at /etc/hostname, /etc/hosts and /etc/resolv.conf; "" skips one.
	HostnamePath, HostsPath, ResolvConfPath string
	CgroupsPath                             string
	// InitPath is the host path of the berth-init binary, mounted read-only at
	// /sbin/docker-init when HostConfig.Init is true.
	InitPath string
	// NamespacePaths are namespaces to join: the engine resolves --pid/--ipc container:NAME
	// (and net for --network container:NAME) to /proc/PID/ns/TYPE. A path given for a
	// namespace the container would create joins that one instead.
	NamespacePaths map[specs.LinuxNamespaceType]string
	// NetNSPath is the network namespace to join; "" creates a new one (network none or
	// bridge). NetworkMode host means no network namespace.
	NetNSPath string
	// ShmPath is a host directory bind-mounted at /dev/shm for --ipc container:NAME (that
	// container's /dev/shm); "" gives such a container a tmpfs of its own.
	ShmPath string
}

// Hostname is the container's hostname as dockerd chooses it: Config.Hostname, else the
// host's with --network host, else the first 12 characters of the id.
func Hostname(id string, c *container.Config, h *container.HostConfig) string {
	if c != nil && c.Hostname != "" {
		return c.Hostname
	}
	if h != nil && h.NetworkMode.IsHost() {
		if hn, err := os.Hostname(); err == nil {
			return hn
		}
	}
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Generate builds the OCI runtime spec of a container the way dockerd does for `docker run`.
func Generate(in Input) (*specs.Spec, error) {
	c, h := in.Config, in.Host
	if c == nil {
		c = &container.Config{}
	}
	if h == nil {
		h = &container.HostConfig{}
	}
	if in.ID == "" {
		return nil, errors.New("generate spec: the container id is empty")
	}
	if in.Rootfs == "" {
		return nil, errors.New("generate spec: the rootfs path is empty")
	}
	if !h.PidMode.Valid() {
		return nil, fmt.Errorf("invalid PID mode: %v", h.PidMode)
	}
	if !h.IpcMode.Valid() {
		return nil, fmt.Errorf("invalid IPC mode: %v", h.IpcMode)
	}
	if !h.CgroupnsMode.Valid() {
		return nil, fmt.Errorf("invalid cgroup namespace mode: %v", h.CgroupnsMode)
	}
	if h.UTSMode != "" && !h.UTSMode.IsHost() && !strings.HasPrefix(string(h.UTSMode), "container:") {
		return nil, fmt.Errorf("invalid UTS mode: %v", h.UTSMode)
	}
	sec, err := opts.ParseSecurity(h.SecurityOpt)
	if err != nil {
		return nil, err
	}

	s := &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: in.Rootfs, Readonly: h.ReadonlyRootfs},
		Process: &specs.Process{Terminal: c.Tty},
		Linux:   &specs.Linux{Sysctl: map[string]string{}, CgroupsPath: in.CgroupsPath},
	}
	if len(h.Annotations) > 0 {
		s.Annotations = maps.Clone(h.Annotations)
	}

	// The command; --init only in a PID namespace of the container's own, as docker.
	args := append(slices.Clone(c.Entrypoint), c.Cmd...)
	if len(args) == 0 {
		return nil, errors.New("no command specified")
	}
	withInit := h.Init != nil && *h.Init && !h.PidMode.IsHost() && !h.PidMode.IsContainer()
	if withInit {
		if in.InitPath == "" {
			return nil, errors.New("--init needs the berth-init binary: its path is not set")
		}
		args = append([]string{InitPathInContainer, "--"}, args...)
	}
	s.Process.Args = args

	cwd := c.WorkingDir
	if cwd == "" {
		cwd = "/"
	}
	if !path.IsAbs(cwd) {
		return nil, fmt.Errorf("the working directory '%s' is invalid, it needs to be an absolute path", c.WorkingDir)
	}
	s.Process.Cwd = path.Clean(cwd)

	hostname := Hostname(in.ID, c, h)
	if c.Tty && (h.ConsoleSize[0] != 0 || h.ConsoleSize[1] != 0) {
		s.Process.ConsoleSize = &specs.Box{Height: h.ConsoleSize[0], Width: h.ConsoleSize[1]}
	}

	usr, home, err := ResolveUser(in.Rootfs, c.User, h.GroupAdd)
	if err != nil {
		return nil, err
	}
	s.Process.User = usr
	s.Process.Env = environment(c, hostname, home)

	caps, err := capabilities(h)
	if err != nil {
		return nil, err
	}
	s.Process.Capabilities = &specs.LinuxCapabilities{
		Bounding: caps, Effective: slices.Clone(caps), Permitted: slices.Clone(caps),
	}
	s.Process.NoNewPrivileges = sec.NoNewPrivileges
	s.Process.ApparmorProfile = sec.AppArmorProfile
	oom := h.OomScoreAdj
	s.Process.OOMScoreAdj = &oom
	for _, u := range h.Ulimits {
		if u == nil {
			continue
		}
		s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{
			Type: "RLIMIT_" + strings.ToUpper(u.Name), Soft: uint64(u.Soft), Hard: uint64(u.Hard),
		})
	}

	// Namespaces.
	if err := namespaces(s, in, h); err != nil {
		return nil, err
	}
	if hasNamespace(s, specs.UTSNamespace, false) {
		s.Hostname = hostname
		s.Domainname = c.Domainname
	}

	// Sysctls: docker's two network defaults in a network namespace of the container's own,
	// then the container's.
	if !h.NetworkMode.IsHost() && !h.NetworkMode.IsContainer() {
		for k, v := range map[string]string{
			"net.ipv4.ping_group_range":           "0 2147483647",
			"net.ipv4.ip_unprivileged_port_start": "0",
		} {
			if sysctlExists(k) {
				s.Linux.Sysctl[k] = v
			}
		}
	}
	for k, v := range h.Sysctls {
		if err := checkSysctl(s, k); err != nil {
			return nil, err
		}
		s.Linux.Sysctl[k] = v
	}

	// Resources and devices.
	res, err := resources(h)
	if err != nil {
		return nil, err
	}
	devs, rules, err := devices(h)
	if err != nil {
		return nil, err
	}
	res.Devices = rules
	s.Linux.Resources = res
	s.Linux.Devices = devs

	// Masked and read-only paths.
	if !h.Privileged {
		s.Linux.MaskedPaths = append(slices.Clone(DefaultMaskedPaths), thermalThrottlePaths()...)
		s.Linux.ReadonlyPaths = slices.Clone(DefaultReadonlyPaths)
	}
	if h.MaskedPaths != nil {
		s.Linux.MaskedPaths = slices.Clone(h.MaskedPaths)
	}
	if h.ReadonlyPaths != nil {
		s.Linux.ReadonlyPaths = slices.Clone(h.ReadonlyPaths)
	}

	// Seccomp, for the capabilities chosen above.
	if s.Linux.Seccomp, err = seccompProfile(s, h, sec); err != nil {
		return nil, err
	}

	// Mounts.
	if s.Mounts, err = mounts(in, h, sec, withInit); err != nil {
		return nil, err
	}
	s.Linux.RootfsPropagation = rootfsPropagation(s.Mounts)
	return s, nil
}

// environment is docker's: PATH, HOSTNAME, TERM=xterm with a tty, then Config.Env replacing
// by name; a bare NAME in Config.Env removes NAME. HOME comes from the user's passwd entry
// when still unset (runc's rule).
func environment(c *container.Config, hostname, home string) []string {
	env := []string{"PATH=" + DefaultPathEnv, "HOSTNAME=" + hostname}
	if c.Tty {
		env = append(env, "TERM=xterm")
	}
	env = mergeEnv(env, c.Env)
	out := env[:0]
	hasHome := false
	for _, kv := range env {
		k, _, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		if k == "HOME" {
			hasHome = true
		}
		out = append(out, kv)
	}
	if !hasHome {
		if home == "" {
			home = "/"
		}
		out = append(out, "HOME="+home)
	}
	return out
}

// AllCaps lists every capability the running kernel knows, as CAP_ names.
func AllCaps() []string {
	last, err := capability.LastCap()
	var all []string
	for _, c := range capability.ListKnown() {
		if err != nil || c <= last {
			all = append(all, "CAP_"+strings.ToUpper(c.String()))
		}
	}
	return all
}

// normalizeCaps upper-cases and CAP_-prefixes --cap-add/--cap-drop values ("ALL" stays).
func normalizeCaps(list []string) ([]string, error) {
	known := map[string]bool{}
	for _, c := range capability.ListKnown() {
		known["CAP_"+strings.ToUpper(c.String())] = true
	}
	var out []string
	for _, c := range list {
		c = strings.ToUpper(strings.TrimSpace(c))
		if c == "ALL" {
			out = append(out, c)
			continue
		}
		if !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		if !known[c] {
			return nil, fmt.Errorf("unknown capability: %q", c)
		}
		out = append(out, c)
	}
	return out, nil
}

// capabilities is docker's TweakCapabilities: all with --privileged; else the defaults less
// --cap-drop plus --cap-add, where --cap-add ALL starts from every capability and --cap-drop
// ALL from none.
func capabilities(h *container.HostConfig) ([]string, error) {
	if h.Privileged {
		return AllCaps(), nil
	}
	drop, err := normalizeCaps(h.CapDrop)
	if err != nil {
		return nil, err
	}
	add, err := normalizeCaps(h.CapAdd)
	if err != nil {
		return nil, err
	}
	var caps []string
	switch {
	case slices.Contains(add, "ALL"):
		for _, c := range AllCaps() {
			if !slices.Contains(drop, c) {
				caps = append(caps, c)
			}
		}
	case slices.Contains(drop, "ALL"):
		caps = add
	default:
		for _, c := range DefaultCaps {
			if !slices.Contains(drop, c) {
				caps = append(caps, c)
			}
		}
		caps = append(caps, add...)
	}
	out := []string{}
	for _, c := range caps {
		if c != "ALL" && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, nil
}

func seccompProfile(s *specs.Spec, h *container.HostConfig, sec opts.Security) (*specs.LinuxSeccomp, error) {
	custom := sec.Seccomp != "" && sec.Seccomp != "unconfined" && sec.Seccomp != "builtin" && sec.Seccomp != "default"
	switch {
	case sec.Seccomp == "unconfined":
		return nil, nil
	case h.Privileged && !custom:
		return nil, nil
	case custom:
		p, err := seccomp.LoadProfile(sec.Seccomp, s)
		if err != nil {
			return nil, fmt.Errorf("invalid seccomp profile: %v", err)
		}
		return p, nil
	}
	return seccomp.GetDefaultProfile(s)
}

// namespaces sets linux.namespaces: a new one of each kind (mount, network, uts, pid, ipc,
// cgroup); a host mode drops its kind; a container: mode joins the path the engine gave.
func namespaces(s *specs.Spec, in Input, h *container.HostConfig) error {
	paths := in.NamespacePaths
	join := func(t specs.LinuxNamespaceType, mode string) (specs.LinuxNamespace, error) {
		p := paths[t]
		if t == specs.NetworkNamespace && in.NetNSPath != "" {
			p = in.NetNSPath
		}
		if p == "" {
			return specs.LinuxNamespace{}, fmt.Errorf("%s mode %s: the engine gave no %s namespace path to join", t, mode, t)
		}
		return specs.LinuxNamespace{Type: t, Path: p}, nil
	}
	ns := []specs.LinuxNamespace{{Type: specs.MountNamespace}}

	switch nm := h.NetworkMode; {
	case nm.IsHost():
	case nm.IsContainer():
		n, err := join(specs.NetworkNamespace, string(nm))
		if err != nil {
			return err
		}
		ns = append(ns, n)
	default:
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: in.NetNSPath})
	}

	switch m := h.UTSMode; {
	case m.IsHost():
	case strings.HasPrefix(string(m), "container:"):
		n, err := join(specs.UTSNamespace, string(m))
		if err != nil {
			return err
		}
		ns = append(ns, n)
	default:
		ns = append(ns, specs.LinuxNamespace{Type: specs.UTSNamespace})
	}

	switch m := h.PidMode; {
	case m.IsHost():
	case m.IsContainer():
		n, err := join(specs.PIDNamespace, string(m))
		if err != nil {
			return err
		}
		ns = append(ns, n)
	default:
		ns = append(ns, specs.LinuxNamespace{Type: specs.PIDNamespace})
	}

	switch m := h.IpcMode; {
	case m.IsHost():
	case m.IsContainer():
		n, err := join(specs.IPCNamespace, string(m))
		if err != nil {
			return err
		}
		ns = append(ns, n)
	default:
		ns = append(ns, specs.LinuxNamespace{Type: specs.IPCNamespace})
	}

	if !h.CgroupnsMode.IsHost() {
		ns = append(ns, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	}

	for i := range ns {
		if ns[i].Path == "" && paths[ns[i].Type] != "" {
			ns[i].Path = paths[ns[i].Type]
		}
	}
	if p := paths[specs.UserNamespace]; p != "" {
		ns = append(ns, specs.LinuxNamespace{Type: specs.UserNamespace, Path: p})
	}
	s.Linux.Namespaces = ns
	return nil
}

// hasNamespace reports whether the spec has a namespace of type t: a new one, or also a
// joined one with includeJoined.
func hasNamespace(s *specs.Spec, t specs.LinuxNamespaceType, includeJoined bool) bool {
	for _, n := range s.Linux.Namespaces {
		if n.Type == t {
			return includeJoined || n.Path == ""
		}
	}
	return false
}

func sysctlExists(k string) bool {
	_, err := os.Stat(filepath.Join("/proc/sys", strings.ReplaceAll(k, ".", "/")))
	return err == nil
}

// checkSysctl refuses a namespaced sysctl whose namespace the container shares with the host.
func checkSysctl(s *specs.Spec, k string) error {
	switch {
	case strings.HasPrefix(k, "net."):
		if !hasNamespace(s, specs.NetworkNamespace, true) {
			return fmt.Errorf("sysctl %q is not allowed in the host network namespace", k)
		}
	case strings.HasPrefix(k, "kernel.msg"), strings.HasPrefix(k, "kernel.shm"), k == "kernel.sem", strings.HasPrefix(k, "fs.mqueue."):
		if !hasNamespace(s, specs.IPCNamespace, true) {
			return fmt.Errorf("sysctl %q is not allowed in the host IPC namespace", k)
		}
	case k == "kernel.hostname", k == "kernel.domainname":
		if !hasNamespace(s, specs.UTSNamespace, true) {
			return fmt.Errorf("sysctl %q is not allowed in the host UTS namespace", k)
		}
	}
	return nil
}

// thermalThrottlePaths are the host's /sys/devices/system/cpu/cpuN/thermal_throttle
// (docker masks them: GHSA-6fw5-f8r9-fgfm).
func thermalThrottlePaths() []string {
	m, _ := filepath.Glob("/sys/devices/system/cpu/cpu[0-9]*/thermal_throttle")
	slices.SortFunc(m, func(a, b string) int {
		if len(a) != len(b) {
			return len(a) - len(b)
		}
		return strings.Compare(a, b)
	})
	return m
}

// resources is docker's: memory (swap twice the limit by default), CPU (NanoCPUs as a quota
// over a 100ms period), pids (<= 0 is unlimited), block I/O.
func resources(h *container.HostConfig) (*specs.LinuxResources, error) {
	r := h.Resources
	res := &specs.LinuxResources{}

	var mem specs.LinuxMemory
	if r.Memory > 0 {
		mem.Limit = i64(r.Memory)
		swap := r.MemorySwap
		if swap == 0 {
			swap = 2 * r.Memory
		}
		if swap > 0 {
			if swap < r.Memory {
				return nil, errors.New("minimum memoryswap limit should be larger than memory limit, see usage")
			}
			mem.Swap = i64(swap)
		}
	} else if r.MemorySwap > 0 {
		return nil, errors.New("you should always set the memory limit when using memoryswap limit, see usage")
	}
	if r.MemoryReservation > 0 {
		mem.Reservation = i64(r.MemoryReservation)
	}
	if r.MemorySwappiness != nil && *r.MemorySwappiness >= 0 {
		if *r.MemorySwappiness > 100 {
			return nil, fmt.Errorf("invalid value: %d, valid memory swappiness range is 0-100", *r.MemorySwappiness)
		}
		v := uint64(*r.MemorySwappiness)
		mem.Swappiness = &v
	}
	if r.OomKillDisable != nil {
		v := *r.OomKillDisable
		mem.DisableOOMKiller = &v
	}
	if mem != (specs.LinuxMemory{}) {
		res.Memory = &mem
	}

	var cpu specs.LinuxCPU
	if r.CPUShares < 0 {
		return nil, fmt.Errorf("invalid CPU shares (%d): value must be a positive integer", r.CPUShares)
	}
	if r.CPUShares > 0 {
		v := uint64(r.CPUShares)
		cpu.Shares = &v
	}
	cpu.Cpus, cpu.Mems = r.CpusetCpus, r.CpusetMems
	if r.NanoCPUs > 0 && (r.CPUPeriod != 0 || r.CPUQuota != 0) {
		return nil, errors.New("conflicting options: Nano CPUs and CPU Period or CPU Quota cannot both be set")
	}
	if r.NanoCPUs < 0 {
		return nil, errors.New("invalid CPU count: NanoCPUs must not be negative")
	}
	if r.NanoCPUs > 0 {
		period := uint64(100 * time.Millisecond / time.Microsecond)
		quota := r.NanoCPUs * int64(period) / 1e9
		cpu.Period, cpu.Quota = &period, &quota
	}
	if r.CPUPeriod != 0 {
		v := uint64(r.CPUPeriod)
		cpu.Period = &v
	}
	if r.CPUQuota != 0 {
		cpu.Quota = i64(r.CPUQuota)
	}
	if r.CPURealtimePeriod != 0 {
		v := uint64(r.CPURealtimePeriod)
		cpu.RealtimePeriod = &v
	}
	if r.CPURealtimeRuntime != 0 {
		cpu.RealtimeRuntime = i64(r.CPURealtimeRuntime)
	}
	if cpu != (specs.LinuxCPU{}) {
		res.CPU = &cpu
	}

	if r.PidsLimit != nil {
		limit := *r.PidsLimit
		if limit <= 0 {
			limit = -1
		}
		res.Pids = &specs.LinuxPids{Limit: &limit}
	}

	var bio specs.LinuxBlockIO
	if r.BlkioWeight != 0 {
		w := r.BlkioWeight
		bio.Weight = &w
	}
	for _, d := range r.BlkioWeightDevice {
		if d == nil {
			continue
		}
		maj, min, err := majorMinor(d.Path)
		if err != nil {
			return nil, err
		}
		w := d.Weight
		wd := specs.LinuxWeightDevice{Weight: &w}
		wd.Major, wd.Minor = maj, min
		bio.WeightDevice = append(bio.WeightDevice, wd)
	}
	for _, t := range []struct {
		in  []*blkiodev.ThrottleDevice
		out *[]specs.LinuxThrottleDevice
	}{
		{r.BlkioDeviceReadBps, &bio.ThrottleReadBpsDevice},
		{r.BlkioDeviceWriteBps, &bio.ThrottleWriteBpsDevice},
		{r.BlkioDeviceReadIOps, &bio.ThrottleReadIOPSDevice},
		{r.BlkioDeviceWriteIOps, &bio.ThrottleWriteIOPSDevice},
	} {
		for _, d := range t.in {
			if d == nil {
				continue
			}
			maj, min, err := majorMinor(d.Path)
			if err != nil {
				return nil, err
			}
			td := specs.LinuxThrottleDevice{Rate: d.Rate}
			td.Major, td.Minor = maj, min
			*t.out = append(*t.out, td)
		}
	}
	if bio.Weight != nil || len(bio.WeightDevice) > 0 || len(bio.ThrottleReadBpsDevice) > 0 ||
		len(bio.ThrottleWriteBpsDevice) > 0 || len(bio.ThrottleReadIOPSDevice) > 0 || len(bio.ThrottleWriteIOPSDevice) > 0 {
		res.BlockIO = &bio
	}
	return res, nil
}

package rootfs

// The plan form of Setup: the same steps, emitted as operations for the C init
// (runtime/nsenter/plan.c) instead of performed. Decisions that Setup makes by looking at the
// host (the rootfs's parent mount, cgroup hierarchies, /proc/kcore) are made here, by the
// runtime, in the host's view: the container's mount namespace is a copy of it.

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/moby/sys/mountinfo"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/runtime/initplan"
)

// PlanOptions are the facts Plan needs beyond the spec.
type PlanOptions struct {
	Rootfs string
	// InCgroup is called once, before the first step that needs the process in its cgroups
	// (a cgroup mount; at the latest, the hooks). It may end the plan's first part
	// (initplan.Plan.Flush) and add the cgroup namespace's unshare; the runtime puts the
	// process in its cgroups before the rest reaches it. Nil: the process is in them (tests).
	InCgroup func(*initplan.Plan) error
	// CgroupDirs maps a cgroup v1 controller (as /proc/PID/cgroup names it: "cpu",
	// "name=systemd"; "" for the unified tree) to the host directory of the container's cgroup
	// in that hierarchy; hierarchies it does not name show the runtime's own cgroup, where the
	// process stays in them. Only a cgroup mount without a cgroup namespace uses it.
	CgroupDirs map[string]string
	// NewCgroupNS: the process has (or is about to unshare) a cgroup namespace.
	NewCgroupNS bool
	// Hooks: the runtime has prestart/createRuntime hooks to run before pivot_root
	// (OpHooks, a round trip, only then).
	Hooks bool

	inCgroup func() error                      // InCgroup, called once
	mounts   func() ([]*mountinfo.Info, error) // the host's mount table, read once
}

// PlanUnsupported says why the spec's filesystem cannot be planned ("" when it can): those
// specs are set up by Setup in the Go init.
func PlanUnsupported(spec *specs.Spec) string {
	for i := range spec.Mounts {
		m := &spec.Mounts[i]
		o := parseMountOptions(m.Options)
		if o.idmap || len(m.UIDMappings) > 0 || len(m.GIDMappings) > 0 {
			return "idmapped mount"
		}
		if o.copyUp {
			return "tmpcopyup mount"
		}
	}
	if spec.Linux != nil {
		for _, d := range spec.Linux.Devices {
			if _, err := devType(d.Type); err != nil {
				return "device type " + d.Type
			}
		}
	}
	return ""
}

// Plan emits Setup's steps; the hooks step (OpHooks) stands where BeforePivot runs, and the
// sysctls where AfterPivot writes them.
func Plan(p *initplan.Plan, spec *specs.Spec, o PlanOptions) error {
	var linux specs.Linux
	if spec.Linux != nil {
		linux = *spec.Linux
	}
	o.inCgroup = sync.OnceValue(func() error {
		if o.InCgroup == nil {
			return nil
		}
		return o.InCgroup(p)
	})
	o.mounts = sync.OnceValues(readMounts)
	rootProp, err := rootPropagation(linux.RootfsPropagation)
	if err != nil {
		return err
	}
	flag := uint64(unix.MS_SLAVE | unix.MS_REC)
	if rootProp != 0 {
		flag = uint64(rootProp)
	}
	p.Add(initplan.OpMount, "", "/", "", flag, "make / "+propName(uintptr(flag)))
	// After a recursive slave/private/unbindable "/", the rootfs's parent mount is no longer
	// shared; otherwise pivot_root needs it private (Setup checks after the fact, as here).
	if flag&unix.MS_REC == 0 || flag&unix.MS_SHARED != 0 {
		if mp, err := sharedParent(o.Rootfs, o.mounts); err != nil {
			return err
		} else if mp != "" {
			p.Add(initplan.OpMount, "", mp, "", uint64(unix.MS_PRIVATE), "make rootfs parent private")
		}
	}
	p.Add(initplan.OpMount, o.Rootfs, o.Rootfs, "", uint64(unix.MS_BIND|unix.MS_REC), "bind rootfs onto itself")
	p.Add(initplan.OpOpenRoot, o.Rootfs)

	for i := range spec.Mounts {
		if err := planMount(p, &spec.Mounts[i], o); err != nil {
			return err
		}
	}
	if !devBindMounted(spec.Mounts) {
		if err := planDevices(p, linux.Devices); err != nil {
			return err
		}
		links := [][2]string{{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"}}
		if _, err := os.Stat("/proc/kcore"); err == nil {
			links = append(links, [2]string{"/proc/kcore", "core"})
		}
		for _, l := range links {
			p.Add(initplan.OpSymlink, "/dev", l[0], l[1], false)
		}
		if devptsMounted(spec.Mounts) {
			p.Add(initplan.OpSymlink, "/dev", "pts/ptmx", "ptmx", true)
		}
	}
	if err := o.inCgroup(); err != nil {
		return err
	}
	if o.Hooks {
		p.Add(initplan.OpHooks)
	}
	p.Add(initplan.OpPivot)
	keys := make([]string, 0, len(linux.Sysctl))
	for k := range linux.Sysctl {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		rel := strings.ReplaceAll(k, ".", "/")
		if strings.Contains(rel, "..") || strings.HasPrefix(rel, "/") {
			return fmt.Errorf("sysctl %q: invalid name", k)
		}
		p.Add(initplan.OpWrite, "/proc/sys/"+rel, linux.Sysctl[k], fmt.Sprintf("sysctl %s=%s", k, linux.Sysctl[k]))
	}
	for _, path := range linux.ReadonlyPaths {
		p.Add(initplan.OpReadonly, cleanInRoot(path))
	}
	for _, path := range linux.MaskedPaths {
		p.Add(initplan.OpMask, cleanInRoot(path))
	}
	if spec.Root != nil && spec.Root.Readonly {
		p.Add(initplan.OpRoRoot)
	}
	if rootProp != 0 {
		p.Add(initplan.OpMount, "", "/", "", uint64(rootProp), "set rootfs propagation")
	}
	p.Add(initplan.OpChdirRoot)
	return nil
}

// sharedParent returns the mount point holding rootfs when that mount is shared.
func sharedParent(rootfs string, mounts func() ([]*mountinfo.Info, error)) (string, error) {
	all, err := mounts()
	if err != nil {
		return "", err
	}
	var parent *mountinfo.Info
	isParent := mountinfo.ParentsFilter(rootfs)
	for _, m := range all {
		if skip, _ := isParent(m); skip {
			continue
		}
		if parent == nil || len(m.Mountpoint) > len(parent.Mountpoint) {
			parent = m
		}
	}
	if parent == nil || !strings.Contains(parent.Optional, "shared:") {
		return "", nil
	}
	return parent.Mountpoint, nil
}

// readMounts reads this process's mount table. Not mountinfo.GetMounts: that locks the
// goroutine to its thread to read /proc/thread-self (the runtime's threads all share one mount
// namespace), which costs a short-lived runtime a thread of its own.
func readMounts() ([]*mountinfo.Info, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, wrapErr("read mountinfo", "/", err)
	}
	defer f.Close()
	mounts, err := mountinfo.GetMountsFromReader(f, nil)
	if err != nil {
		return nil, wrapErr("read mountinfo", "/", err)
	}
	return mounts, nil
}

func props(o *mountOpts) initplan.Props {
	var out initplan.Props
	for _, pr := range o.props {
		rec := uint64(0)
		if pr.recursive {
			rec = 1
		}
		out = append(out, [2]uint64{pr.flag, rec})
	}
	return out
}

func planMount(p *initplan.Plan, m *specs.Mount, po PlanOptions) error {
	o := parseMountOptions(m.Options)
	dest := cleanInRoot(m.Destination)
	typ := m.Type
	if isBind(m, &o) {
		typ = "bind"
	}
	if typ == "" {
		return wrapErr("mount", dest, fmt.Errorf("%w: mount type is empty", ErrInvalidSpec))
	}
	if o.unsupported != "" {
		return wrapErr("mount "+typ, dest, fmt.Errorf("%w: option %q", ErrUnsupported, o.unsupported))
	}
	switch typ {
	case "bind":
		if m.Source == "" {
			return wrapErr("mount bind", dest, fmt.Errorf("%w: bind mount without source", ErrInvalidSpec))
		}
		p.Add(initplan.OpBind, dest, m.Source, o.recursive, o.attrSet, o.attrClr, o.recSet, o.recClr, props(&o))
	case "cgroup", "cgroup2":
		return wrapErr("mount "+typ, dest, planCgroup(p, dest, &o, po))
	default:
		strict := typ == "proc" || typ == "sysfs"
		p.Add(initplan.OpMountFS, dest, strict, typ, m.Source, initplan.List(o.data), o.attrSet, o.recSet, o.recClr, props(&o))
	}
	return nil
}

func planCgroup(p *initplan.Plan, dest string, o *mountOpts, po PlanOptions) error {
	// Also for cgroup2: the mount shows the namespace's root, made in the container's cgroup.
	if err := po.inCgroup(); err != nil {
		return err
	}
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		return fmt.Errorf("statfs /sys/fs/cgroup: %w", err)
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		p.Add(initplan.OpMountFS, dest, false, "cgroup2", "cgroup2", initplan.List(o.data), o.attrSet, o.recSet, o.recClr, props(o))
		return nil
	}
	// The process's hierarchies are the runtime's: it was started from here. Its place in them
	// is known without asking it (CgroupDirs), so this part of the plan is written while the
	// process starts, not after it reported in.
	entries, err := selfCgroups()
	if err != nil {
		return err
	}
	all, err := po.mounts()
	if err != nil {
		return err
	}
	var mounts []*mountinfo.Info
	for _, m := range all {
		if m.FSType == "cgroup" || m.FSType == "cgroup2" {
			mounts = append(mounts, m)
		}
	}
	p.Add(initplan.OpCgroupTmpfs, dest)
	set := o.attrSet | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC
	for _, e := range entries {
		m := hierarchyMount(mounts, e.controllers)
		if m == nil {
			continue
		}
		name := filepath.Base(m.Mountpoint)
		var links initplan.List
		if strings.Contains(name, ",") {
			links = strings.Split(name, ",")
		}
		fstype, data := "cgroup2", initplan.List(nil)
		if e.controllers != "" {
			fstype = "cgroup"
			for _, c := range strings.Split(e.controllers, ",") {
				if strings.HasPrefix(c, "name=") {
					data = append(data, "none")
				}
				data = append(data, c)
			}
		}
		source := ""
		if dir := cgroupDir(po.CgroupDirs, e.controllers); !po.NewCgroupNS && dir != "" {
			// Outside a cgroup namespace: bind the container's own cgroup directory.
			source = dir
		} else if !po.NewCgroupNS && e.path != "/" {
			// A hierarchy the container was not moved in: it shares the runtime's cgroup.
			rel := e.path
			if m.Root != "/" {
				r, err := filepath.Rel(m.Root, e.path)
				if err != nil || strings.HasPrefix(r, "..") {
					continue
				}
				rel = r
			}
			source = filepath.Join(m.Mountpoint, rel)
		}
		p.Add(initplan.OpCgroupHier, name, fstype, data, source, set, o.attrClr&^set, links)
	}
	p.Add(initplan.OpCgroupDone, o.attrSet, o.attrClr, props(o))
	return nil
}

// cgroupDir is the container's directory in the hierarchy of controllers (a comma list).
func cgroupDir(dirs map[string]string, controllers string) string {
	for _, c := range strings.Split(controllers, ",") {
		if dir, ok := dirs[c]; ok {
			return dir
		}
	}
	return ""
}

func planDevices(p *initplan.Plan, extra []specs.LinuxDevice) error {
	for _, d := range allDevices(extra) {
		path := cleanInRoot(d.Path)
		ftype, err := devType(d.Type)
		if err != nil {
			return wrapErr("create device", path, err)
		}
		if path == "/" {
			return wrapErr("create device", path, fmt.Errorf("%w: device path %q", ErrInvalidSpec, d.Path))
		}
		perm := uint64(0o666)
		if d.FileMode != nil {
			perm = uint64(d.FileMode.Perm())
		}
		var uid, gid uint64
		if d.UID != nil {
			uid = uint64(*d.UID)
		}
		if d.GID != nil {
			gid = uint64(*d.GID)
		}
		p.Add(initplan.OpMknod, path, uint64(ftype), perm, uint64(d.Major), uint64(d.Minor), uid, gid)
	}
	return nil
}

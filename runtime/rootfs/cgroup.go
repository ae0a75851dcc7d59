package rootfs

// The "cgroup" mount type. On a cgroup v2 host a fresh cgroup2 instance is
// mounted (its root is the container's cgroup when it has a cgroup
// namespace). On a v1 or hybrid host, like runc, a tmpfs is mounted and each
// hierarchy's directory of *this process's* cgroup is bind mounted into it
// under the host's mount name, so the container sees only its own cgroups.

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

func mountCgroup(root *os.File, dest string, o *mountOpts) error {
	target, err := openTarget(root, dest, targetDir)
	if err != nil {
		return err
	}
	defer target.Close()

	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		return fmt.Errorf("statfs /sys/fs/cgroup: %w", err)
	}
	if st.Type != unix.CGROUP2_SUPER_MAGIC {
		return mountCgroupV1(target, o)
	}
	mnt, err := newFS("cgroup2", "cgroup2", o.data, o.attrSet)
	if isErrno(err, unix.EPERM, unix.EBUSY) {
		// No cgroup namespace of our own inside a user namespace: the
		// kernel refuses a fresh cgroup2, so show the host's hierarchy
		// (read-only per the options), as runc does.
		mnt, err = bindHostCgroup(o)
	}
	if err != nil {
		return err
	}
	defer mnt.Close()
	return attachWithOptions(mnt, target, o)
}

func bindHostCgroup(o *mountOpts) (*os.File, error) {
	src, err := os.OpenFile("/sys/fs/cgroup", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	tree, err := cloneTree(src, true)
	if err != nil {
		return nil, err
	}
	if err := setAttr(tree, o.attrSet, o.attrClr, true); err != nil {
		tree.Close()
		return nil, err
	}
	return tree, nil
}

type cgroupEntry struct {
	controllers string // "memory", "cpu,cpuacct", "name=systemd", "" for v2
	path        string
}

func selfCgroups() ([]cgroupEntry, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []cgroupEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) == 3 {
			out = append(out, cgroupEntry{controllers: parts[1], path: parts[2]})
		}
	}
	return out, sc.Err()
}

// hierarchyMount finds the host mount of one v1 hierarchy (or of cgroup2
// for controllers == "").
func hierarchyMount(mounts []*mountinfo.Info, controllers string) *mountinfo.Info {
	for _, m := range mounts {
		if controllers == "" {
			if m.FSType == "cgroup2" {
				return m
			}
			continue
		}
		if m.FSType != "cgroup" {
			continue
		}
		opts := "," + m.VFSOptions + ","
		all := true
		for _, c := range strings.Split(controllers, ",") {
			if !strings.Contains(opts, ","+c+",") {
				all = false
				break
			}
		}
		if all {
			return m
		}
	}
	return nil
}

func mountCgroupV1(target *os.File, o *mountOpts) error {
	tmpfs, err := newFS("tmpfs", "tmpfs", []string{"mode=755"},
		unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return err
	}
	defer tmpfs.Close()
	if err := attach(tmpfs, target); err != nil {
		return err
	}
	entries, err := selfCgroups()
	if err != nil {
		return err
	}
	mounts, err := mountinfo.GetMounts(mountinfo.FSTypeFilter("cgroup", "cgroup2"))
	if err != nil {
		return err
	}
	for _, e := range entries {
		m := hierarchyMount(mounts, e.controllers)
		if m == nil {
			continue // hierarchy not mounted on the host: nothing to show
		}
		if err := bindHierarchy(tmpfs, m, e, o); err != nil {
			return fmt.Errorf("cgroup %q: %w", e.controllers, err)
		}
	}
	// The tmpfs itself gets the requested attributes last: it had to be
	// writable for the mkdirs above.
	if err := setAttr(tmpfs, o.attrSet, o.attrClr, false); err != nil {
		return err
	}
	for _, p := range o.props {
		if err := setPropagation(tmpfs, p.flag, p.recursive); err != nil {
			return err
		}
	}
	return nil
}

func bindHierarchy(tmpfs *os.File, m *mountinfo.Info, e cgroupEntry, o *mountOpts) error {
	if e.path == "/" {
		// We are at the root of our view: in a cgroup namespace (the container's
		// cgroup is never the host's root) a fresh instance of the hierarchy
		// shows exactly our cgroup, while the host's mount would show the
		// host's root through paths like "/..".
		// Outside a cgroup namespace of our own (a process really at the host's
		// root cgroup) a user namespace may refuse the fresh mount: bind instead.
		err := mountHierarchy(tmpfs, m, e.controllers, o)
		if !isErrno(err, unix.EPERM, unix.EBUSY) {
			return err
		}
	}
	cgPath := e.path
	rel := cgPath
	if m.Root != "/" {
		r, err := filepath.Rel(m.Root, cgPath)
		if err != nil || strings.HasPrefix(r, "..") {
			return nil // our cgroup is not visible through this mount
		}
		rel = r
	}
	// Both parts come from the kernel (mountinfo and /proc/self/cgroup) and
	// the path is a host path, so joining them is safe.
	src, err := os.OpenFile(filepath.Join(m.Mountpoint, rel), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	defer src.Close()

	tree, err := cloneTree(src, false)
	if err != nil {
		return err
	}
	defer tree.Close()
	set := o.attrSet | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC
	if err := setAttr(tree, set, o.attrClr&^set, false); err != nil {
		return err
	}
	return attachHierarchy(tmpfs, m, tree)
}

// mountHierarchy mounts a fresh instance of one hierarchy (same controllers or
// name as the host's) into the tmpfs.
func mountHierarchy(tmpfs *os.File, m *mountinfo.Info, controllers string, o *mountOpts) error {
	fstype, data := "cgroup2", []string(nil)
	if controllers != "" {
		fstype = "cgroup"
		for _, c := range strings.Split(controllers, ",") {
			if strings.HasPrefix(c, "name=") {
				data = append(data, "none")
			}
			data = append(data, c)
		}
	}
	set := o.attrSet | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC
	tree, err := newFS(fstype, "cgroup", data, set)
	if err != nil {
		return err
	}
	defer tree.Close()
	return attachHierarchy(tmpfs, m, tree)
}

// attachHierarchy attaches tree under the host's name for the hierarchy.
func attachHierarchy(tmpfs *os.File, m *mountinfo.Info, tree *os.File) error {
	name := filepath.Base(m.Mountpoint)
	if err := unix.Mkdirat(int(tmpfs.Fd()), name, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return err
	}
	dirFd, err := unix.Openat(int(tmpfs.Fd()), name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	dir := os.NewFile(uintptr(dirFd), name)
	defer dir.Close()
	if err := attach(tree, dir); err != nil {
		return err
	}
	// Co-mounted controllers ("cpu,cpuacct") are also reachable by each
	// controller's own name, as on the host.
	if strings.Contains(name, ",") {
		for _, c := range strings.Split(name, ",") {
			if err := unix.Symlinkat(name, int(tmpfs.Fd()), c); err != nil && !errors.Is(err, unix.EEXIST) {
				return err
			}
		}
	}
	return nil
}

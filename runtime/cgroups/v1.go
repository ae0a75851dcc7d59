package cgroups

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/moby/sys/mountinfo"
	"github.com/moby/sys/userns"
	"github.com/opencontainers/cgroups"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// v1Subsystems are the hierarchies the library's fs (v1) manager places a
// container in, in its order. On a hybrid host the library adds "", the
// unified (cgroup2) tree.
var v1Subsystems = []string{
	"cpuset", "devices", "memory", "cpu", "cpuacct", "pids", "blkio", "hugetlb",
	"net_cls", "net_prio", "perf_event", "freezer", "rdma", "name=systemd", "misc",
}

// v1Layout is where the host's v1 hierarchies are: their mounts and the directory that holds them.
type v1Layout struct {
	mounts []*mountinfo.Info // fstype "cgroup"
	root   string
}

// hostV1Layout reads the host's cgroup v1 mounts once per process: they are set up at boot,
// and the library caches them the same way.
var hostV1Layout = sync.OnceValues(func() (v1Layout, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return v1Layout{}, err
	}
	defer f.Close()
	return parseV1Layout(f)
})

const defaultRoot = "/sys/fs/cgroup"

// parseV1Layout finds the cgroup v1 mounts in a mountinfo text, and the root of the
// hierarchies as the library does: /sys/fs/cgroup when it is a tmpfs holding cgroup mounts
// (the usual layout), else the directory of the first cgroup mount.
func parseV1Layout(r io.Reader) (v1Layout, error) {
	all, err := mountinfo.GetMountsFromReader(r, mountinfo.FSTypeFilter("cgroup", "tmpfs"))
	if err != nil {
		return v1Layout{}, err
	}
	var l v1Layout
	tmpfsRoot := false
	for _, m := range all {
		if m.FSType == "cgroup" {
			l.mounts = append(l.mounts, m)
		} else if m.Mountpoint == defaultRoot {
			tmpfsRoot = true
		}
	}
	if len(l.mounts) == 0 {
		return v1Layout{}, errors.New("no cgroup v1 mount found in mountinfo")
	}
	l.root = filepath.Dir(l.mounts[0].Mountpoint)
	if tmpfsRoot && slices.ContainsFunc(l.mounts, func(m *mountinfo.Info) bool { return filepath.Dir(m.Mountpoint) == defaultRoot }) {
		l.root = defaultRoot
	}
	return l, nil
}

// mount returns the mount of the hierarchy that has controller (or "name=..."), nil if none.
func (l v1Layout) mount(controller string) *mountinfo.Info {
	for _, m := range l.mounts {
		if strings.HasPrefix(m.Mountpoint, l.root) && slices.Contains(strings.Split(m.VFSOptions, ","), controller) {
			return m
		}
	}
	return nil
}

// v1Paths returns the container's directory in every v1 hierarchy the host has (and in the
// unified tree on a hybrid host), as the library's fs manager computes them for an absolute
// cgroup path: <root>/<base of the hierarchy's mount point><path>. Here that takes one read
// of mountinfo; the library's own lookup stats every controller's default path and was the
// larger part of a cold create. TestV1PathsMatchLibrary holds the two equal.
func v1Paths(path string) (map[string]string, error) {
	l, err := hostV1Layout()
	if err != nil {
		return nil, err
	}
	paths := make(map[string]string, len(v1Subsystems)+1)
	for _, name := range v1Subsystems {
		if m := l.mount(name); m != nil {
			paths[name] = filepath.Join(l.root, filepath.Base(m.Mountpoint), path)
		}
	}
	// As in the library: without the devices controller a container would get every device.
	if _, ok := paths["devices"]; !ok {
		return nil, cgroups.NewNotFoundError("devices")
	}
	if cgroups.IsCgroup2HybridMode() {
		paths[""] = filepath.Join(l.root, "unified", path)
	}
	return paths, nil
}

// createV1 makes a v1 cgroup that does not exist yet, with plain system calls: the
// directories (a new cpuset directory gets its parent's cpus and mems, without which no task
// can join it), the device rules written in order, and the other limits through the library.
// On a fresh cgroup, rules written in order end in the state the library's device emulator
// computes, without its reads of devices.list and its comparison (TestDevicesFreshEqualsLibrary);
// an existing cgroup may hold any rules, and there Create leaves it all to the library.
// The library's own Apply and Set took about twice as long for this (code touched once per
// run is what a start pays for on the machines we measure).
func (m *Manager) createV1(lm cgroups.Manager, r *specs.LinuxResources, res *cgroups.Resources) error {
	if res.CpuRtPeriod != 0 || res.CpuRtRuntime != 0 {
		// Real-time bandwidth is set on the way down, before anything joins: the library knows how.
		if err := lm.Apply(-1); err != nil {
			return fmt.Errorf("create cgroup %s: %w", m.path, err)
		}
	} else {
		for name, dir := range lm.GetPaths() {
			var err error
			if name == "cpuset" {
				err = makeCpuset(dir, res.CpusetCpus, res.CpusetMems)
			} else {
				err = mkdirAll(dir)
			}
			if err != nil {
				return fmt.Errorf("create cgroup %s: %w", m.path, err)
			}
		}
	}
	if !res.SkipDevices && !userns.RunningInUserNS() {
		dir := lm.Path("devices")
		// The library's emulator starts from "deny everything"; so does a fresh cgroup after this.
		if err := writeFile(dir, "devices.deny", "a *:* rwm"); err != nil {
			return fmt.Errorf("set device rules on cgroup %s: %w", m.path, err)
		}
		for _, d := range res.Devices {
			file := "devices.deny"
			if d.Allow {
				file = "devices.allow"
			}
			if err := writeFile(dir, file, d.CgroupString()); err != nil {
				return fmt.Errorf("set device rule %q on cgroup %s: %w", d.CgroupString(), m.path, err)
			}
		}
	}
	if !onlyDevices(r) {
		rest := *res
		rest.SkipDevices = true
		if err := lm.Set(&rest); err != nil {
			return fmt.Errorf("set resources on cgroup %s: %w", m.path, err)
		}
	}
	return nil
}

// onlyDevices reports whether r sets nothing but device rules (the common case: no limits).
func onlyDevices(r *specs.LinuxResources) bool {
	return r == nil || (r.Memory == nil && r.CPU == nil && r.Pids == nil && r.BlockIO == nil &&
		len(r.HugepageLimits) == 0 && r.Network == nil && len(r.Rdma) == 0 && len(r.Unified) == 0)
}

// mkdirAll makes dir and its missing parents; mkdir is tried first because in the common case
// only the last component is missing.
func mkdirAll(dir string) error {
	err := unix.Mkdir(dir, 0o755)
	if err == unix.ENOENT {
		if err = mkdirAll(filepath.Dir(dir)); err != nil {
			return err
		}
		err = unix.Mkdir(dir, 0o755)
	}
	if err != nil && err != unix.EEXIST {
		return &os.PathError{Op: "mkdir", Path: dir, Err: err}
	}
	return nil
}

// makeCpuset makes dir in the cpuset hierarchy, and its missing parents, and gives each one
// without cpus or mems those of its parent (or cpus and mems, when set, to dir itself), as the
// library does: the kernel leaves a new cpuset empty, and an empty cpuset takes no task.
func makeCpuset(dir, cpus, mems string) error {
	err := unix.Mkdir(dir, 0o755)
	if err == unix.ENOENT {
		if err = makeCpuset(filepath.Dir(dir), "", ""); err != nil {
			return err
		}
		err = unix.Mkdir(dir, 0o755)
	}
	if err != nil && err != unix.EEXIST {
		return &os.PathError{Op: "mkdir", Path: dir, Err: err}
	}
	made := err == nil
	prefix := "cpuset."
	if unix.Access(filepath.Join(dir, "cpuset.cpus"), unix.F_OK) != nil {
		prefix = "" // mounted with noprefix
	}
	for _, f := range [...]struct{ name, want string }{{"cpus", cpus}, {"mems", mems}} {
		file, v := prefix+f.name, f.want
		if v == "" {
			if !made { // a directory made just now is empty; one that was there may not be
				cur, err := readFile(dir, file)
				if err != nil {
					return err
				}
				if strings.TrimSpace(cur) != "" {
					continue
				}
			}
			var err error
			if v, err = readFile(filepath.Dir(dir), file); err != nil {
				return err
			}
		}
		if err := writeFile(dir, file, v); err != nil {
			return err
		}
	}
	return nil
}

// writeFile writes one value to a cgroup file in one write(2): cgroup files take a value per
// write, and the kernel's error for a bad value is the write's.
func writeFile(dir, file, value string) error {
	p := filepath.Join(dir, file)
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: p, Err: err}
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte(value)); err != nil {
		return &os.PathError{Op: "write", Path: p, Err: err}
	}
	return nil
}

// readFile reads a small cgroup file.
func readFile(dir, file string) (string, error) {
	p := filepath.Join(dir, file)
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", &os.PathError{Op: "open", Path: p, Err: err}
	}
	defer unix.Close(fd)
	var buf [4096]byte
	n, err := unix.Read(fd, buf[:])
	if err != nil {
		return "", &os.PathError{Op: "read", Path: p, Err: err}
	}
	return string(buf[:n]), nil
}

// removeV1 removes an empty v1 cgroup: one rmdir per hierarchy, a missing directory being
// fine. Anything else (a task still inside, a sub-cgroup) is left to Destroy's general path,
// which checks for tasks and removes sub-cgroups; it takes over from wherever this stopped.
// The devices directory goes last: Exists and Pids look there, so after a partial removal the
// cgroup still counts as existing and its tasks are still found and killed.
func removeV1(paths map[string]string) error {
	for name, dir := range paths {
		if name != "devices" {
			if err := unix.Rmdir(dir); err != nil && err != unix.ENOENT {
				return err
			}
		}
	}
	if err := unix.Rmdir(paths["devices"]); err != nil && err != unix.ENOENT {
		return err
	}
	return nil
}

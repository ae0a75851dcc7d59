package spec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func i64(v int64) *int64 { return &v }

func devRule(allow bool, typ string, major, minor int64, access string) specs.LinuxDeviceCgroup {
	r := specs.LinuxDeviceCgroup{Allow: allow, Type: typ, Access: access}
	if major >= 0 {
		r.Major = i64(major)
	}
	if minor >= 0 {
		r.Minor = i64(minor)
	}
	return r
}

// DefaultDeviceRules are the device cgroup rules of a non-privileged container, in the
// order the kernel sees them under dockerd and runc: deny everything; dockerd's allows (null,
// zero, urandom, random, tty, console) and its deny of /dev/fuse (a no-op after deny-all, kept
// as docker has it); then what runc appends on its own (mknod of any device node, full, ptmx,
// the pts slaves). On cgroup v1 a deny cannot follow a wildcard allow, hence this order.
func DefaultDeviceRules() []specs.LinuxDeviceCgroup {
	return []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		devRule(true, "c", 1, 5, "rwm"),     // /dev/zero
		devRule(true, "c", 1, 3, "rwm"),     // /dev/null
		devRule(true, "c", 1, 9, "rwm"),     // /dev/urandom
		devRule(true, "c", 1, 8, "rwm"),     // /dev/random
		devRule(true, "c", 5, 0, "rwm"),     // /dev/tty
		devRule(true, "c", 5, 1, "rwm"),     // /dev/console
		devRule(false, "c", 10, 229, "rwm"), // /dev/fuse
		devRule(true, "c", -1, -1, "m"),
		devRule(true, "b", -1, -1, "m"),
		devRule(true, "c", 1, 7, "rwm"),    // /dev/full
		devRule(true, "c", 5, 2, "rwm"),    // /dev/ptmx
		devRule(true, "c", 136, -1, "rwm"), // /dev/pts/*
	}
}

var errNotADevice = errors.New("not a device node")

// deviceFromPath describes the device node at a host path (not following a final symlink).
func deviceFromPath(path string) (*specs.LinuxDevice, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return nil, &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		typ = "b"
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFIFO:
		typ = "p"
	default:
		return nil, errNotADevice
	}
	mode := os.FileMode(st.Mode &^ unix.S_IFMT)
	uid, gid := st.Uid, st.Gid
	return &specs.LinuxDevice{
		Path:     path,
		Type:     typ,
		Major:    int64(unix.Major(uint64(st.Rdev))),
		Minor:    int64(unix.Minor(uint64(st.Rdev))),
		FileMode: &mode,
		UID:      &uid,
		GID:      &gid,
	}, nil
}

// devicesFromPath gives the devices of a --device mapping, as dockerd: a device node (a
// symlink to one is followed), or every device node under a directory.
func devicesFromPath(onHost, inContainer, perms string) ([]specs.LinuxDevice, []specs.LinuxDeviceCgroup, error) {
	resolved := onHost
	if fi, err := os.Lstat(onHost); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		if p, err := filepath.EvalSymlinks(onHost); err == nil {
			resolved = p
		}
	}
	rule := func(d *specs.LinuxDevice) specs.LinuxDeviceCgroup {
		t := d.Type
		if t == "p" {
			t = "c" // never reached for a rule: fifos need none, but keep the type valid
		}
		return specs.LinuxDeviceCgroup{Allow: true, Type: t, Major: i64(d.Major), Minor: i64(d.Minor), Access: perms}
	}
	d, err := deviceFromPath(resolved)
	if err == nil {
		d.Path = inContainer
		var rules []specs.LinuxDeviceCgroup
		if d.Type != "p" {
			rules = append(rules, rule(d))
		}
		return []specs.LinuxDevice{*d}, rules, nil
	}
	if !errors.Is(err, errNotADevice) {
		return nil, nil, fmt.Errorf("error gathering device information while adding custom device %q: %v", onHost, err)
	}
	var devs []specs.LinuxDevice
	var rules []specs.LinuxDeviceCgroup
	if fi, e := os.Stat(resolved); e == nil && fi.IsDir() {
		_ = filepath.WalkDir(resolved, func(p string, _ fs.DirEntry, _ error) error {
			cd, e := deviceFromPath(p)
			if e != nil {
				return nil
			}
			cd.Path = filepath.Join(inContainer, strings.TrimPrefix(p, resolved))
			devs = append(devs, *cd)
			if cd.Type != "p" {
				rules = append(rules, rule(cd))
			}
			return nil
		})
	}
	if len(devs) == 0 {
		return nil, nil, fmt.Errorf("error gathering device information while adding custom device %q: %v", onHost, err)
	}
	return devs, rules, nil
}

// hostDevices lists the host's device nodes under /dev for a privileged container, skipping
// what the container's own /dev provides (pts, shm, mqueue, fd, console) as containerd does.
func hostDevices() ([]specs.LinuxDevice, error) {
	var devs []specs.LinuxDevice
	err := filepath.WalkDir("/dev", func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p == "/dev" {
				return err
			}
			return nil
		}
		if e.IsDir() {
			switch e.Name() {
			case "pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev":
				return fs.SkipDir
			}
			return nil
		}
		if p == "/dev/console" || e.Type()&fs.ModeDevice == 0 {
			return nil
		}
		d, err := deviceFromPath(p)
		if err != nil {
			return nil
		}
		if d.Type == "p" {
			return nil
		}
		devs = append(devs, *d)
		return nil
	})
	return devs, err
}

// parseCgroupRule reads a --device-cgroup-rule ("c 1:3 rwm", "b *:* m", "a *:* rwm").
func parseCgroupRule(s string) (specs.LinuxDeviceCgroup, error) {
	bad := fmt.Errorf("invalid device cgroup rule %q: want 'TYPE MAJOR:MINOR PERMS', e.g. 'c 1:3 rwm'", s)
	f := strings.Fields(s)
	if len(f) != 3 {
		return specs.LinuxDeviceCgroup{}, bad
	}
	if f[0] != "a" && f[0] != "b" && f[0] != "c" {
		return specs.LinuxDeviceCgroup{}, bad
	}
	majS, minS, ok := strings.Cut(f[1], ":")
	if !ok {
		return specs.LinuxDeviceCgroup{}, bad
	}
	num := func(v string) (int64, error) {
		if v == "*" {
			return -1, nil
		}
		return strconv.ParseInt(v, 10, 64)
	}
	maj, err1 := num(majS)
	min, err2 := num(minS)
	if err1 != nil || err2 != nil || f[2] == "" || strings.Trim(f[2], "rwm") != "" {
		return specs.LinuxDeviceCgroup{}, bad
	}
	return devRule(true, f[0], maj, min, f[2]), nil
}

// devices computes linux.devices and the device cgroup rules.
func devices(h *container.HostConfig) ([]specs.LinuxDevice, []specs.LinuxDeviceCgroup, error) {
	var devs []specs.LinuxDevice
	if h.Privileged {
		hd, err := hostDevices()
		if err != nil {
			return nil, nil, err
		}
		devs = append(devs, hd...)
		for _, m := range h.Devices {
			if m.PathOnHost == m.PathInContainer {
				continue // already there with the host's /dev
			}
			d, _, err := devicesFromPath(m.PathOnHost, m.PathInContainer, "rwm")
			if err != nil {
				return nil, nil, err
			}
			devs = append(devs, d...)
		}
		return devs, []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}, nil
	}
	rules := DefaultDeviceRules()
	for _, m := range h.Devices {
		perms := m.CgroupPermissions
		if perms == "" {
			perms = "rwm"
		}
		in := m.PathInContainer
		if in == "" {
			in = m.PathOnHost
		}
		d, r, err := devicesFromPath(m.PathOnHost, in, perms)
		if err != nil {
			return nil, nil, err
		}
		devs = append(devs, d...)
		rules = append(rules, r...)
	}
	for _, s := range h.DeviceCgroupRules {
		r, err := parseCgroupRule(s)
		if err != nil {
			return nil, nil, err
		}
		rules = append(rules, r)
	}
	return devs, rules, nil
}

// majorMinor stats a block device for the blkio settings.
func majorMinor(path string) (int64, int64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, 0, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return int64(unix.Major(uint64(st.Rdev))), int64(unix.Minor(uint64(st.Rdev))), nil
}

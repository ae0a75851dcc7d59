package spec

import (
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/container/opts"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// defaultMounts are docker's default mounts (pkg/oci DefaultLinuxSpec), /dev/shm without its
// size.
func defaultMounts() []specs.Mount {
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777"}},
	}
}

// BindMount is the spec mount of a bind or volume mount (a --volume or --mount of type bind or
// volume) whose source the engine resolved to hostPath, as dockerd makes it: "rbind" ("bind"
// with bind-recursive=disabled), read-only as "rro" ("ro" with bind-recursive=writable), the
// propagation asked for, rprivate by default for a bind mount.
func BindMount(m mount.Mount, hostPath string) specs.Mount {
	b := m.BindOptions
	o := []string{"rbind"}
	if b != nil && b.NonRecursive {
		o[0] = "bind"
	}
	if m.ReadOnly {
		if b != nil && b.ReadOnlyNonRecursive {
			o = append(o, "ro")
		} else {
			o = append(o, "rro")
		}
	}
	switch {
	case b != nil && b.Propagation != "":
		o = append(o, string(b.Propagation))
	case m.Type == mount.TypeBind:
		o = append(o, string(mount.PropagationRPrivate))
	}
	return specs.Mount{Destination: path.Clean(m.Target), Type: "bind", Source: hostPath, Options: o}
}

// tmpfsMount is docker's tmpfs mount: noexec,nosuid,nodev,rprivate, then the options given.
func tmpfsMount(dest, data string) specs.Mount {
	o := []string{"noexec", "nosuid", "nodev", "rprivate"}
	if data != "" {
		o = append(o, strings.Split(data, ",")...)
	}
	return specs.Mount{Destination: dest, Type: "tmpfs", Source: "tmpfs", Options: opts.MergeTmpfsOptions(o)}
}

func depth(p string) int { return len(strings.Split(path.Clean(p), "/")) }

func dropOption(m *specs.Mount, opt string) {
	m.Options = slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return o == opt })
}

// mounts is docker's withMounts: the default mounts less those a container mount replaces
// (every /dev/* one when /dev itself is mounted, /dev/shm with --ipc none), /dev/shm sized by
// ShmSize; then the container's mounts (binds and volumes, tmpfs, the shared /dev/shm, the
// /etc files) parents first.
func mounts(in Input, h *container.HostConfig, sec opts.Security, withInit bool) ([]specs.Mount, error) {
	shmSize := h.ShmSize
	if shmSize < 0 {
		return nil, errors.New("SHM size can not be less than 0")
	}
	if shmSize == 0 {
		shmSize = DefaultShmSize
	}

	var user []specs.Mount
	for _, m := range in.Mounts {
		m.Options = slices.Clone(m.Options)
		if !path.IsAbs(m.Destination) {
			return nil, fmt.Errorf("invalid mount path: '%s' mount path must be absolute", m.Destination)
		}
		m.Destination = path.Clean(m.Destination)
		user = append(user, m)
	}
	for _, dest := range slices.Sorted(maps.Keys(h.Tmpfs)) {
		d, data, err := opts.ParseTmpfs(dest + ":" + h.Tmpfs[dest])
		if err != nil {
			return nil, err
		}
		user = append(user, tmpfsMount(d, data))
	}
	for _, m := range h.Mounts {
		if m.Type != mount.TypeTmpfs {
			continue
		}
		if m.Source != "" {
			return nil, errors.New(`invalid mount config for type "tmpfs": field Source must not be specified`)
		}
		if m.Target == "" || !path.IsAbs(m.Target) || path.Clean(m.Target) == "/" {
			return nil, fmt.Errorf(`invalid mount config for type "tmpfs": invalid mount path: '%s'`, m.Target)
		}
		user = append(user, tmpfsMount(path.Clean(m.Target), opts.TmpfsData(m)))
	}
	switch {
	case h.IpcMode.IsHost():
		user = append(user, specs.Mount{Destination: "/dev/shm", Type: "bind", Source: "/dev/shm", Options: []string{"rbind", "rprivate"}})
	case h.IpcMode.IsContainer() && in.ShmPath != "":
		user = append(user, specs.Mount{Destination: "/dev/shm", Type: "bind", Source: in.ShmPath, Options: []string{"rbind", "rprivate"}})
	}

	seen := map[string]bool{}
	for _, m := range user {
		if seen[m.Destination] {
			return nil, fmt.Errorf("duplicate mount point: %s", m.Destination)
		}
		seen[m.Destination] = true
	}
	for _, f := range []struct{ src, dest string }{
		{in.ResolvConfPath, "/etc/resolv.conf"},
		{in.HostnamePath, "/etc/hostname"},
		{in.HostsPath, "/etc/hosts"},
	} {
		if f.src == "" || seen[f.dest] {
			continue
		}
		o := []string{"rbind", "rprivate"}
		if h.ReadonlyRootfs {
			o = append(o, "ro")
		}
		user = append(user, specs.Mount{Destination: f.dest, Type: "bind", Source: f.src, Options: o})
		seen[f.dest] = true
	}
	slices.SortStableFunc(user, func(a, b specs.Mount) int { return depth(a.Destination) - depth(b.Destination) })

	defaults := defaultMounts()
	if withInit {
		defaults = append(defaults, specs.Mount{Destination: InitPathInContainer, Type: "bind", Source: in.InitPath, Options: []string{"bind", "ro"}})
	}
	var out []specs.Mount
	for _, m := range defaults {
		if seen[m.Destination] || (seen["/dev"] && strings.HasPrefix(m.Destination, "/dev/")) {
			continue
		}
		if m.Destination == "/dev/shm" {
			if h.IpcMode.IsNone() {
				continue
			}
			m.Options = append(m.Options, "size="+strconv.FormatInt(shmSize, 10))
		}
		if h.ReadonlyRootfs {
			switch m.Destination {
			case "/proc", "/dev/pts", "/dev/shm", "/dev/mqueue", "/dev":
			default:
				if !slices.Contains(m.Options, "ro") {
					m.Options = append(m.Options, "ro")
				}
			}
		}
		writableCgroups := h.Privileged
		if sec.WritableCgroups != nil {
			writableCgroups = *sec.WritableCgroups
		}
		if (h.Privileged && m.Destination == "/sys") || (writableCgroups && m.Type == "cgroup") {
			dropOption(&m, "ro")
		}
		out = append(out, m)
	}
	return append(out, user...), nil
}

// rootfsPropagation is what dockerd sets for mounts with shared or slave propagation: the
// root must propagate too.
func rootfsPropagation(ms []specs.Mount) string {
	prop := ""
	for _, m := range ms {
		for _, o := range m.Options {
			switch o {
			case "shared", "rshared":
				return "shared"
			case "slave", "rslave":
				prop = "rslave"
			}
		}
	}
	return prop
}

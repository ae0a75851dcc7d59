// Package cgroups is berth's narrow adapter over github.com/opencontainers/cgroups.
//
// # Hierarchy detection
//
// The cgroup layout is detected at run time, never assumed, because berth runs
// on pure cgroup v2 hosts (most modern distributions) as well as on older or
// container-in-container hosts that still use v1:
//
//   - Unified: /sys/fs/cgroup is itself a cgroup2 mount. One directory per
//     container; limits, freezer and device rules (an eBPF program) live there.
//   - Hybrid:  /sys/fs/cgroup is a tmpfs of v1 controller mounts plus a cgroup2
//     mount at /sys/fs/cgroup/unified that carries no controllers. Everything is
//     done through v1; the process is also placed in the unified tree so that
//     tools which track v2 membership see it.
//   - Legacy:  v1 only.
//
// The library makes the same decision (cgroups.IsCgroup2UnifiedMode) when it
// picks its fs (v1) or fs2 (v2) manager, and DetectMode reuses it so that the
// two can never disagree.
//
// # Paths
//
// The runtime is a set of short-lived CLI invocations (create, start, pause,
// update, delete, ...), so a Manager holds nothing but a resolved cgroup path
// and is rebuilt from (cgroupsPath, id, useSystemd) every time. Resolution:
//
//   - ""                         -> /berth/<id>
//   - "/a/b" or "a/b"            -> /a/b (relative paths are taken under the
//     hierarchy root, not under the caller's own cgroup as runc does, because
//     the caller differs between invocations and the path must not)
//   - systemd "slice:prefix:name" -> <expanded slice>/<prefix>-<name>.scope;
//     berth has no systemd driver, so the systemd name is only mapped onto the
//     cgroupfs path systemd itself would have used. "" with useSystemd means
//     system.slice:berth:<id>.
//
// ".." components that would climb above the hierarchy root are refused rather
// than clamped: a path that tries to escape is a bug or an attack, and silently
// rewriting it would put the container somewhere nobody asked for. The root
// cgroup itself is refused too, since Destroy would then try to remove it.
package cgroups

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/systemd"
)

// Mode is the cgroup hierarchy layout of the host.
type Mode int

const (
	// Legacy is cgroup v1 only.
	Legacy Mode = iota
	// Hybrid is cgroup v1 controllers plus an (empty) cgroup2 at /sys/fs/cgroup/unified.
	Hybrid
	// Unified is pure cgroup v2.
	Unified
)

func (m Mode) String() string {
	switch m {
	case Legacy:
		return "legacy"
	case Hybrid:
		return "hybrid"
	case Unified:
		return "unified"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// DetectMode reports the host's cgroup layout.
func DetectMode() Mode {
	switch {
	case cgroups.IsCgroup2UnifiedMode():
		return Unified
	case cgroups.IsCgroup2HybridMode():
		return Hybrid
	}
	return Legacy
}

const (
	defaultParent        = "/berth"
	defaultSystemdSlice  = "system.slice"
	defaultSystemdPrefix = "berth"
)

// resolvePath turns an OCI linux.cgroupsPath into an absolute path inside the
// cgroup hierarchy (e.g. "/berth/abc"), following the rules in the package doc.
func resolvePath(cgroupsPath, id string, useSystemd bool) (string, error) {
	var p string
	var err error
	if useSystemd {
		p, err = systemdPath(cgroupsPath, id)
	} else {
		p, err = fsPath(cgroupsPath, id)
	}
	if err != nil {
		return "", err
	}
	if p == "/" {
		return "", fmt.Errorf("%w: %q resolves to the root cgroup", ErrInvalidPath, cgroupsPath)
	}
	return p, nil
}

func fsPath(cgroupsPath, id string) (string, error) {
	if cgroupsPath == "" {
		if err := checkName("container id", id); err != nil {
			return "", err
		}
		return defaultParent + "/" + id, nil
	}
	return cleanNoEscape(cgroupsPath)
}

func systemdPath(cgroupsPath, id string) (string, error) {
	slice, prefix, name := defaultSystemdSlice, defaultSystemdPrefix, id
	if cgroupsPath != "" {
		parts := strings.Split(cgroupsPath, ":")
		if len(parts) != 3 {
			return "", fmt.Errorf("%w: systemd cgroupsPath must be \"slice:prefix:name\", got %q", ErrInvalidPath, cgroupsPath)
		}
		slice, prefix, name = parts[0], parts[1], parts[2]
		if slice == "" {
			slice = defaultSystemdSlice
		}
	}
	if err := checkName("systemd unit name", name); err != nil {
		return "", err
	}
	if prefix != "" {
		if err := checkName("systemd scope prefix", prefix); err != nil {
			return "", err
		}
	}
	slicePath, err := systemd.ExpandSlice(slice)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidPath, err)
	}
	// Same unit naming as runc's systemd driver: a name that is already a
	// slice is used as is, anything else becomes a scope. An empty prefix
	// yields "<name>.scope" instead of runc's odd "-<name>.scope".
	unit := name
	if !strings.HasSuffix(name, ".slice") {
		if prefix != "" {
			unit = prefix + "-" + name
		}
		unit += ".scope"
	}
	return filepath.Join(slicePath, unit), nil
}

// checkName rejects values that are used as a single path component.
func checkName(what, s string) error {
	if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\x00") {
		return fmt.Errorf("%w: bad %s %q", ErrInvalidPath, what, s)
	}
	return nil
}

// cleanNoEscape makes p absolute and clean, refusing it if a ".." would climb
// above "/" at any point (filepath.Clean would silently clamp it instead).
func cleanNoEscape(p string) (string, error) {
	if strings.ContainsRune(p, 0) {
		return "", fmt.Errorf("%w: NUL in %q", ErrInvalidPath, p)
	}
	depth := 0
	for c := range strings.SplitSeq(p, "/") {
		switch c {
		case "", ".":
		case "..":
			depth--
			if depth < 0 {
				return "", fmt.Errorf("%w: %q escapes the cgroup root", ErrInvalidPath, p)
			}
		default:
			depth++
		}
	}
	return filepath.Clean("/" + p), nil
}

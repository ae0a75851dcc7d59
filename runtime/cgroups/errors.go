package cgroups

import "errors"

var (
	// ErrInvalidPath is returned by New for a cgroupsPath that is malformed,
	// names the root cgroup, or uses ".." to climb above the hierarchy root.
	ErrInvalidPath = errors.New("cgroups: invalid cgroups path")

	// ErrInvalidResources is returned by FromSpec for resource values the
	// kernel interfaces cannot express (bad device type, empty access, ...).
	ErrInvalidResources = errors.New("cgroups: invalid resources")

	// ErrNotExist is returned when an operation needs the container's cgroup
	// but Create has not made it (or Destroy has removed it).
	ErrNotExist = errors.New("cgroups: cgroup does not exist")

	// ErrNotEmpty is returned by Destroy while processes are still in the
	// cgroup, and by Create when asked to reuse a cgroup that has processes.
	ErrNotEmpty = errors.New("cgroups: cgroup still has processes")
)

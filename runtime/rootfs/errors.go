package rootfs

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error returned by Setup wraps one of these (or a
// syscall errno) inside a *MountError that names the operation and the
// in-container path, so callers can both print a useful message and test
// the class with errors.Is.
var (
	// ErrSymlinkDestination: the image placed a symlink where a proc or
	// sysfs mount must go (CVE-2019-19921, CVE-2023-27561 class).
	ErrSymlinkDestination = errors.New("destination is a symlink")
	// ErrNotDirectory: a proc/sysfs (or other directory-only) destination
	// exists in the image as something other than a directory.
	ErrNotDirectory = errors.New("destination is not a directory")
	// ErrNotFileDestination: a device node's path exists in the image as a
	// directory.
	ErrNotFileDestination = errors.New("destination is a directory")
	// ErrNotDevNull: /dev/null inside the container is not the 1:3 char
	// device, so it cannot be trusted as a masking source (CVE-2025-31133).
	ErrNotDevNull = errors.New("/dev/null is not the null device")
	// ErrDeviceMismatch: a host device node to be bind mounted is not the
	// device the spec names.
	ErrDeviceMismatch = errors.New("device node does not match spec")
	// ErrUnsupported: the spec asks for something this package does not
	// implement (idmapped mounts, tmpcopyup, unknown device types).
	ErrUnsupported = errors.New("unsupported")
	// ErrInvalidSpec: the spec is incomplete or contradictory.
	ErrInvalidSpec = errors.New("invalid spec")
)

// MountError describes a failed step of the filesystem setup.
type MountError struct {
	Op   string // "mount proc", "mask", "readonly", "mknod", "pivot_root", ...
	Path string // in-container path the step was working on
	Err  error
}

func (e *MountError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("rootfs: %s: %v", e.Op, e.Err)
	}
	return fmt.Sprintf("rootfs: %s on %s: %v", e.Op, e.Path, e.Err)
}

func (e *MountError) Unwrap() error { return e.Err }

func wrapErr(op, path string, err error) error {
	if err == nil {
		return nil
	}
	var me *MountError
	if errors.As(err, &me) {
		return err
	}
	return &MountError{Op: op, Path: path, Err: err}
}

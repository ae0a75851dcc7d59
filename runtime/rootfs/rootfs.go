// Package rootfs builds a container's filesystem view from inside its new
// mount namespace, just before the user program is executed.
//
// Setup runs these steps, in this order (matching runc's behaviour):
//
//  1. prepare: make "/" recursively slave (or spec.Linux.RootfsPropagation)
//     so nothing leaks back to the host, make the mount holding the rootfs
//     private, and bind the rootfs onto itself so it is a mount root
//     (pivot_root requires it).
//  2. mounts: every spec.Mounts entry in order. Destinations are resolved
//     inside the rootfs with openat2(RESOLVE_IN_ROOT) (pathrs-lite) and the
//     new mount is attached to the resolved fd with the new mount API
//     (fsopen/fsmount or open_tree, mount_setattr, move_mount), so a
//     symlink swapped in after resolution cannot redirect it.
//  3. devices: default nodes plus spec.Linux.Devices (mknod, or bind mounts
//     of the host nodes in a user namespace), the /dev symlinks, /dev/ptmx
//     and /dev/console.
//  4. Options.BeforePivot (hooks), pivot_root(".", ".") and a lazy unmount of the old root (or, with
//     NoPivot, MS_MOVE onto "/" and chroot).
//  5. Options.AfterPivot (console, sysctls), read-only paths, then masked paths (so masks are not hidden by a
//     later read-only bind), then a read-only "/" if spec.Root.Readonly.
//  6. spec.Linux.RootfsPropagation on the new "/", and chdir("/").
package rootfs

import (
	"os"
	"path/filepath"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Options are the facts about the container that are not in the spec.
type Options struct {
	// Rootfs is the absolute host path of the bundle rootfs, already
	// resolved by the caller (trusted).
	Rootfs string
	// NoPivot uses MS_MOVE + chroot instead of pivot_root (runc --no-pivot).
	NoPivot bool
	// InUserNS is set when the container has its own user namespace:
	// device nodes cannot be created there, so host nodes are bind mounted.
	InUserNS bool
	// Console is the host path of the pty slave to appear as /dev/console,
	// or "" for none.
	Console string
	// BeforePivot runs once every mount and device is in place, before
	// pivot_root: the OCI createRuntime and createContainer hooks go here.
	BeforePivot func() error `json:"-"`
	// AfterPivot runs right after pivot_root, before read-only and masked
	// paths: the pty and /dev/console, and sysctls (written through
	// /proc/sys before it turns read-only) go here.
	AfterPivot func() error `json:"-"`
}

// Setup builds the whole view and leaves the process with "/" = the
// container root and cwd "/". It must run in the container's own mount
// namespace: it changes that namespace irreversibly, also on failure.
func Setup(spec *specs.Spec, opts Options) error {
	if spec == nil {
		return wrapErr("setup", "", ErrInvalidSpec)
	}
	if !filepath.IsAbs(opts.Rootfs) {
		return wrapErr("setup", opts.Rootfs, ErrInvalidSpec)
	}
	var linux specs.Linux
	if spec.Linux != nil {
		linux = *spec.Linux
	}
	rootProp, err := rootPropagation(linux.RootfsPropagation)
	if err != nil {
		return err
	}

	if err := prepareRoot(opts.Rootfs, rootProp); err != nil {
		return err
	}
	// Opened only after the self-bind, so every fd below refers to the new
	// bind mount and not to what it covers.
	root, err := os.OpenFile(opts.Rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return wrapErr("open rootfs", "/", err)
	}
	defer root.Close()

	hostKcore := false
	if _, err := os.Stat("/proc/kcore"); err == nil {
		hostKcore = true
	}

	for i := range spec.Mounts {
		if err := mountEntry(root, &spec.Mounts[i]); err != nil {
			return err
		}
	}

	if !devBindMounted(spec.Mounts) {
		if err := createDevices(root, linux.Devices, opts.InUserNS); err != nil {
			return err
		}
		if err := createDevSymlinks(root, hostKcore, devptsMounted(spec.Mounts)); err != nil {
			return err
		}
	}
	if opts.Console != "" {
		if err := bindConsole(root, opts.Console); err != nil {
			return err
		}
	}

	if opts.BeforePivot != nil {
		if err := opts.BeforePivot(); err != nil {
			return err
		}
	}
	if opts.NoPivot {
		err = moveRoot(root, opts.Rootfs)
	} else {
		err = pivotRoot(root)
	}
	if err != nil {
		return err
	}
	root.Close()
	if opts.AfterPivot != nil {
		if err := opts.AfterPivot(); err != nil {
			return err
		}
	}

	for _, p := range linux.ReadonlyPaths {
		if err := readonlyPath(p); err != nil {
			return err
		}
	}
	if len(linux.MaskedPaths) > 0 {
		if err := maskPaths(linux.MaskedPaths); err != nil {
			return err
		}
	}
	if spec.Root != nil && spec.Root.Readonly {
		if err := readonlyRoot(); err != nil {
			return err
		}
	}
	if rootProp != 0 {
		if err := unix.Mount("", "/", "", rootProp, ""); err != nil {
			return wrapErr("set rootfs propagation", "/", err)
		}
	}
	return wrapErr("chdir", "/", unix.Chdir("/"))
}

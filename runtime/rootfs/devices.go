package rootfs

// Step 3: device nodes, /dev symlinks, /dev/ptmx and /dev/console.
//
// Nodes are created relative to an in-root handle of their parent directory
// so an image symlink (say /dev -> /host-path) cannot redirect them. Whatever
// the image left at a device's name is replaced: keeping an existing entry
// would let the image substitute a symlink or a different node for
// /dev/null, which later steps rely on.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func defaultDevices() []specs.LinuxDevice {
	mode := os.FileMode(0o666)
	var uid, gid uint32
	dev := func(path string, major, minor int64) specs.LinuxDevice {
		return specs.LinuxDevice{Path: path, Type: "c", Major: major, Minor: minor, FileMode: &mode, UID: &uid, GID: &gid}
	}
	return []specs.LinuxDevice{
		dev("/dev/null", 1, 3),
		dev("/dev/zero", 1, 5),
		dev("/dev/full", 1, 7),
		dev("/dev/random", 1, 8),
		dev("/dev/urandom", 1, 9),
		dev("/dev/tty", 5, 0),
	}
}

// allDevices is the default nodes plus the spec's; a spec entry for a default path replaces
// the default.
func allDevices(extra []specs.LinuxDevice) []specs.LinuxDevice {
	devs := defaultDevices()
	seen := map[string]int{}
	for i, d := range devs {
		seen[d.Path] = i
	}
	for _, d := range extra {
		d.Path = cleanInRoot(d.Path)
		if i, ok := seen[d.Path]; ok {
			devs[i] = d
			continue
		}
		seen[d.Path] = len(devs)
		devs = append(devs, d)
	}
	return devs
}

func createDevices(root *os.File, extra []specs.LinuxDevice, inUserNS bool) error {
	devs := allDevices(extra)
	for i := range devs {
		if err := createDevice(root, &devs[i], inUserNS); err != nil {
			return wrapErr("create device", cleanInRoot(devs[i].Path), err)
		}
	}
	return nil
}

func devType(t string) (uint32, error) {
	switch t {
	case "c", "u":
		return unix.S_IFCHR, nil
	case "b":
		return unix.S_IFBLK, nil
	case "p":
		return unix.S_IFIFO, nil
	}
	return 0, fmt.Errorf("%w: device type %q", ErrUnsupported, t)
}

func createDevice(root *os.File, d *specs.LinuxDevice, inUserNS bool) error {
	ftype, err := devType(d.Type)
	if err != nil {
		return err
	}
	path := cleanInRoot(d.Path)
	dir, base := filepath.Split(path)
	if base == "" {
		return fmt.Errorf("%w: device path %q", ErrInvalidSpec, d.Path)
	}
	parent, err := pathrs.MkdirAllHandle(root, dir, 0o755)
	if err != nil {
		return err
	}
	defer parent.Close()
	pfd := int(parent.Fd())

	busy, err := clearEntry(pfd, base)
	if err != nil {
		return err
	}
	if busy {
		// Something is mounted there already (a spec bind mount of the
		// device): the user's choice wins.
		return nil
	}

	perm := uint32(0o666)
	if d.FileMode != nil {
		perm = uint32(d.FileMode.Perm())
	}
	if inUserNS && ftype != unix.S_IFIFO {
		return bindHostDevice(pfd, base, path, ftype, d)
	}
	rdev := unix.Mkdev(uint32(d.Major), uint32(d.Minor))
	if err := unix.Mknodat(pfd, base, ftype|perm, int(rdev)); err != nil {
		return fmt.Errorf("mknod: %w", err)
	}
	// mknod honours the umask, so the mode is set again explicitly. The
	// entry was just created by us, so fchmodat (which cannot refuse to
	// follow symlinks on every kernel) meets the node itself.
	if err := unix.Fchmodat(pfd, base, perm, 0); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	uid, gid := 0, 0
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	if err := unix.Fchownat(pfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	return nil
}

// clearEntry removes a non-directory entry at name. busy reports that the
// entry is a mount point and was left alone.
func clearEntry(dirfd int, name string) (busy bool, err error) {
	var st unix.Stat_t
	err = unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return false, ErrNotFileDestination
	}
	if err := unix.Unlinkat(dirfd, name, 0); err != nil {
		if errors.Is(err, unix.EBUSY) {
			return true, nil
		}
		return false, fmt.Errorf("remove existing entry: %w", err)
	}
	return false, nil
}

// bindHostDevice: a user namespace cannot mknod, so the host's node is bind
// mounted onto an empty file. The host node is verified to be the device
// the spec names before it is exposed.
func bindHostDevice(pfd int, base, path string, ftype uint32, d *specs.LinuxDevice) error {
	// path is already clean and absolute; it names the host node.
	src, err := os.OpenFile(path, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open host device: %w", err)
	}
	defer src.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(src.Fd()), &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != ftype || unix.Major(st.Rdev) != uint32(d.Major) || unix.Minor(st.Rdev) != uint32(d.Minor) {
		return fmt.Errorf("%w: host %s is %d:%d", ErrDeviceMismatch, path, unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	fd, err := unix.Openat(pfd, base, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return fmt.Errorf("create mount point: %w", err)
	}
	unix.Close(fd)
	tfd, err := unix.Openat(pfd, base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	target := os.NewFile(uintptr(tfd), path)
	defer target.Close()
	tree, err := cloneTree(src, false)
	if err != nil {
		return err
	}
	defer tree.Close()
	return attach(tree, target)
}

// createDevSymlinks adds the conventional /dev links. Existing entries are
// kept (as runc does), except /dev/ptmx which must point at the container's
// own devpts instance or ptys would be allocated from the host's.
func createDevSymlinks(root *os.File, kcore, devpts bool) error {
	dev, err := pathrs.MkdirAllHandle(root, "/dev", 0o755)
	if err != nil {
		return wrapErr("create", "/dev", err)
	}
	defer dev.Close()
	dfd := int(dev.Fd())
	links := [][2]string{
		{"/proc/self/fd", "fd"},
		{"/proc/self/fd/0", "stdin"},
		{"/proc/self/fd/1", "stdout"},
		{"/proc/self/fd/2", "stderr"},
	}
	if kcore {
		links = append(links, [2]string{"/proc/kcore", "core"})
	}
	for _, l := range links {
		if err := unix.Symlinkat(l[0], dfd, l[1]); err != nil && !errors.Is(err, unix.EEXIST) {
			return wrapErr("symlink", "/dev/"+l[1], err)
		}
	}
	if devpts {
		busy, err := clearEntry(dfd, "ptmx")
		if err != nil {
			return wrapErr("symlink", "/dev/ptmx", err)
		}
		if !busy {
			if err := unix.Symlinkat("pts/ptmx", dfd, "ptmx"); err != nil {
				return wrapErr("symlink", "/dev/ptmx", err)
			}
		}
	}
	return nil
}

// bindConsole exposes the pty slave as /dev/console. The console path comes
// from the runtime, but it is still checked to be a character device so a
// mistake cannot bind an arbitrary host file into the container.
func bindConsole(root *os.File, console string) error {
	const dest = "/dev/console"
	src, err := os.OpenFile(console, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return wrapErr("open console", dest, err)
	}
	defer src.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(src.Fd()), &st); err != nil {
		return wrapErr("stat console", dest, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR {
		return wrapErr("bind console", dest, fmt.Errorf("%w: %s is not a character device", ErrDeviceMismatch, console))
	}
	dev, err := pathrs.MkdirAllHandle(root, "/dev", 0o755)
	if err != nil {
		return wrapErr("bind console", dest, err)
	}
	defer dev.Close()
	busy, err := clearEntry(int(dev.Fd()), "console")
	if err != nil || busy {
		return wrapErr("bind console", dest, err)
	}
	fd, err := unix.Openat(int(dev.Fd()), "console", unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return wrapErr("bind console", dest, err)
	}
	unix.Close(fd)
	tfd, err := unix.Openat(int(dev.Fd()), "console", unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return wrapErr("bind console", dest, err)
	}
	target := os.NewFile(uintptr(tfd), dest)
	defer target.Close()
	tree, err := cloneTree(src, false)
	if err != nil {
		return wrapErr("bind console", dest, err)
	}
	defer tree.Close()
	return wrapErr("bind console", dest, attach(tree, target))
}

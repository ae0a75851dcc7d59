package rootfs

// Steps 1 and 2: preparing "/" and the rootfs, and performing spec.Mounts.

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/moby/sys/mountinfo"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// mountOpts is spec.Mount.Options sorted by who consumes them: mount
// attributes (mount_setattr/fsmount), propagation, superblock flags and
// filesystem data (fsconfig).
type mountOpts struct {
	bind, recursive  bool
	attrSet, attrClr uint64 // applied to the top mount only
	recSet, recClr   uint64 // "rro", "rnosuid", ...: applied with AT_RECURSIVE
	props            []propagation
	data             []string // fsconfig keys, in order; includes sync/dirsync
	idmap            bool
	copyUp           bool // tmpcopyup: fill a tmpfs with what the image has there
	unsupported      string
}

type propagation struct {
	flag      uint64
	recursive bool
}

type attrOpt struct {
	set, clr uint64
}

// Atime modes are one field in mount_setattr: setting one requires clearing
// the whole MOUNT_ATTR__ATIME field.
var attrOptions = map[string]attrOpt{
	"ro":          {set: unix.MOUNT_ATTR_RDONLY},
	"rw":          {clr: unix.MOUNT_ATTR_RDONLY},
	"nosuid":      {set: unix.MOUNT_ATTR_NOSUID},
	"suid":        {clr: unix.MOUNT_ATTR_NOSUID},
	"nodev":       {set: unix.MOUNT_ATTR_NODEV},
	"dev":         {clr: unix.MOUNT_ATTR_NODEV},
	"noexec":      {set: unix.MOUNT_ATTR_NOEXEC},
	"exec":        {clr: unix.MOUNT_ATTR_NOEXEC},
	"nosymfollow": {set: unix.MOUNT_ATTR_NOSYMFOLLOW},
	"symfollow":   {clr: unix.MOUNT_ATTR_NOSYMFOLLOW},
	"nodiratime":  {set: unix.MOUNT_ATTR_NODIRATIME},
	"diratime":    {clr: unix.MOUNT_ATTR_NODIRATIME},
	"relatime":    {set: unix.MOUNT_ATTR_RELATIME, clr: unix.MOUNT_ATTR__ATIME},
	"noatime":     {set: unix.MOUNT_ATTR_NOATIME, clr: unix.MOUNT_ATTR__ATIME},
	"strictatime": {set: unix.MOUNT_ATTR_STRICTATIME, clr: unix.MOUNT_ATTR__ATIME},
	// mount(2) without an atime flag means relatime, so clearing one of
	// these is a no-op there too.
	"norelatime":    {},
	"nostrictatime": {},
	"atime":         {},
}

var propOptions = map[string]propagation{
	"private":     {unix.MS_PRIVATE, false},
	"rprivate":    {unix.MS_PRIVATE, true},
	"shared":      {unix.MS_SHARED, false},
	"rshared":     {unix.MS_SHARED, true},
	"slave":       {unix.MS_SLAVE, false},
	"rslave":      {unix.MS_SLAVE, true},
	"unbindable":  {unix.MS_UNBINDABLE, false},
	"runbindable": {unix.MS_UNBINDABLE, true},
}

func parseMountOptions(opts []string) mountOpts {
	var o mountOpts
	for _, opt := range opts {
		if a, ok := attrOptions[opt]; ok {
			o.attrSet = o.attrSet&^a.clr | a.set
			o.attrClr = o.attrClr&^a.set | a.clr
			continue
		}
		// OCI runtime-spec 1.1 recursive attributes ("rro", "rnosuid", ...).
		if strings.HasPrefix(opt, "r") {
			if a, ok := attrOptions[opt[1:]]; ok {
				o.recSet = o.recSet&^a.clr | a.set
				o.recClr = o.recClr&^a.set | a.clr
				continue
			}
		}
		if p, ok := propOptions[opt]; ok {
			o.props = append(o.props, p)
			continue
		}
		switch {
		case opt == "bind":
			o.bind = true
		case opt == "rbind":
			o.bind, o.recursive = true, true
		case opt == "idmap" || opt == "ridmap":
			o.idmap = true
		case opt == "tmpcopyup":
			o.copyUp = true
		case opt == "defaults" || opt == "remount" || opt == "mand" || opt == "nomand" ||
			opt == "async" || opt == "loud" || opt == "silent" || opt == "" ||
			strings.HasPrefix(opt, "x-"):
			// mount(8)-level or obsolete options with no kernel meaning here.
		default:
			// Includes the superblock flags "sync" and "dirsync", which
			// fsconfig understands as flags.
			o.data = append(o.data, opt)
		}
	}
	return o
}

func rootPropagation(p string) (uintptr, error) {
	if p == "" {
		return 0, nil
	}
	v, ok := propOptions[p]
	if !ok {
		return 0, wrapErr("rootfsPropagation", "/", fmt.Errorf("%w: unknown propagation %q", ErrInvalidSpec, p))
	}
	flag := uintptr(v.flag)
	if v.recursive {
		flag |= unix.MS_REC
	}
	return flag, nil
}

// prepareRoot cuts propagation towards the host and turns the rootfs into a
// mount root. rootProp, when given, replaces the default rslave.
func prepareRoot(rootfs string, rootProp uintptr) error {
	flag := uintptr(unix.MS_SLAVE | unix.MS_REC)
	if rootProp != 0 {
		flag = rootProp
	}
	if err := unix.Mount("", "/", "", flag, ""); err != nil {
		return wrapErr("make / "+propName(flag), "/", err)
	}
	if err := rootfsParentPrivate(rootfs); err != nil {
		return err
	}
	if err := unix.Mount(rootfs, rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return wrapErr("bind rootfs onto itself", "/", err)
	}
	return nil
}

// rootfsParentPrivate: pivot_root fails when the new root's parent mount is
// shared, and with rshared root propagation the self-bind would otherwise
// show up in the host.
func rootfsParentPrivate(rootfs string) error {
	mounts, err := mountinfo.GetMounts(mountinfo.ParentsFilter(rootfs))
	if err != nil {
		return wrapErr("read mountinfo", "/", err)
	}
	var parent *mountinfo.Info
	for _, m := range mounts {
		if parent == nil || len(m.Mountpoint) > len(parent.Mountpoint) {
			parent = m
		}
	}
	if parent == nil || !strings.Contains(parent.Optional, "shared:") {
		return nil
	}
	if err := unix.Mount("", parent.Mountpoint, "", unix.MS_PRIVATE, ""); err != nil {
		return wrapErr("make rootfs parent private", "/", err)
	}
	return nil
}

func propName(flag uintptr) string {
	var s string
	if flag&unix.MS_REC != 0 {
		s = "r"
	}
	switch {
	case flag&unix.MS_SHARED != 0:
		return s + "shared"
	case flag&unix.MS_PRIVATE != 0:
		return s + "private"
	case flag&unix.MS_UNBINDABLE != 0:
		return s + "unbindable"
	}
	return s + "slave"
}

func isBind(m *specs.Mount, o *mountOpts) bool {
	return o.bind || m.Type == "bind"
}

// devBindMounted: a /dev bind mount is the user's own directory (often the
// host's /dev); like runc we then create no device nodes or symlinks in it.
func devBindMounted(mounts []specs.Mount) bool {
	for i := range mounts {
		m := &mounts[i]
		o := parseMountOptions(m.Options)
		if cleanInRoot(m.Destination) == "/dev" && isBind(m, &o) {
			return true
		}
	}
	return false
}

func devptsMounted(mounts []specs.Mount) bool {
	for i := range mounts {
		if mounts[i].Type == "devpts" && cleanInRoot(mounts[i].Destination) == "/dev/pts" {
			return true
		}
	}
	return false
}

func mountEntry(root *os.File, m *specs.Mount) error {
	o := parseMountOptions(m.Options)
	dest := cleanInRoot(m.Destination)
	typ := m.Type
	if isBind(m, &o) {
		typ = "bind"
	}
	op := "mount " + typ
	if typ == "" {
		return wrapErr("mount", dest, fmt.Errorf("%w: mount type is empty", ErrInvalidSpec))
	}
	if o.idmap || len(m.UIDMappings) > 0 || len(m.GIDMappings) > 0 {
		return wrapErr(op, dest, fmt.Errorf("%w: idmapped mounts", ErrUnsupported))
	}
	if o.unsupported != "" {
		return wrapErr(op, dest, fmt.Errorf("%w: option %q", ErrUnsupported, o.unsupported))
	}

	var err error
	switch typ {
	case "bind":
		err = mountBind(root, m.Source, dest, &o)
	case "cgroup", "cgroup2":
		err = mountCgroup(root, dest, &o)
	default:
		err = mountFS(root, typ, m.Source, dest, &o)
	}
	return wrapErr(op, dest, err)
}

func mountFS(root *os.File, typ, source, dest string, o *mountOpts) error {
	kind := targetDir
	if typ == "proc" || typ == "sysfs" {
		kind = targetStrictDir
	}
	target, err := openTarget(root, dest, kind)
	if err != nil {
		return err
	}
	defer target.Close()
	if o.copyUp && typ == "tmpfs" {
		return mountTmpfsCopyUp(target, source, o)
	}
	mnt, err := newFS(typ, source, o.data, o.attrSet)
	if err != nil {
		return err
	}
	defer mnt.Close()
	return attachWithOptions(mnt, target, o)
}

func mountBind(root *os.File, source, dest string, o *mountOpts) error {
	if source == "" {
		return fmt.Errorf("%w: bind mount without source", ErrInvalidSpec)
	}
	// The source is a host path chosen by the user (trusted); following
	// symlinks there is what mount --bind does.
	src, err := os.OpenFile(source, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open source: %w", err)
	}
	defer src.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(src.Fd()), &st); err != nil {
		return fmt.Errorf("stat source: %w", err)
	}
	kind := targetDir
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		kind = targetFile
	}
	target, err := openTarget(root, dest, kind)
	if err != nil {
		return err
	}
	defer target.Close()
	tree, err := cloneTree(src, o.recursive)
	if err != nil {
		return err
	}
	defer tree.Close()
	if err := setAttr(tree, o.attrSet, o.attrClr, false); err != nil {
		return err
	}
	return attachWithOptions(tree, target, o)
}

// attachWithOptions applies the recursive attributes, attaches, then sets
// propagation: propagation is a property of an attached mount's peer group.
func attachWithOptions(mnt, target *os.File, o *mountOpts) error {
	if err := setAttr(mnt, o.recSet, o.recClr, true); err != nil {
		return err
	}
	if err := attach(mnt, target); err != nil {
		return err
	}
	for _, p := range o.props {
		if err := setPropagation(mnt, p.flag, p.recursive); err != nil {
			return err
		}
	}
	return nil
}

func isErrno(err error, errnos ...unix.Errno) bool {
	for _, e := range errnos {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

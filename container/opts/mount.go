package opts

import (
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/mount"
)

// volumeNameRE is docker's restriction on local volume names ([a-zA-Z0-9][a-zA-Z0-9_.-]).
var volumeNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

const volumeNameChars = "[a-zA-Z0-9][a-zA-Z0-9_.-]"

// ValidateVolumeName checks a named volume's name as docker's local driver does.
func ValidateVolumeName(name string) error {
	if !volumeNameRE.MatchString(name) {
		return fmt.Errorf("%q includes invalid characters for a local volume name, only %q are allowed. If you intended to pass a host directory, use absolute path", name, volumeNameChars)
	}
	return nil
}

var propagations = map[mount.Propagation]bool{
	mount.PropagationPrivate: true, mount.PropagationRPrivate: true,
	mount.PropagationShared: true, mount.PropagationRShared: true,
	mount.PropagationSlave: true, mount.PropagationRSlave: true,
}

var consistencies = map[mount.Consistency]bool{
	mount.ConsistencyFull: true, mount.ConsistencyCached: true, mount.ConsistencyDelegated: true,
}

func errVolumeSpec(raw string, format string, args ...any) error {
	return fmt.Errorf("invalid volume specification: '%s': %s", raw, fmt.Sprintf(format, args...))
}

// validTarget checks a container path of a mount: absolute and not the root.
func validTarget(p string) error {
	if !path.IsAbs(p) {
		return fmt.Errorf("invalid mount path: '%s' mount path must be absolute", p)
	}
	if path.Clean(p) == "/" {
		return errors.New("invalid specification: destination can't be '/'")
	}
	return nil
}

// volumeMode is a parsed -v mode string ("ro,z,rshared", ...).
type volumeMode struct {
	readOnly    bool
	propagation mount.Propagation
	noCopy      *bool
	consistency mount.Consistency
}

// parseVolumeMode parses the third field of -v: at most one of each kind (rw mode, label
// mode, propagation, copy mode, consistency), as docker's linuxValidMountMode.
func parseVolumeMode(mode string) (volumeMode, bool) {
	var m volumeMode
	if mode == "" {
		return m, true
	}
	counts := map[string]int{}
	for _, o := range strings.Split(mode, ",") {
		switch {
		case o == "ro" || o == "rw":
			counts["rw"]++
			m.readOnly = o == "ro"
		case o == "z" || o == "Z":
			counts["label"]++ // SELinux relabeling: accepted, nothing to do without SELinux
		case propagations[mount.Propagation(o)]:
			counts["propagation"]++
			m.propagation = mount.Propagation(o)
		case o == "nocopy" || o == "copy":
			counts["copy"]++
			b := o == "nocopy"
			m.noCopy = &b
		case consistencies[mount.Consistency(o)]:
			counts["consistency"]++
			m.consistency = mount.Consistency(o)
		default:
			return m, false
		}
	}
	for _, n := range counts {
		if n > 1 {
			return m, false
		}
	}
	return m, true
}

// ParseVolume parses a -v/--volume value:
//
//	/host/path:/ctr/path[:MODE]   bind mount
//	name:/ctr/path[:MODE]         named volume
//	/ctr/path                     anonymous volume
//
// MODE is a comma-separated list of ro|rw, z|Z, a propagation (private, rprivate, shared,
// rshared, slave, rslave: bind mounts only), nocopy (volumes only) and a consistency
// (consistent, cached, delegated).
func ParseVolume(raw string) (mount.Mount, error) {
	arr := strings.SplitN(raw, ":", 4)
	if arr[0] == "" {
		return mount.Mount{}, fmt.Errorf("invalid volume specification: '%s': want [SOURCE:]/CONTAINER/PATH[:MODE]", raw)
	}
	var m mount.Mount
	var mode string
	switch len(arr) {
	case 1:
		m.Target = arr[0]
	case 2:
		if _, ok := parseVolumeMode(arr[1]); ok {
			// "/foo:rw": a destination with a mode but no source.
			return mount.Mount{}, errVolumeSpec(raw, "a mode needs a source: want SOURCE:/CONTAINER/PATH[:MODE]")
		}
		m.Source, m.Target = arr[0], arr[1]
	case 3:
		m.Source, m.Target, mode = arr[0], arr[1], arr[2]
	default:
		return mount.Mount{}, errVolumeSpec(raw, "too many colons: want [SOURCE:]/CONTAINER/PATH[:MODE]")
	}
	vm, ok := parseVolumeMode(mode)
	if !ok {
		return mount.Mount{}, errVolumeSpec(raw, "invalid mode: %s (want a comma-separated list of ro|rw, z|Z, a propagation, nocopy, a consistency; at most one of each)", mode)
	}
	if err := validTarget(m.Target); err != nil {
		return mount.Mount{}, errVolumeSpec(raw, "%v", err)
	}
	m.Target = path.Clean(m.Target)
	m.ReadOnly = vm.readOnly
	m.Consistency = vm.consistency
	switch {
	case m.Source == "":
		m.Type = mount.TypeVolume
	case path.IsAbs(m.Source):
		m.Type = mount.TypeBind
		m.Source = path.Clean(m.Source)
	default:
		m.Type = mount.TypeVolume
		if err := ValidateVolumeName(m.Source); err != nil {
			return mount.Mount{}, err
		}
	}
	if vm.propagation != "" {
		if m.Type != mount.TypeBind {
			return mount.Mount{}, errVolumeSpec(raw, "propagation mode %s is only valid for bind mounts", vm.propagation)
		}
		m.BindOptions = &mount.BindOptions{Propagation: vm.propagation}
	}
	if vm.noCopy != nil {
		if m.Type != mount.TypeVolume {
			return mount.Mount{}, errVolumeSpec(raw, "nocopy is only valid for volumes")
		}
		m.VolumeOptions = &mount.VolumeOptions{NoCopy: *vm.noCopy}
	}
	return m, nil
}

// parseBool is docker's --mount boolean: no value means true; else 1|true|0|false.
func parseBool(key, val string, hasValue bool) (bool, error) {
	if !hasValue {
		return true, nil
	}
	switch val {
	case "1", "true":
		return true, nil
	case "0", "false":
		return false, nil
	}
	return false, fmt.Errorf(`invalid value for '%s': invalid boolean value (%q): must be one of "true", "1", "false", or "0" (default "true")`, key, val)
}

// ParseMount parses a --mount value: comma-separated key=value fields (CSV quoting allowed):
//
//	type=bind|volume|tmpfs (default volume), src|source, dst|destination|target,
//	readonly|ro[=true|false], consistency, bind-propagation, bind-nonrecursive[=bool],
//	bind-recursive=enabled|disabled|writable|readonly, bind-create-src[=bool],
//	volume-nocopy[=bool], volume-subpath, volume-label=K=V, volume-driver, volume-opt=K=V,
//	tmpfs-size (bytes, units allowed), tmpfs-mode (octal)
func ParseMount(value string) (mount.Mount, error) {
	value = strings.TrimSpace(value)
	if value == "" {
		return mount.Mount{}, errors.New("invalid --mount: value is empty (want type=bind|volume|tmpfs,source=...,target=...)")
	}
	fields, err := csv.NewReader(strings.NewReader(value)).Read()
	if err != nil {
		return mount.Mount{}, fmt.Errorf("invalid --mount %q: %v", value, err)
	}
	m := mount.Mount{Type: mount.TypeVolume}
	bindOpts := func() *mount.BindOptions {
		if m.BindOptions == nil {
			m.BindOptions = &mount.BindOptions{}
		}
		return m.BindOptions
	}
	volOpts := func() *mount.VolumeOptions {
		if m.VolumeOptions == nil {
			m.VolumeOptions = &mount.VolumeOptions{}
		}
		return m.VolumeOptions
	}
	driver := func() *mount.Driver {
		if volOpts().DriverConfig == nil {
			m.VolumeOptions.DriverConfig = &mount.Driver{}
		}
		return m.VolumeOptions.DriverConfig
	}
	tmpfsOpts := func() *mount.TmpfsOptions {
		if m.TmpfsOptions == nil {
			m.TmpfsOptions = &mount.TmpfsOptions{}
		}
		return m.TmpfsOptions
	}
	setMap := func(target map[string]string, kv string) map[string]string {
		k, v, _ := strings.Cut(kv, "=")
		if k == "" {
			return target
		}
		if target == nil {
			target = map[string]string{}
		}
		target[k] = v
		return target
	}
	for _, field := range fields {
		key, val, hasValue := strings.Cut(field, "=")
		if k := strings.TrimSpace(key); k != key {
			return mount.Mount{}, fmt.Errorf("invalid option '%s' in '%s': option should not have whitespace", k, field)
		}
		if hasValue {
			v := strings.TrimSpace(val)
			if v == "" {
				return mount.Mount{}, fmt.Errorf("invalid value for '%s': value is empty", key)
			}
			if v != val {
				return mount.Mount{}, fmt.Errorf("invalid value for '%s' in '%s': value should not have whitespace", key, field)
			}
		}
		key = strings.ToLower(key)
		if !hasValue {
			switch key {
			case "readonly", "ro", "volume-nocopy", "bind-nonrecursive", "bind-create-src":
			default:
				return mount.Mount{}, fmt.Errorf("invalid field '%s' must be a key=value pair", field)
			}
		}
		switch key {
		case "type":
			m.Type = mount.Type(strings.ToLower(val))
		case "source", "src":
			m.Source = val
		case "target", "dst", "destination":
			m.Target = val
		case "readonly", "ro":
			if m.ReadOnly, err = parseBool(key, val, hasValue); err != nil {
				return mount.Mount{}, err
			}
		case "consistency":
			m.Consistency = mount.Consistency(strings.ToLower(val))
			if !consistencies[m.Consistency] && m.Consistency != mount.ConsistencyDefault {
				return mount.Mount{}, fmt.Errorf("invalid value for consistency: %s (must be consistent, cached, delegated or default)", val)
			}
		case "bind-propagation":
			p := mount.Propagation(strings.ToLower(val))
			if !propagations[p] {
				return mount.Mount{}, fmt.Errorf("invalid value for bind-propagation: %s (must be private, rprivate, shared, rshared, slave or rslave)", val)
			}
			bindOpts().Propagation = p
		case "bind-nonrecursive":
			b, err := parseBool(key, val, hasValue)
			if err != nil {
				return mount.Mount{}, err
			}
			bindOpts().NonRecursive = b
		case "bind-recursive":
			switch val {
			case "enabled":
				bindOpts()
			case "disabled":
				bindOpts().NonRecursive = true
			case "writable":
				bindOpts().ReadOnlyNonRecursive = true
			case "readonly":
				bindOpts().ReadOnlyForceRecursive = true
			default:
				return mount.Mount{}, fmt.Errorf(`invalid value for %s: %s (must be "enabled", "disabled", "writable", or "readonly")`, key, val)
			}
		case "bind-create-src":
			b, err := parseBool(key, val, hasValue)
			if err != nil {
				return mount.Mount{}, err
			}
			bindOpts().CreateMountpoint = b
		case "volume-nocopy":
			b, err := parseBool(key, val, hasValue)
			if err != nil {
				return mount.Mount{}, err
			}
			volOpts().NoCopy = b
		case "volume-subpath":
			volOpts().Subpath = val
		case "volume-label":
			volOpts().Labels = setMap(volOpts().Labels, val)
		case "volume-driver":
			driver().Name = val
		case "volume-opt":
			d := driver()
			d.Options = setMap(d.Options, val)
		case "tmpfs-size":
			n, err := units.RAMInBytes(val)
			if err != nil || n < 0 {
				return mount.Mount{}, fmt.Errorf("invalid value for %s: %s (want a size such as 64m)", key, val)
			}
			tmpfsOpts().SizeBytes = n
		case "tmpfs-mode":
			n, err := strconv.ParseUint(val, 8, 32)
			if err != nil {
				return mount.Mount{}, fmt.Errorf("invalid value for %s: %s (want an octal mode such as 1777)", key, val)
			}
			tmpfsOpts().Mode = os.FileMode(n)
		default:
			return mount.Mount{}, fmt.Errorf("unknown option '%s' in '%s'", key, field)
		}
	}
	if err := validateMount(&m); err != nil {
		return mount.Mount{}, err
	}
	return m, nil
}

// validateMount is the CLI's and the daemon's validation of a --mount, with the CLI's
// messages where it has them.
func validateMount(m *mount.Mount) error {
	switch m.Type {
	case mount.TypeBind, mount.TypeVolume, mount.TypeTmpfs:
	default:
		return fmt.Errorf("invalid mount type '%s': must be bind, volume or tmpfs", m.Type)
	}
	if m.Type != mount.TypeBind && m.BindOptions != nil {
		return fmt.Errorf("cannot mix 'bind-*' options with mount type '%s'", m.Type)
	}
	if m.Type != mount.TypeVolume && m.VolumeOptions != nil {
		return fmt.Errorf("cannot mix 'volume-*' options with mount type '%s'", m.Type)
	}
	if m.Type != mount.TypeTmpfs && m.TmpfsOptions != nil {
		return fmt.Errorf("cannot mix 'tmpfs-*' options with mount type '%s'", m.Type)
	}
	if m.Target == "" {
		return fmt.Errorf("invalid mount config for type %q: field Target must not be empty (add target=/CONTAINER/PATH)", m.Type)
	}
	if err := validTarget(m.Target); err != nil {
		return fmt.Errorf("invalid mount config for type %q: %v", m.Type, err)
	}
	m.Target = path.Clean(m.Target)
	if b := m.BindOptions; b != nil {
		if b.ReadOnlyNonRecursive && !m.ReadOnly {
			return errors.New("option 'bind-recursive=writable' requires 'readonly' to be specified in conjunction")
		}
		if b.ReadOnlyForceRecursive {
			if !m.ReadOnly {
				return errors.New("option 'bind-recursive=readonly' requires 'readonly' to be specified in conjunction")
			}
			if b.Propagation != mount.PropagationRPrivate {
				return errors.New("option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' to be specified in conjunction")
			}
		}
	}
	switch m.Type {
	case mount.TypeBind:
		if m.Source == "" {
			return errors.New(`invalid mount config for type "bind": field Source must not be empty (add source=/HOST/PATH)`)
		}
		if !path.IsAbs(m.Source) {
			return fmt.Errorf(`invalid mount config for type "bind": invalid mount path: '%s' mount path must be absolute`, m.Source)
		}
		m.Source = path.Clean(m.Source)
	case mount.TypeVolume:
		if m.Source == "" {
			if m.ReadOnly {
				return errors.New(`invalid mount config for type "volume": must not set ReadOnly mode when using anonymous volumes`)
			}
			if m.VolumeOptions != nil && m.VolumeOptions.Subpath != "" {
				return errors.New(`invalid mount config for type "volume": must not set Subpath when using anonymous volumes`)
			}
		} else if err := ValidateVolumeName(m.Source); err != nil {
			return err
		}
		if m.VolumeOptions != nil && m.VolumeOptions.Subpath != "" {
			sp := m.VolumeOptions.Subpath
			if path.IsAbs(sp) || path.Clean(sp) == ".." || strings.HasPrefix(path.Clean(sp), "../") {
				return fmt.Errorf(`invalid mount config for type "volume": subpath must be a relative path within the volume: %s`, sp)
			}
		}
	case mount.TypeTmpfs:
		if m.Source != "" {
			return errors.New(`invalid mount config for type "tmpfs": field Source must not be specified`)
		}
	}
	return nil
}

// TmpfsData renders a tmpfs --mount's options as tmpfs mount data, as docker's
// ConvertTmpfsOptions: "ro", "mode=%o", "size=N[kmg]".
func TmpfsData(m mount.Mount) string {
	var o []string
	if m.ReadOnly {
		o = append(o, "ro")
	}
	if t := m.TmpfsOptions; t != nil {
		if t.Mode != 0 {
			o = append(o, fmt.Sprintf("mode=%o", t.Mode))
		}
		if t.SizeBytes != 0 {
			size, suffix := t.SizeBytes, ""
			for _, u := range []struct {
				s string
				d int64
			}{{"g", 1 << 30}, {"m", 1 << 20}, {"k", 1 << 10}} {
				if size%u.d == 0 {
					size, suffix = size/u.d, u.s
					break
				}
			}
			o = append(o, fmt.Sprintf("size=%d%s", size, suffix))
		}
		for _, kv := range t.Options {
			if len(kv) == 1 {
				o = append(o, kv[0])
			} else if len(kv) == 2 {
				o = append(o, kv[0]+"="+kv[1])
			}
		}
	}
	return strings.Join(o, ",")
}

// tmpfsFlags are the mount flags a tmpfs option list may carry; each pairs with its opposite.
var tmpfsFlags = map[string]string{
	"ro": "rw", "rw": "ro",
	"exec": "noexec", "noexec": "exec",
	"suid": "nosuid", "nosuid": "suid",
	"dev": "nodev", "nodev": "dev",
	"sync": "async", "async": "sync",
	"dirsync": "", "mand": "nomand", "nomand": "mand",
	"atime": "noatime", "noatime": "atime",
	"diratime": "nodiratime", "nodiratime": "diratime",
	"relatime": "norelatime", "norelatime": "relatime",
	"strictatime": "nostrictatime", "nostrictatime": "strictatime",
	"private": "", "rprivate": "", "shared": "", "rshared": "", "slave": "", "rslave": "",
	"tmpcopyup": "",
}

// tmpfsData are the tmpfs options that take a value.
var tmpfsData = map[string]bool{
	"size": true, "mode": true, "uid": true, "gid": true, "nr_inodes": true, "nr_blocks": true,
	"mpol": true, "huge": true,
}

var kernelSizeRE = regexp.MustCompile(`^[0-9]+[kKmMgGtTpPeE%]?$`)

// ValidateTmpfsOptions checks a tmpfs option list ("rw,size=64m,mode=1777") and returns it
// normalized: a size the kernel does not read (for example "64mb") becomes bytes.
func ValidateTmpfsOptions(opts string) (string, error) {
	if opts == "" {
		return "", nil
	}
	var out []string
	for _, o := range strings.Split(opts, ",") {
		k, v, hasValue := strings.Cut(o, "=")
		switch {
		case !hasValue:
			if _, ok := tmpfsFlags[k]; !ok {
				return "", fmt.Errorf("invalid tmpfs option %q (want flags such as rw, noexec, nosuid and size=, mode=, uid=, gid=, nr_inodes=)", o)
			}
		case !tmpfsData[k]:
			return "", fmt.Errorf("invalid tmpfs option %q (want flags such as rw, noexec, nosuid and size=, mode=, uid=, gid=, nr_inodes=)", o)
		case k == "size":
			if !kernelSizeRE.MatchString(v) {
				n, err := units.RAMInBytes(v)
				if err != nil || n < 0 {
					return "", fmt.Errorf("invalid tmpfs size %q (want a size such as 64m or 50%%)", v)
				}
				o = "size=" + strconv.FormatInt(n, 10)
			}
		case k == "mode":
			if _, err := strconv.ParseUint(v, 8, 32); err != nil {
				return "", fmt.Errorf("invalid tmpfs mode %q (want an octal mode such as 1777)", v)
			}
		case k == "uid" || k == "gid" || k == "nr_inodes" || k == "nr_blocks":
			if _, err := strconv.ParseUint(strings.TrimRight(v, "kKmMgG%"), 10, 64); err != nil {
				return "", fmt.Errorf("invalid tmpfs option %q (want a number)", o)
			}
		}
		out = append(out, o)
	}
	return strings.Join(out, ","), nil
}

// MergeTmpfsOptions merges tmpfs option lists left to right: a later flag replaces an earlier
// one of the same pair (noexec then exec gives exec), a later key=value replaces the earlier
// value of that key. The order of first appearance is kept.
func MergeTmpfsOptions(options []string) []string {
	var out []string
	index := map[string]int{}
	for _, o := range options {
		if o == "" {
			continue
		}
		key, _, hasValue := strings.Cut(o, "=")
		slot := key
		if !hasValue {
			if opp, ok := tmpfsFlags[key]; ok && opp != "" {
				// the pair shares one slot, named by its sorted members
				pair := []string{key, opp}
				sort.Strings(pair)
				slot = pair[0] + "/" + pair[1]
			}
			if isPropagation(key) {
				slot = "propagation"
			}
		}
		if i, ok := index[slot]; ok {
			out[i] = o
			continue
		}
		index[slot] = len(out)
		out = append(out, o)
	}
	return out
}

func isPropagation(o string) bool { return propagations[mount.Propagation(o)] }

// ParseTmpfs parses a --tmpfs value: /CONTAINER/PATH[:OPTIONS], OPTIONS as for mount -t tmpfs.
func ParseTmpfs(s string) (dest, options string, err error) {
	dest, options, _ = strings.Cut(s, ":")
	if dest == "" {
		return "", "", fmt.Errorf("invalid --tmpfs %q: want /CONTAINER/PATH[:OPTIONS]", s)
	}
	if err := validTarget(dest); err != nil {
		return "", "", fmt.Errorf("invalid --tmpfs %q: %v", s, err)
	}
	options, err = ValidateTmpfsOptions(options)
	if err != nil {
		return "", "", fmt.Errorf("invalid --tmpfs %q: %v", s, err)
	}
	return path.Clean(dest), options, nil
}

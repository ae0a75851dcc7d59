package opts

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
)

// ParseUlimit parses a --ulimit value: NAME=SOFT[:HARD] (-1 is unlimited).
func ParseUlimit(s string) (*container.Ulimit, error) {
	name, val, ok := strings.Cut(s, "=")
	if !ok || name == "" || val == "" {
		return nil, fmt.Errorf("invalid ulimit %q: want NAME=SOFT[:HARD], e.g. nofile=1024:2048", s)
	}
	// go-units knows the names and checks soft <= hard; its integer errors are strconv's, so
	// check the numbers first for a message that names the value.
	for _, n := range strings.Split(val, ":") {
		if _, err := strconv.ParseInt(n, 10, 64); err != nil {
			return nil, fmt.Errorf("invalid ulimit %q: %q is not an integer (want NAME=SOFT[:HARD])", s, n)
		}
	}
	u, err := units.ParseUlimit(s)
	if err != nil {
		return nil, fmt.Errorf("invalid ulimit %q: %v", s, err)
	}
	return u, nil
}

// ParseDevice parses a --device value: /dev/HOST[:/dev/CONTAINER][:PERMISSIONS], PERMISSIONS
// a combination of r, w and m (default rwm).
func ParseDevice(s string) (container.DeviceMapping, error) {
	if strings.Count(s, ":") > 2 {
		return container.DeviceMapping{}, fmt.Errorf("invalid device %q: want /dev/HOST[:/dev/CONTAINER][:rwm]", s)
	}
	arr := strings.Split(s, ":")
	if arr[0] == "" {
		return container.DeviceMapping{}, fmt.Errorf("invalid device %q: want /dev/HOST[:/dev/CONTAINER][:rwm]", s)
	}
	d := container.DeviceMapping{PathOnHost: arr[0], CgroupPermissions: "rwm"}
	switch len(arr) {
	case 2:
		if validDeviceMode(arr[1]) {
			d.CgroupPermissions = arr[1]
		} else {
			d.PathInContainer = arr[1]
		}
	case 3:
		if !validDeviceMode(arr[2]) {
			return container.DeviceMapping{}, fmt.Errorf("invalid device %q: bad mode %q (want a combination of r, w and m)", s, arr[2])
		}
		d.PathInContainer, d.CgroupPermissions = arr[1], arr[2]
	}
	if d.PathInContainer == "" {
		d.PathInContainer = d.PathOnHost
	}
	if !path.IsAbs(d.PathOnHost) {
		return container.DeviceMapping{}, fmt.Errorf("invalid device %q: %s is not an absolute path", s, d.PathOnHost)
	}
	if !path.IsAbs(d.PathInContainer) {
		return container.DeviceMapping{}, fmt.Errorf("invalid device %q: %s is not an absolute path", s, d.PathInContainer)
	}
	d.PathInContainer = path.Clean(d.PathInContainer)
	return d, nil
}

func validDeviceMode(mode string) bool {
	if mode == "" || len(mode) > 3 {
		return false
	}
	seen := map[rune]bool{}
	for _, c := range mode {
		if (c != 'r' && c != 'w' && c != 'm') || seen[c] {
			return false
		}
		seen[c] = true
	}
	return true
}

var deviceCgroupRuleRE = regexp.MustCompile(`^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$`)

// ParseDeviceCgroupRule checks a --device-cgroup-rule value: 'TYPE MAJOR:MINOR PERMS' with
// TYPE a, b or c, MAJOR and MINOR numbers or *, PERMS from rwm.
func ParseDeviceCgroupRule(s string) (string, error) {
	m := deviceCgroupRuleRE.FindStringSubmatch(s)
	if m == nil || !validDeviceMode(m[4]) {
		return "", fmt.Errorf("invalid device cgroup rule %q: want 'TYPE MAJOR:MINOR PERMS', e.g. 'c 1:3 rwm' or 'b *:* m'", s)
	}
	return s, nil
}

// ParseRestartPolicy parses a --restart value: no, always, unless-stopped or
// on-failure[:MAX-RETRIES]. An empty value gives the zero policy (docker's default, "no").
func ParseRestartPolicy(s string) (container.RestartPolicy, error) {
	if s == "" {
		return container.RestartPolicy{}, nil
	}
	name, count, hasCount := strings.Cut(s, ":")
	if name == "" {
		return container.RestartPolicy{}, errors.New("invalid restart policy format: no policy provided before colon")
	}
	p := container.RestartPolicy{Name: container.RestartPolicyMode(name)}
	if hasCount {
		n, err := strconv.Atoi(count)
		if err != nil {
			return container.RestartPolicy{}, fmt.Errorf("invalid restart policy format: maximum retry count must be an integer, got %q", count)
		}
		p.MaximumRetryCount = n
	}
	switch p.Name {
	case container.RestartPolicyAlways, container.RestartPolicyUnlessStopped, container.RestartPolicyDisabled:
		if hasCount {
			return container.RestartPolicy{}, fmt.Errorf("invalid restart policy %q: maximum retry count can only be used with 'on-failure'", s)
		}
	case container.RestartPolicyOnFailure:
		if p.MaximumRetryCount < 0 {
			return container.RestartPolicy{}, fmt.Errorf("invalid restart policy %q: maximum retry count cannot be negative", s)
		}
	default:
		return container.RestartPolicy{}, fmt.Errorf("invalid restart policy: unknown policy '%s'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'", name)
	}
	return p, nil
}

// ParseCPUs parses a --cpus value ("1.5") into NanoCPUs.
func ParseCPUs(s string) (int64, error) {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return 0, fmt.Errorf("invalid CPU count %q: want a number such as 1.5", s)
	}
	if r.Sign() < 0 {
		return 0, fmt.Errorf("invalid CPU count %q: must not be negative", s)
	}
	nano := r.Mul(r, big.NewRat(1e9, 1))
	if !nano.IsInt() {
		return 0, fmt.Errorf("invalid CPU count %q: value is too precise (at most 9 decimals)", s)
	}
	if !nano.Num().IsInt64() {
		return 0, fmt.Errorf("invalid CPU count %q: too large", s)
	}
	return nano.Num().Int64(), nil
}

// ParseMemory parses a byte size as -m/--memory, --memory-reservation, --shm-size do
// (go-units RAMInBytes: 1024-based units b, k, m, g, t, p, case-insensitive).
func ParseMemory(s string) (int64, error) {
	n, err := units.RAMInBytes(s)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid size: '%s' (want a number with an optional unit b, k, m, g)", s)
	}
	return n, nil
}

// ParseMemorySwap parses --memory-swap: a size, or -1 for unlimited swap.
func ParseMemorySwap(s string) (int64, error) {
	if s == "-1" {
		return -1, nil
	}
	return ParseMemory(s)
}

// ParseEnv checks -e/--env values: NAME=VALUE is kept as is; a NAME alone takes the value of
// NAME in the current environment, and stays a bare NAME when it is unset, as docker: the
// container then does not get that variable at all (a bare NAME also removes the image's NAME;
// spec.Generate drops bare names).
func ParseEnv(values []string) ([]string, error) {
	out := make([]string, 0, len(values))
	for _, v := range values {
		k, _, hasValue := strings.Cut(v, "=")
		if k == "" {
			return nil, fmt.Errorf("invalid environment variable %q: the name is empty (want NAME=VALUE or NAME)", v)
		}
		if !hasValue {
			if val, ok := os.LookupEnv(k); ok {
				v = k + "=" + val
			}
		}
		out = append(out, v)
	}
	return out, nil
}

// ParseEnvFile reads an --env-file: one NAME=VALUE per line, taken as is (no quotes or
// escapes); lines starting with # and blank lines are skipped; leading whitespace is dropped;
// a NAME alone takes its value from the current environment and is skipped when unset.
func ParseEnvFile(file string) ([]string, error) {
	return parseKVFile(file, os.LookupEnv)
}

// ParseLabelFile reads a --label-file (the env-file format; a NAME alone is kept as is).
func ParseLabelFile(file string) ([]string, error) {
	return parseKVFile(file, nil)
}

func parseKVFile(file string, lookup func(string) (string, bool)) ([]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	lines, err := parseKV(f, lookup)
	if err != nil {
		return nil, fmt.Errorf("invalid env file (%s): %v", file, err)
	}
	return lines, nil
}

func parseKV(r io.Reader, lookup func(string) (string, bool)) ([]string, error) {
	lines := []string{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		b := sc.Bytes()
		if !utf8.Valid(b) {
			return nil, fmt.Errorf("invalid utf8 bytes at line %d: %v", n, b)
		}
		if n == 1 {
			b = bytes.TrimPrefix(b, []byte{0xEF, 0xBB, 0xBF})
		}
		line := strings.TrimLeftFunc(string(b), unicode.IsSpace)
		if line == "" || line[0] == '#' {
			continue
		}
		key, _, hasValue := strings.Cut(line, "=")
		if key == "" {
			return nil, fmt.Errorf("no variable name on line '%s'", line)
		}
		if strings.ContainsAny(key, " \t") {
			return nil, fmt.Errorf("variable '%s' contains whitespaces", key)
		}
		switch {
		case hasValue:
			lines = append(lines, line)
		case lookup == nil:
			lines = append(lines, line)
		default:
			if v, ok := lookup(key); ok {
				lines = append(lines, key+"="+v)
			}
		}
	}
	return lines, sc.Err()
}

// ParseLabels turns --label values (KEY=VALUE, or KEY for an empty value) into a map; later
// values win.
func ParseLabels(values []string) (map[string]string, error) {
	m := make(map[string]string, len(values))
	for _, v := range values {
		k, val, _ := strings.Cut(v, "=")
		k = strings.TrimLeft(k, " \t")
		if k == "" {
			return nil, fmt.Errorf("invalid label '%s': empty name (want KEY=VALUE)", v)
		}
		if strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("label '%s' contains whitespaces", k)
		}
		m[k] = val
	}
	return m, nil
}

var namespacedSysctls = map[string]bool{
	"kernel.msgmax": true, "kernel.msgmnb": true, "kernel.msgmni": true, "kernel.sem": true,
	"kernel.shmall": true, "kernel.shmmax": true, "kernel.shmmni": true, "kernel.shm_rmid_forced": true,
}

// ParseSysctls turns --sysctl values (KEY=VALUE) into a map. As docker, only namespaced
// sysctls are allowed: the IPC ones (kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*) and
// net.*.
func ParseSysctls(values []string) (map[string]string, error) {
	m := make(map[string]string, len(values))
	for _, v := range values {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("invalid sysctl '%s': want KEY=VALUE", v)
		}
		if !namespacedSysctls[k] && !strings.HasPrefix(k, "net.") && !strings.HasPrefix(k, "fs.mqueue.") {
			return nil, fmt.Errorf("sysctl '%s' is not allowed: only namespaced sysctls (net.*, fs.mqueue.*, kernel.msg*, kernel.sem, kernel.shm*) can be set", v)
		}
		m[k] = val
	}
	return m, nil
}

// ParseNamespaceMode checks a --pid, --ipc or --uts value (flag names which, with or without
// the dashes). pid: "", host, container:NAME; ipc: also private, shareable, none; uts: "" or
// host (docker has no container: mode for uts).
func ParseNamespaceMode(flag, v string) (string, error) {
	flag = strings.TrimLeft(flag, "-")
	isContainer := func() bool {
		k, name, ok := strings.Cut(v, ":")
		return ok && k == "container" && name != ""
	}
	switch flag {
	case "pid":
		if v == "" || v == "host" || isContainer() {
			return v, nil
		}
		return "", fmt.Errorf("--pid: invalid PID mode %q (want host or container:NAME)", v)
	case "ipc":
		switch v {
		case "", "host", "private", "shareable", "none":
			return v, nil
		}
		if isContainer() {
			return v, nil
		}
		return "", fmt.Errorf("--ipc: invalid IPC mode %q (want private, shareable, none, host or container:NAME)", v)
	case "uts":
		if v == "" || v == "host" {
			return v, nil
		}
		return "", fmt.Errorf("--uts: invalid UTS mode %q (want host)", v)
	case "cgroupns":
		if v == "" || v == "host" || v == "private" {
			return v, nil
		}
		return "", fmt.Errorf("--cgroupns: invalid CGROUP mode %q (want host or private)", v)
	}
	return "", fmt.Errorf("unknown namespace flag %q (want pid, ipc, uts or cgroupns)", flag)
}

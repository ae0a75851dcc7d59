package spec

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/runtime"
	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const testID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// fakeRoot makes a rootfs with an /etc/passwd and /etc/group.
func fakeRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	write(t, filepath.Join(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n"+
		"daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"+
		"app:x:1000:1000:app:/home/app:/bin/sh\n"+
		"nohome:x:1001:1001::/:/bin/sh\n")
	write(t, filepath.Join(root, "etc/group"), "root:x:0:\n"+
		"daemon:x:1:\n"+
		"audio:x:29:app\n"+
		"video:x:44:app,daemon\n"+
		"app:x:1000:\n"+
		"staff:x:50:\n")
	return root
}

func write(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func gen(t *testing.T, in Input) *specs.Spec {
	t.Helper()
	if in.ID == "" {
		in.ID = testID
	}
	if in.Rootfs == "" {
		in.Rootfs = fakeRoot(t)
	}
	if in.Config == nil {
		in.Config = &container.Config{Cmd: []string{"sh"}}
	}
	if in.Host == nil {
		in.Host = &container.HostConfig{}
	}
	s, err := Generate(in)
	if err != nil {
		t.Fatalf("Generate: %v", err)
	}
	checkRuntimeAccepts(t, s)
	return s
}

// checkRuntimeAccepts loads the spec with berth's runtime parser (runtime.LoadSpec runs its
// validation).
func checkRuntimeAccepts(t *testing.T, s *specs.Spec) {
	t.Helper()
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	bundle := t.TempDir()
	write(t, filepath.Join(bundle, "config.json"), string(data))
	if _, err := runtime.LoadSpec(bundle); err != nil {
		t.Fatalf("the runtime refuses the spec: %v", err)
	}
}

func dests(ms []specs.Mount) []string {
	var d []string
	for _, m := range ms {
		d = append(d, m.Destination)
	}
	return d
}

func findMount(s *specs.Spec, dest string) *specs.Mount {
	for i := range s.Mounts {
		if s.Mounts[i].Destination == dest {
			return &s.Mounts[i]
		}
	}
	return nil
}

func nsTypes(s *specs.Spec) map[specs.LinuxNamespaceType]string {
	m := map[specs.LinuxNamespaceType]string{}
	for _, n := range s.Linux.Namespaces {
		m[n.Type] = n.Path
	}
	return m
}

func envMap(s *specs.Spec) map[string]string {
	m := map[string]string{}
	for _, kv := range s.Process.Env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

func TestDefaultSpec(t *testing.T) {
	s := gen(t, Input{})
	p := s.Process

	if !reflect.DeepEqual(DefaultCaps, runtime.DefaultCaps) {
		t.Errorf("DefaultCaps %v differ from the runtime's %v", DefaultCaps, runtime.DefaultCaps)
	}
	c := p.Capabilities
	for name, set := range map[string][]string{"bounding": c.Bounding, "effective": c.Effective, "permitted": c.Permitted} {
		if !reflect.DeepEqual(set, DefaultCaps) {
			t.Errorf("%s = %v, want docker's 14", name, set)
		}
	}
	if len(c.Inheritable) != 0 || len(c.Ambient) != 0 {
		t.Errorf("inheritable %v ambient %v, want none", c.Inheritable, c.Ambient)
	}

	wantMasked := []string{"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
		"/sys/firmware", "/sys/devices/virtual/powercap"}
	if !reflect.DeepEqual(s.Linux.MaskedPaths[:len(wantMasked)], wantMasked) {
		t.Errorf("masked paths %v", s.Linux.MaskedPaths)
	}
	for _, extra := range s.Linux.MaskedPaths[len(wantMasked):] {
		if !strings.HasSuffix(extra, "/thermal_throttle") {
			t.Errorf("unexpected masked path %s", extra)
		}
	}
	for _, rp := range runtime.DefaultSpec().Linux.MaskedPaths {
		if !slices.Contains(s.Linux.MaskedPaths, rp) {
			t.Errorf("%s is masked by the runtime's default spec but not here", rp)
		}
	}
	if want := []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}; !reflect.DeepEqual(s.Linux.ReadonlyPaths, want) {
		t.Errorf("readonly paths %v", s.Linux.ReadonlyPaths)
	}

	if want := []string{"/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm"}; !reflect.DeepEqual(dests(s.Mounts), want) {
		t.Errorf("mounts %v, want %v", dests(s.Mounts), want)
	}
	if m := findMount(s, "/dev/shm"); !reflect.DeepEqual(m.Options, []string{"nosuid", "noexec", "nodev", "mode=1777", "size=67108864"}) {
		t.Errorf("/dev/shm options %v", m.Options)
	}
	if m := findMount(s, "/dev/pts"); !slices.Contains(m.Options, "gid=5") || !slices.Contains(m.Options, "ptmxmode=0666") || !slices.Contains(m.Options, "newinstance") {
		t.Errorf("/dev/pts options %v", m.Options)
	}
	for _, d := range []string{"/sys", "/sys/fs/cgroup"} {
		if !slices.Contains(findMount(s, d).Options, "ro") {
			t.Errorf("%s is not read-only", d)
		}
	}

	if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != specs.ActErrno || len(s.Linux.Seccomp.Syscalls) == 0 {
		t.Fatalf("seccomp: %+v", s.Linux.Seccomp)
	}
	// The default profile allows the syscalls of the default capabilities only.
	allowed := map[string]bool{}
	for _, sc := range s.Linux.Seccomp.Syscalls {
		if sc.Action == specs.ActAllow && len(sc.Args) == 0 {
			for _, n := range sc.Names {
				allowed[n] = true
			}
		}
	}
	if !allowed["read"] || !allowed["execve"] || allowed["mount"] || allowed["kexec_load"] || allowed["init_module"] {
		t.Errorf("seccomp allows unexpected syscalls (read %v mount %v kexec_load %v)", allowed["read"], allowed["mount"], allowed["kexec_load"])
	}

	if want := map[specs.LinuxNamespaceType]string{specs.MountNamespace: "", specs.NetworkNamespace: "", specs.UTSNamespace: "",
		specs.PIDNamespace: "", specs.IPCNamespace: "", specs.CgroupNamespace: ""}; !reflect.DeepEqual(nsTypes(s), want) {
		t.Errorf("namespaces %v", s.Linux.Namespaces)
	}
	if s.Hostname != testID[:12] {
		t.Errorf("hostname %q", s.Hostname)
	}
	env := envMap(s)
	if env["PATH"] != DefaultPathEnv || env["HOSTNAME"] != testID[:12] || env["HOME"] != "/root" || len(env) != 3 {
		t.Errorf("env %v", p.Env)
	}
	if p.Cwd != "/" || !reflect.DeepEqual(p.Args, []string{"sh"}) || p.Terminal || p.NoNewPrivileges || p.ApparmorProfile != "" || p.SelinuxLabel != "" {
		t.Errorf("process %+v", p)
	}
	if p.OOMScoreAdj == nil || *p.OOMScoreAdj != 0 || len(p.Rlimits) != 0 {
		t.Errorf("oom %v rlimits %v", p.OOMScoreAdj, p.Rlimits)
	}
	if p.User.UID != 0 || p.User.GID != 0 || !reflect.DeepEqual(p.User.AdditionalGids, []uint32{0}) {
		t.Errorf("user %+v", p.User)
	}
	if s.Root.Readonly {
		t.Error("root is read-only by default")
	}
	rules := s.Linux.Resources.Devices
	if rules[0].Allow || rules[0].Access != "rwm" || rules[0].Type != "" {
		t.Errorf("the first device rule must deny everything: %+v", rules[0])
	}
	has := func(typ string, major, minor int64, access string) bool {
		for _, r := range rules {
			if r.Allow && r.Type == typ && r.Access == access && (major < 0 && r.Major == nil || r.Major != nil && *r.Major == major) &&
				(minor < 0 && r.Minor == nil || r.Minor != nil && *r.Minor == minor) {
				return true
			}
		}
		return false
	}
	for _, d := range [][2]int64{{1, 3}, {1, 5}, {1, 7}, {1, 8}, {1, 9}, {5, 0}, {5, 1}, {5, 2}, {136, -1}} {
		if !has("c", d[0], d[1], "rwm") {
			t.Errorf("c %d:%d is not allowed", d[0], d[1])
		}
	}
	if !has("c", -1, -1, "m") || !has("b", -1, -1, "m") {
		t.Error("mknod of c/b *:* is not allowed")
	}
	if len(s.Linux.Devices) != 0 || s.Linux.Resources.Memory != nil || s.Linux.Resources.CPU != nil || s.Linux.Resources.Pids != nil {
		t.Errorf("resources %+v devices %v", s.Linux.Resources, s.Linux.Devices)
	}
	if _, err := os.Stat("/proc/sys/net/ipv4/ip_unprivileged_port_start"); err == nil && s.Linux.Sysctl["net.ipv4.ip_unprivileged_port_start"] != "0" {
		t.Errorf("sysctls %v", s.Linux.Sysctl)
	}
}

func TestGenerateErrors(t *testing.T) {
	root := fakeRoot(t)
	tru := true
	for _, tc := range []struct {
		name string
		in   Input
		err  string
	}{
		{"no id", Input{Rootfs: root, Config: &container.Config{Cmd: []string{"x"}}}, "container id is empty"},
		{"no rootfs", Input{ID: "x", Config: &container.Config{Cmd: []string{"x"}}}, "rootfs path is empty"},
		{"no command", Input{ID: "x", Rootfs: root, Config: &container.Config{}}, "no command specified"},
		{"relative workdir", Input{ID: "x", Rootfs: root, Config: &container.Config{Cmd: []string{"x"}, WorkingDir: "app"}}, "the working directory 'app' is invalid, it needs to be an absolute path"},
		{"unknown user", Input{ID: "x", Rootfs: root, Config: &container.Config{Cmd: []string{"x"}, User: "nobody"}}, "unable to find user nobody: no matching entries in passwd file"},
		{"unknown group", Input{ID: "x", Rootfs: root, Config: &container.Config{Cmd: []string{"x"}, User: "app:wheel"}}, "unable to find group wheel"},
		{"unknown cap", Input{ID: "x", Rootfs: root, Config: &container.Config{Cmd: []string{"x"}}, Host: &container.HostConfig{CapAdd: []string{"FLY"}}}, `unknown capability: "CAP_FLY"`},
		{"bad secopt", Input{ID: "x", Rootfs: root, Config: &container.Config{Cmd: []string{"x"}}, Host: &container.HostConfig{SecurityOpt: []string{"foo=bar"}}}, `invalid --security-opt: "foo=bar"`},
		{"bad seccomp json", Input{ID: "x", Rootfs: root, Config: &container.Config{Cmd: []string{"x"}}, Host: &container.HostConfig{SecurityOpt: []string{"seccomp={nope"}}}, "invalid seccomp profile"},
		{"pid container without path", Input{ID: "x", Rootfs: root, Config: &container.Config{Cmd: []string{"x"}}, Host: &container.HostConfig{PidMode: "container:web"}}, "no pid namespace path"},
		{"bad pid mode", Input{ID: "x", Rootfs: root, Config: &container.Config{Cmd: []string{"x"}}, Host: &container.HostConfig{PidMode: "bogus"}}, "invalid PID mode: bogus"},
		{"init without binary", Input{ID: "x", Rootfs: root, Config: &container.Config{Cmd: []string{"x"}}, Host: &container.HostConfig{Init: &tru}}, "--init needs the berth-init binary"},
		{"dup mount", Input{ID: "x", Rootfs: root, Config: &container.Config{Cmd: []string{"x"}}, Host: &container.HostConfig{Tmpfs: map[string]string{"/data": ""}},
			Mounts: []specs.Mount{{Destination: "/data", Type: "bind", Source: "/tmp", Options: []string{"rbind"}}}}, "duplicate mount point: /data"},
		{"bad tmpfs", Input{ID: "x", Rootfs: root, Config: &container.Config{Cmd: []string{"x"}}, Host: &container.HostConfig{Tmpfs: map[string]string{"/t": "bogus"}}}, `invalid tmpfs option "bogus"`},
		{"net sysctl on host net", Input{ID: "x", Rootfs: root, Config: &container.Config{Cmd: []string{"x"}}, Host: &container.HostConfig{NetworkMode: "host", Sysctls: map[string]string{"net.ipv4.ip_forward": "1"}}}, "not allowed in the host network namespace"},
		{"swap below memory", Input{ID: "x", Rootfs: root, Config: &container.Config{Cmd: []string{"x"}}, Host: &container.HostConfig{Resources: container.Resources{Memory: 100 << 20, MemorySwap: 50 << 20}}}, "memoryswap limit should be larger"},
		{"missing device", Input{ID: "x", Rootfs: root, Config: &container.Config{Cmd: []string{"x"}}, Host: &container.HostConfig{Resources: container.Resources{Devices: []container.DeviceMapping{{PathOnHost: "/dev/nope", PathInContainer: "/dev/nope", CgroupPermissions: "rwm"}}}}}, `adding custom device "/dev/nope"`},
		{"bad cgroup rule", Input{ID: "x", Rootfs: root, Config: &container.Config{Cmd: []string{"x"}}, Host: &container.HostConfig{Resources: container.Resources{DeviceCgroupRules: []string{"c 1:3"}}}}, "invalid device cgroup rule"},
	} {
		_, err := Generate(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.err)
		}
	}
}

func TestCapabilities(t *testing.T) {
	all := AllCaps()
	if len(all) < 38 || !slices.Contains(all, "CAP_SYS_ADMIN") {
		t.Fatalf("AllCaps %v", all)
	}
	without := func(list []string, drop ...string) []string {
		return slices.DeleteFunc(slices.Clone(list), func(c string) bool { return slices.Contains(drop, c) })
	}
	for _, tc := range []struct {
		name      string
		add, drop []string
		priv      bool
		want      []string
	}{
		{"default", nil, nil, false, DefaultCaps},
		{"add", []string{"sys_admin", "CAP_NET_ADMIN"}, nil, false, append(slices.Clone(DefaultCaps), "CAP_SYS_ADMIN", "CAP_NET_ADMIN")},
		{"add existing", []string{"chown"}, nil, false, DefaultCaps},
		{"drop", nil, []string{"NET_RAW", "cap_mknod"}, false, without(DefaultCaps, "CAP_NET_RAW", "CAP_MKNOD")},
		{"drop all add one", []string{"NET_BIND_SERVICE"}, []string{"ALL"}, false, []string{"CAP_NET_BIND_SERVICE"}},
		{"drop all", nil, []string{"all"}, false, []string{}},
		{"add all drop one", []string{"ALL"}, []string{"SYS_ADMIN"}, false, without(all, "CAP_SYS_ADMIN")},
		{"privileged", nil, []string{"CHOWN"}, true, all},
	} {
		s := gen(t, Input{Host: &container.HostConfig{CapAdd: tc.add, CapDrop: tc.drop, Privileged: tc.priv}})
		c := s.Process.Capabilities
		if !reflect.DeepEqual(c.Bounding, tc.want) || !reflect.DeepEqual(c.Effective, tc.want) || !reflect.DeepEqual(c.Permitted, tc.want) {
			t.Errorf("%s: bounding %v effective %v permitted %v, want %v", tc.name, c.Bounding, c.Effective, c.Permitted, tc.want)
		}
	}
}

func TestPrivileged(t *testing.T) {
	s := gen(t, Input{Host: &container.HostConfig{Privileged: true}})
	if s.Linux.Seccomp != nil {
		t.Error("privileged: seccomp set")
	}
	if s.Linux.MaskedPaths != nil || s.Linux.ReadonlyPaths != nil {
		t.Errorf("privileged: masked %v readonly %v", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	for _, d := range []string{"/sys", "/sys/fs/cgroup"} {
		if slices.Contains(findMount(s, d).Options, "ro") {
			t.Errorf("privileged: %s is read-only", d)
		}
	}
	if r := s.Linux.Resources.Devices; len(r) != 1 || !r[0].Allow || r[0].Access != "rwm" {
		t.Errorf("privileged: device rules %+v", r)
	}
	var nullDev bool
	for _, d := range s.Linux.Devices {
		if d.Path == "/dev/null" && d.Type == "c" && d.Major == 1 && d.Minor == 3 {
			nullDev = true
		}
		if strings.HasPrefix(d.Path, "/dev/pts/") || d.Path == "/dev/console" {
			t.Errorf("privileged: host device %s passed", d.Path)
		}
	}
	if !nullDev {
		t.Errorf("privileged: the host's devices are missing: %v", s.Linux.Devices)
	}
	// a custom profile still applies, as docker
	s = gen(t, Input{Host: &container.HostConfig{Privileged: true, SecurityOpt: []string{`seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["kexec_load"],"action":"SCMP_ACT_ERRNO"}]}`}}})
	if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != specs.ActAllow {
		t.Errorf("privileged with a profile: %+v", s.Linux.Seccomp)
	}
}

func TestSecurityOpts(t *testing.T) {
	s := gen(t, Input{Host: &container.HostConfig{SecurityOpt: []string{"seccomp=unconfined", "no-new-privileges", "apparmor=my-profile", "label=disable"}}})
	if s.Linux.Seccomp != nil || !s.Process.NoNewPrivileges || s.Process.ApparmorProfile != "my-profile" || s.Process.SelinuxLabel != "" {
		t.Errorf("seccomp %v nnp %v apparmor %q", s.Linux.Seccomp, s.Process.NoNewPrivileges, s.Process.ApparmorProfile)
	}
	s = gen(t, Input{Host: &container.HostConfig{SecurityOpt: []string{"no-new-privileges=true", "no-new-privileges:false"}}})
	if s.Process.NoNewPrivileges {
		t.Error("the last no-new-privileges must win")
	}
	s = gen(t, Input{Host: &container.HostConfig{SecurityOpt: []string{`seccomp={"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read","write"],"action":"SCMP_ACT_ALLOW"}]}`}}})
	if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != specs.ActErrno || len(s.Linux.Seccomp.Syscalls) != 1 ||
		!reflect.DeepEqual(s.Linux.Seccomp.Syscalls[0].Names, []string{"read", "write"}) {
		t.Errorf("custom seccomp: %+v", s.Linux.Seccomp)
	}
	s = gen(t, Input{Host: &container.HostConfig{SecurityOpt: []string{"seccomp=builtin"}}})
	if s.Linux.Seccomp == nil || len(s.Linux.Seccomp.Syscalls) < 10 {
		t.Error("seccomp=builtin must give the default profile")
	}
	// the default profile follows the capabilities: CAP_SYS_ADMIN allows mount
	s = gen(t, Input{Host: &container.HostConfig{CapAdd: []string{"SYS_ADMIN"}}})
	allowsMount := false
	for _, sc := range s.Linux.Seccomp.Syscalls {
		if sc.Action == specs.ActAllow && slices.Contains(sc.Names, "mount") {
			allowsMount = true
		}
	}
	if !allowsMount {
		t.Error("with CAP_SYS_ADMIN the default profile must allow mount")
	}
	// systempaths=unconfined, as the CLI stores it
	s = gen(t, Input{Host: &container.HostConfig{MaskedPaths: []string{}, ReadonlyPaths: []string{}}})
	if len(s.Linux.MaskedPaths) != 0 || len(s.Linux.ReadonlyPaths) != 0 {
		t.Errorf("empty masked/readonly paths: %v %v", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	s = gen(t, Input{Host: &container.HostConfig{SecurityOpt: []string{"writable-cgroups=true"}}})
	if slices.Contains(findMount(s, "/sys/fs/cgroup").Options, "ro") {
		t.Error("writable-cgroups: cgroup mount read-only")
	}
}

func TestNamespaces(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   Input
		want map[specs.LinuxNamespaceType]string
		host string
	}{
		{"pid host", Input{Host: &container.HostConfig{PidMode: "host"}},
			map[specs.LinuxNamespaceType]string{"mount": "", "network": "", "uts": "", "ipc": "", "cgroup": ""}, testID[:12]},
		{"ipc host, uts host, cgroupns host", Input{Host: &container.HostConfig{IpcMode: "host", UTSMode: "host", CgroupnsMode: "host"}},
			map[specs.LinuxNamespaceType]string{"mount": "", "network": "", "pid": ""}, ""},
		{"net host", Input{Host: &container.HostConfig{NetworkMode: "host"}},
			map[specs.LinuxNamespaceType]string{"mount": "", "uts": "", "pid": "", "ipc": "", "cgroup": ""}, "HOST"},
		{"net path", Input{NetNSPath: "/run/netns/x", Host: &container.HostConfig{NetworkMode: "bridge"}},
			map[specs.LinuxNamespaceType]string{"mount": "", "network": "/run/netns/x", "uts": "", "pid": "", "ipc": "", "cgroup": ""}, testID[:12]},
		{"container modes", Input{
			NamespacePaths: map[specs.LinuxNamespaceType]string{"pid": "/proc/1/ns/pid", "ipc": "/proc/1/ns/ipc", "network": "/proc/1/ns/net"},
			Host:           &container.HostConfig{PidMode: "container:a", IpcMode: "container:a", NetworkMode: "container:a"}},
			map[specs.LinuxNamespaceType]string{"mount": "", "network": "/proc/1/ns/net", "uts": "", "pid": "/proc/1/ns/pid", "ipc": "/proc/1/ns/ipc", "cgroup": ""}, testID[:12]},
		{"ipc none, private, shareable", Input{Host: &container.HostConfig{IpcMode: "none"}},
			map[specs.LinuxNamespaceType]string{"mount": "", "network": "", "uts": "", "pid": "", "ipc": "", "cgroup": ""}, testID[:12]},
	} {
		s := gen(t, tc.in)
		if got := nsTypes(s); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: namespaces %v, want %v", tc.name, got, tc.want)
		}
		want := tc.host
		if want == "HOST" {
			want, _ = os.Hostname()
		}
		if s.Hostname != want {
			t.Errorf("%s: hostname %q, want %q", tc.name, s.Hostname, want)
		}
	}
	// ipc none: no /dev/shm; ipc host: the host's /dev/shm
	s := gen(t, Input{Host: &container.HostConfig{IpcMode: "none"}})
	if findMount(s, "/dev/shm") != nil {
		t.Error("ipc none: /dev/shm mounted")
	}
	s = gen(t, Input{Host: &container.HostConfig{IpcMode: "host"}})
	if m := findMount(s, "/dev/shm"); m == nil || m.Type != "bind" || m.Source != "/dev/shm" {
		t.Errorf("ipc host: /dev/shm %+v", m)
	}
	s = gen(t, Input{ShmPath: "/proc/1/root/dev/shm", NamespacePaths: map[specs.LinuxNamespaceType]string{"ipc": "/proc/1/ns/ipc"},
		Host: &container.HostConfig{IpcMode: "container:a"}})
	if m := findMount(s, "/dev/shm"); m == nil || m.Source != "/proc/1/root/dev/shm" {
		t.Errorf("ipc container: /dev/shm %+v", m)
	}
	// net host: no network sysctls
	s = gen(t, Input{Host: &container.HostConfig{NetworkMode: "host"}})
	for k := range s.Linux.Sysctl {
		if strings.HasPrefix(k, "net.") {
			t.Errorf("net host: sysctl %s", k)
		}
	}
}

func TestProcessOptions(t *testing.T) {
	tru, fls := true, false
	s := gen(t, Input{
		InitPath: "/usr/libexec/berth-init",
		Config: &container.Config{
			Entrypoint: []string{"/entry.sh", "-x"}, Cmd: []string{"run", "it"}, Tty: true, WorkingDir: "/app/",
			Hostname: "web", Domainname: "example.com",
			Env: []string{"PATH=/custom", "A=1", "HOME=/data", "UNSET_ME", "A=2"},
		},
		Host: &container.HostConfig{
			Init: &tru, ConsoleSize: [2]uint{24, 80}, OomScoreAdj: 500,
			Resources:   container.Resources{Ulimits: []*container.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}, {Name: "core", Soft: -1, Hard: -1}}},
			Sysctls:     map[string]string{"net.ipv4.ip_forward": "1", "kernel.shmmax": "1024"},
			Annotations: map[string]string{"a": "b"},
		},
	})
	p := s.Process
	if want := []string{"/sbin/docker-init", "--", "/entry.sh", "-x", "run", "it"}; !reflect.DeepEqual(p.Args, want) {
		t.Errorf("args %v", p.Args)
	}
	if m := findMount(s, "/sbin/docker-init"); m == nil || m.Source != "/usr/libexec/berth-init" || !reflect.DeepEqual(m.Options, []string{"bind", "ro"}) {
		t.Errorf("init mount %+v", m)
	}
	if !p.Terminal || p.ConsoleSize == nil || p.ConsoleSize.Height != 24 || p.ConsoleSize.Width != 80 || p.Cwd != "/app" {
		t.Errorf("terminal %v console %v cwd %q", p.Terminal, p.ConsoleSize, p.Cwd)
	}
	if want := []string{"PATH=/custom", "HOSTNAME=web", "TERM=xterm", "A=2", "HOME=/data"}; !reflect.DeepEqual(p.Env, want) {
		t.Errorf("env %q, want %q", p.Env, want)
	}
	if s.Hostname != "web" || s.Domainname != "example.com" {
		t.Errorf("hostname %q domainname %q", s.Hostname, s.Domainname)
	}
	if *p.OOMScoreAdj != 500 {
		t.Errorf("oom %d", *p.OOMScoreAdj)
	}
	if want := []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 2048}, {Type: "RLIMIT_CORE", Soft: ^uint64(0), Hard: ^uint64(0)}}; !reflect.DeepEqual(p.Rlimits, want) {
		t.Errorf("rlimits %v", p.Rlimits)
	}
	if s.Linux.Sysctl["net.ipv4.ip_forward"] != "1" || s.Linux.Sysctl["kernel.shmmax"] != "1024" {
		t.Errorf("sysctls %v", s.Linux.Sysctl)
	}
	if s.Annotations["a"] != "b" {
		t.Errorf("annotations %v", s.Annotations)
	}

	// --init is ignored in another PID namespace, as docker
	s = gen(t, Input{InitPath: "/x", Host: &container.HostConfig{Init: &tru, PidMode: "host"}})
	if s.Process.Args[0] != "sh" || findMount(s, InitPathInContainer) != nil {
		t.Errorf("init with pid host: %v", s.Process.Args)
	}
	s = gen(t, Input{Host: &container.HostConfig{Init: &fls}})
	if s.Process.Args[0] != "sh" {
		t.Errorf("init false: %v", s.Process.Args)
	}
}

func TestResources(t *testing.T) {
	pids, zero := int64(100), int64(0)
	swappiness := int64(10)
	s := gen(t, Input{CgroupsPath: "/berth/x", Host: &container.HostConfig{Resources: container.Resources{
		Memory: 256 << 20, MemoryReservation: 128 << 20, MemorySwappiness: &swappiness,
		NanoCPUs: 1_500_000_000, CPUShares: 512, CpusetCpus: "0-1", CpusetMems: "0",
		PidsLimit: &pids, BlkioWeight: 300,
	}}})
	r := s.Linux.Resources
	if *r.Memory.Limit != 256<<20 || *r.Memory.Swap != 512<<20 || *r.Memory.Reservation != 128<<20 || *r.Memory.Swappiness != 10 {
		t.Errorf("memory %+v", r.Memory)
	}
	if *r.CPU.Quota != 150000 || *r.CPU.Period != 100000 || *r.CPU.Shares != 512 || r.CPU.Cpus != "0-1" || r.CPU.Mems != "0" {
		t.Errorf("cpu %+v", r.CPU)
	}
	if *r.Pids.Limit != 100 || *r.BlockIO.Weight != 300 || s.Linux.CgroupsPath != "/berth/x" {
		t.Errorf("pids %v blkio %v cgroups path %q", r.Pids, r.BlockIO, s.Linux.CgroupsPath)
	}
	s = gen(t, Input{Host: &container.HostConfig{Resources: container.Resources{Memory: 1 << 30, MemorySwap: -1, PidsLimit: &zero}}})
	if s.Linux.Resources.Memory.Swap != nil || *s.Linux.Resources.Pids.Limit != -1 {
		t.Errorf("unlimited swap %v pids %v", s.Linux.Resources.Memory.Swap, *s.Linux.Resources.Pids.Limit)
	}
	s = gen(t, Input{Host: &container.HostConfig{Resources: container.Resources{
		BlkioDeviceReadBps: []*blkiodev.ThrottleDevice{{Path: "/dev/null", Rate: 1 << 20}}}}})
	if d := s.Linux.Resources.BlockIO.ThrottleReadBpsDevice; len(d) != 1 || d[0].Major != 1 || d[0].Minor != 3 || d[0].Rate != 1<<20 {
		t.Errorf("throttle %+v", d)
	}
}

func TestDevices(t *testing.T) {
	s := gen(t, Input{Host: &container.HostConfig{Resources: container.Resources{
		Devices:           []container.DeviceMapping{{PathOnHost: "/dev/null", PathInContainer: "/dev/mynull", CgroupPermissions: "rw"}},
		DeviceCgroupRules: []string{"c 42:* rmw", "b 8:0 r"},
	}}})
	d := s.Linux.Devices
	if len(d) != 1 || d[0].Path != "/dev/mynull" || d[0].Type != "c" || d[0].Major != 1 || d[0].Minor != 3 || d[0].FileMode == nil {
		t.Fatalf("devices %+v", d)
	}
	rules := s.Linux.Resources.Devices
	n := len(DefaultDeviceRules())
	if len(rules) != n+3 {
		t.Fatalf("rules %+v", rules)
	}
	if r := rules[n]; !r.Allow || r.Type != "c" || *r.Major != 1 || *r.Minor != 3 || r.Access != "rw" {
		t.Errorf("device rule %+v", r)
	}
	if r := rules[n+1]; !r.Allow || r.Type != "c" || *r.Major != 42 || r.Minor != nil || r.Access != "rmw" {
		t.Errorf("cgroup rule %+v", r)
	}
}

func TestMounts(t *testing.T) {
	dir := t.TempDir()
	s := gen(t, Input{
		Mounts: []specs.Mount{
			BindMount(mount.Mount{Type: mount.TypeBind, Source: "/srv/a", Target: "/data/sub", ReadOnly: true}, "/srv/a"),
			BindMount(mount.Mount{Type: mount.TypeVolume, Source: "vol", Target: "/data"}, "/var/lib/berth/volumes/vol/_data"),
		},
		HostnamePath: filepath.Join(dir, "hostname"), HostsPath: filepath.Join(dir, "hosts"), ResolvConfPath: filepath.Join(dir, "resolv.conf"),
		Host: &container.HostConfig{
			ShmSize: 1 << 20,
			Tmpfs:   map[string]string{"/run": "rw,size=64m,mode=1777,exec"},
			Mounts:  []mount.Mount{{Type: mount.TypeTmpfs, Target: "/cache", ReadOnly: true, TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 8 << 20}}},
		},
	})
	want := []string{"/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm",
		"/data", "/run", "/cache", "/data/sub", "/etc/resolv.conf", "/etc/hostname", "/etc/hosts"}
	if !reflect.DeepEqual(dests(s.Mounts), want) {
		t.Fatalf("mounts %v\nwant %v", dests(s.Mounts), want)
	}
	if m := findMount(s, "/dev/shm"); !slices.Contains(m.Options, "size=1048576") {
		t.Errorf("shm %v", m.Options)
	}
	if m := findMount(s, "/data/sub"); m.Type != "bind" || !reflect.DeepEqual(m.Options, []string{"rbind", "rro", "rprivate"}) {
		t.Errorf("bind %+v", m)
	}
	if m := findMount(s, "/data"); m.Source != "/var/lib/berth/volumes/vol/_data" || !reflect.DeepEqual(m.Options, []string{"rbind"}) {
		t.Errorf("volume %+v", m)
	}
	if m := findMount(s, "/run"); m.Type != "tmpfs" || !reflect.DeepEqual(m.Options, []string{"exec", "nosuid", "nodev", "rprivate", "rw", "size=64m", "mode=1777"}) {
		t.Errorf("tmpfs %+v", m)
	}
	if m := findMount(s, "/cache"); !reflect.DeepEqual(m.Options, []string{"noexec", "nosuid", "nodev", "rprivate", "ro", "size=8m"}) {
		t.Errorf("tmpfs mount %+v", m)
	}
	if m := findMount(s, "/etc/hosts"); m.Source != filepath.Join(dir, "hosts") || !reflect.DeepEqual(m.Options, []string{"rbind", "rprivate"}) {
		t.Errorf("hosts %+v", m)
	}

	// read-only root: /etc files read-only, default mounts but /proc and /dev ones read-only
	s = gen(t, Input{HostsPath: "/h", Host: &container.HostConfig{ReadonlyRootfs: true}})
	if !s.Root.Readonly || !slices.Contains(findMount(s, "/etc/hosts").Options, "ro") ||
		slices.Contains(findMount(s, "/dev/shm").Options, "ro") || slices.Contains(findMount(s, "/proc").Options, "ro") {
		t.Errorf("read-only root: %+v", s.Mounts)
	}
	// a /dev of the container's own replaces every /dev default; a user /etc/hosts wins
	s = gen(t, Input{HostsPath: "/h", Mounts: []specs.Mount{
		{Destination: "/dev", Type: "bind", Source: "/srv/dev", Options: []string{"rbind"}},
		{Destination: "/etc/hosts", Type: "bind", Source: "/srv/hosts", Options: []string{"rbind"}},
	}})
	if want := []string{"/proc", "/sys", "/sys/fs/cgroup", "/dev", "/etc/hosts"}; !reflect.DeepEqual(dests(s.Mounts), want) {
		t.Errorf("user /dev: %v", dests(s.Mounts))
	}
	if findMount(s, "/etc/hosts").Source != "/srv/hosts" {
		t.Error("the user's /etc/hosts must win")
	}
	// propagation: a shared bind makes the root shared
	s = gen(t, Input{Mounts: []specs.Mount{BindMount(mount.Mount{Type: mount.TypeBind, Source: "/srv", Target: "/srv",
		BindOptions: &mount.BindOptions{Propagation: mount.PropagationRShared, NonRecursive: true}}, "/srv")}})
	if m := findMount(s, "/srv"); !reflect.DeepEqual(m.Options, []string{"bind", "rshared"}) || s.Linux.RootfsPropagation != "shared" {
		t.Errorf("rshared: %+v root %q", m, s.Linux.RootfsPropagation)
	}
}

func TestUser(t *testing.T) {
	root := fakeRoot(t)
	for _, tc := range []struct {
		spec     string
		groupAdd []string
		uid, gid uint32
		gids     []uint32
		home     string
		err      string
	}{
		{spec: "", uid: 0, gid: 0, gids: []uint32{0}, home: "/root"},
		{spec: "app", uid: 1000, gid: 1000, gids: []uint32{1000, 29, 44}, home: "/home/app"},
		{spec: "1000", uid: 1000, gid: 1000, gids: []uint32{1000, 29, 44}, home: "/home/app"},
		{spec: "app:staff", uid: 1000, gid: 50, gids: []uint32{50}, home: "/home/app"},
		{spec: "1000:44", uid: 1000, gid: 44, gids: []uint32{44}, home: "/home/app"},
		{spec: "4242", uid: 4242, gid: 0, gids: []uint32{0}, home: "/"},
		{spec: "4242:4243", uid: 4242, gid: 4243, gids: []uint32{4243}, home: "/"},
		{spec: "daemon", groupAdd: []string{"staff", "777", "audio"}, uid: 1, gid: 1, gids: []uint32{1, 44, 29, 50, 777}, home: "/usr/sbin"},
		{spec: "nobody", err: "unable to find user nobody: no matching entries in passwd file"},
		{spec: "app:nogroup", err: "unable to find group nogroup"},
		{spec: "app", groupAdd: []string{"nogroup"}, err: "nogroup"},
	} {
		u, home, err := ResolveUser(root, tc.spec, tc.groupAdd)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: %v, want %q", tc.spec, err, tc.err)
			}
			continue
		}
		if err != nil || u.UID != tc.uid || u.GID != tc.gid || !reflect.DeepEqual(u.AdditionalGids, tc.gids) || home != tc.home {
			t.Errorf("%q %v: %+v home %q err %v; want %d:%d %v %s", tc.spec, tc.groupAdd, u, home, err, tc.uid, tc.gid, tc.gids, tc.home)
		}
	}

	// Generate uses it, and HOME follows the user
	s := gen(t, Input{Rootfs: root, Config: &container.Config{Cmd: []string{"id"}, User: "app"}})
	if s.Process.User.UID != 1000 || envMap(s)["HOME"] != "/home/app" {
		t.Errorf("generate user %+v env %v", s.Process.User, s.Process.Env)
	}

	// no /etc/passwd: numeric users work, names fail
	empty := t.TempDir()
	if u, _, err := ResolveUser(empty, "123:456", nil); err != nil || u.UID != 123 || u.GID != 456 {
		t.Errorf("no passwd, numeric: %+v %v", u, err)
	}
	if _, _, err := ResolveUser(empty, "app", nil); err == nil || !strings.Contains(err.Error(), "unable to find user app") {
		t.Errorf("no passwd, name: %v", err)
	}
}

// A symlinked /etc/passwd or /etc/group pointing outside the root must resolve inside it:
// the host's file (here a planted one with a user "evil") is never read.
func TestUserSymlinkEscape(t *testing.T) {
	outside := t.TempDir()
	write(t, filepath.Join(outside, "passwd"), "evil:x:4242:4242::/evil:/bin/sh\n")
	write(t, filepath.Join(outside, "group"), "evilgroup:x:4343:evil\n")
	for _, target := range []string{
		filepath.Join(outside, "passwd"),                    // absolute: resolves to <root>/<outside>/passwd
		"../../../../../../../../../" + outside + "/passwd", // relative with ..: clamped at the root
	} {
		root := t.TempDir()
		os.MkdirAll(filepath.Join(root, "etc"), 0o755)
		if err := os.Symlink(target, filepath.Join(root, "etc/passwd")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(strings.Replace(target, "passwd", "group", 1), filepath.Join(root, "etc/group")); err != nil {
			t.Fatal(err)
		}
		if u, _, err := ResolveUser(root, "evil", nil); err == nil || !strings.Contains(err.Error(), "unable to find user evil") {
			t.Errorf("symlink %s: the host's passwd was read: %+v %v", target, u, err)
		}
		if u, _, err := ResolveUser(root, "0:evilgroup", nil); err == nil {
			t.Errorf("symlink %s: the host's group was read: %+v", target, u)
		}
		// the link resolves inside the root: a file there is used
		inRoot := filepath.Join(root, outside)
		os.MkdirAll(inRoot, 0o755)
		write(t, filepath.Join(inRoot, "passwd"), "inside:x:7:7::/in:/bin/sh\n")
		if u, home, err := ResolveUser(root, "inside", nil); err != nil || u.UID != 7 || home != "/in" {
			t.Errorf("symlink %s: the in-root target was not used: %+v %v", target, u, err)
		}
	}
	// a /etc/passwd that is not a regular file is refused (a FIFO would block the reader)
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.Mkdir(filepath.Join(root, "etc/passwd"), 0o755)
	if _, _, err := ResolveUser(root, "x", nil); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("directory passwd: %v", err)
	}
}

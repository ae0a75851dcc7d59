package runtime_test

// The two container inits: the C plan interpreter (runtime/nsenter/plan.c, the default) and
// the Go init (runtime/initproc, for what the plan cannot express, or BERTH_GO_INIT=1). The
// same spec must give the same container either way.

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// probe prints what a container sees of its setup: identity, capabilities and confinement,
// limits, the mount table (without ids and device numbers), /dev, hostname, cwd and fds.
const probe = `id; umask; pwd; hostname; cat /proc/self/oom_score_adj
grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status
ulimit -n; ulimit -c
cut -d' ' -f4-6,9- /proc/self/mountinfo
ls -ln /dev | cut -c1-11,34-
cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax
ls /proc/self/fd | wc -l
echo x > /ro-test 2>/dev/null || echo read-only root`

func richSpec(e *env) {
	p := e.spec.Process
	p.Args = []string{"sh", "-c", probe}
	p.Cwd = "/tmp"
	p.User = specs.User{UID: 1000, GID: 1001, AdditionalGids: []uint32{5, 6}, Umask: func() *uint32 { u := uint32(0o027); return &u }()}
	p.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 512, Hard: 1024}, {Type: "RLIMIT_CORE", Soft: 0, Hard: 0}}
	adj := 345
	p.OOMScoreAdj = &adj
	p.NoNewPrivileges = true
	p.Capabilities = &specs.LinuxCapabilities{
		Bounding:  []string{"CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_KILL"},
		Effective: []string{"CAP_NET_BIND_SERVICE"}, Permitted: []string{"CAP_NET_BIND_SERVICE"},
		Inheritable: []string{"CAP_NET_BIND_SERVICE"}, Ambient: []string{"CAP_NET_BIND_SERVICE"},
	}
	e.spec.Hostname = "plan-probe"
	e.spec.Root.Readonly = true
	e.spec.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1", "kernel.shmmax": "123456789"}
	e.spec.Linux.MaskedPaths = append(e.spec.Linux.MaskedPaths, "/etc/passwd", "/no/such/path")
	e.spec.Linux.ReadonlyPaths = append(e.spec.Linux.ReadonlyPaths, "/tmp")
	e.spec.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"mknod"}, Action: specs.ActErrno}}}
	e.spec.Mounts = append(e.spec.Mounts,
		specs.Mount{Destination: "/mnt/bound", Type: "bind", Source: e.bundle, Options: []string{"rbind", "ro", "nosuid"}},
		specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m", "mode=1777"}})
}

func TestPlanAndGoInitAgree(t *testing.T) {
	for _, cgroupNS := range []bool{true, false} {
		t.Run(map[bool]string{true: "cgroup namespace", false: "host cgroup namespace"}[cgroupNS], func(t *testing.T) {
			planAndGoInitAgree(t, cgroupNS)
		})
	}
}

// planAndGoInitAgree runs the rich spec through both inits. Without a cgroup namespace the
// cgroup mounts bind the container's own cgroup directories (the plan knows them from the
// runtime's cgroup manager, the Go init reads /proc/self/cgroup): the mount table shows them.
func planAndGoInitAgree(t *testing.T, cgroupNS bool) {
	outputs := map[string]string{}
	for _, mode := range []string{"C", "Go"} {
		e := newEnv(t)
		richSpec(e)
		if !cgroupNS {
			var ns []specs.LinuxNamespace
			for _, n := range e.spec.Linux.Namespaces {
				if n.Type != specs.CgroupNamespace {
					ns = append(ns, n)
				}
			}
			e.spec.Linux.Namespaces = ns
			e.spec.Linux.CgroupsPath = "/berth/plan-probe-" + e.id() // a different place per run
		}
		t.Setenv("BERTH_GO_INIT", map[string]string{"C": "0", "Go": "1"}[mode])
		e.writeSpec()
		r := e.rt("--debug", "run", "--bundle", e.bundle, e.id())
		if r.code != 0 {
			t.Fatalf("%s init: exit %d\n%s%s", mode, r.code, r.stdout, r.stderr)
		}
		if want := "set up by the " + mode + " init"; !strings.Contains(r.stderr, want) {
			t.Errorf("%s: the runtime did not say %q: %s", mode, want, r.stderr)
		}
		out := strings.ReplaceAll(r.stdout, e.bundle, "BUNDLE")
		if !cgroupNS {
			if !strings.Contains(out, e.spec.Linux.CgroupsPath) {
				t.Errorf("%s init: no mount shows the container's cgroup %s:\n%s", mode, e.spec.Linux.CgroupsPath, out)
			}
			out = strings.ReplaceAll(out, e.spec.Linux.CgroupsPath, "CGROUP")
		}
		outputs[mode] = out
	}
	if outputs["C"] != outputs["Go"] {
		t.Errorf("the C and Go inits set up different containers:\n--- C:\n%s\n--- Go:\n%s", outputs["C"], outputs["Go"])
	}
	for _, want := range []string{"uid=1000 gid=1001 groups=5,6", "0027", "/tmp", "plan-probe", "345", "CapEff:\t0000000000000400",
		"CapBnd:\t0000000000000421", "CapAmb:\t0000000000000400", "NoNewPrivs:\t1", "Seccomp:\t2", "512", "123456789", "read-only root"} {
		if !strings.Contains(outputs["C"], want) {
			t.Errorf("C init output lacks %q:\n%s", want, outputs["C"])
		}
	}
}

// What the plan cannot express goes to the Go init, which still works.
func TestGoInitForTheRest(t *testing.T) {
	e := newEnv(t)
	e.spec.Process.Args = []string{"true"}
	e.spec.Hooks = &specs.Hooks{StartContainer: []specs.Hook{{Path: "/bin/true"}}}
	e.writeSpec()
	r := e.rt("--debug", "run", "--bundle", e.bundle, e.id())
	if r.code != 0 || !strings.Contains(r.stderr, "set up by the Go init (") {
		t.Errorf("exit %d: %s", r.code, r.stderr)
	}
}

// Errors reach `create` as one line from either init, and nothing is left behind (checkClean).
func TestInitErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		mut  func(*specs.Spec)
		want []string
	}{
		{"missing program", func(s *specs.Spec) { s.Process.Args = []string{"/no/such/program"} }, []string{`exec "/no/such/program"`, "no such file or directory"}},
		{"not in PATH", func(s *specs.Spec) { s.Process.Args = []string{"nosuchprogram"} }, []string{"executable file not found in $PATH"}},
		{"bad cwd", func(s *specs.Spec) { s.Process.Cwd = "/no/such/dir" }, []string{`chdir to cwd "/no/such/dir"`}},
		{"bad bind source", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "bind", Source: "/no/such/source", Options: []string{"bind"}})
		}, []string{"rootfs: mount bind on /x: open source", "no such file or directory"}},
		{"bad tmpfs option", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=lots"}})
		}, []string{"fsconfig", "size", "invalid argument", "Bad value for 'size'"}},
	} {
		for _, mode := range []string{"0", "1"} {
			t.Run(tc.name+"/BERTH_GO_INIT="+mode, func(t *testing.T) {
				t.Setenv("BERTH_GO_INIT", mode)
				e := newEnv(t)
				e.spec.Process.Args = []string{"true"}
				tc.mut(e.spec)
				e.writeSpec()
				r := e.rt("run", "--bundle", e.bundle, e.id())
				if r.code == 0 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
					t.Errorf("exit %d, want one error line: %q", r.code, r.stderr)
				}
				for _, w := range tc.want {
					if !strings.Contains(r.stderr, w) {
						t.Errorf("error %q lacks %q", r.stderr, w)
					}
				}
			})
		}
	}
}

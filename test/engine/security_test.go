package engine_test

// Secure defaults (DESIGN.md section 4): docker's capabilities, seccomp, masked and read-only
// paths, /dev/shm, per-container /etc files; and the options that change them.

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

// procStatus is one field of /proc/self/status of the test process (the host's root).
func procStatus(t *testing.T, field string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + field + `:\s*(\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no %s in /proc/self/status", field)
	}
	return string(m[1])
}

func TestSecureDefaults(t *testing.T) {
	t.Parallel()
	e := newBusyboxEnv(t)
	run := func(args ...string) result {
		t.Helper()
		return e.berth(append([]string{"run", "--rm"}, args...)...)
	}
	// want runs a shell snippet in a default container and wants its exact output.
	want := func(what, script, out string) {
		t.Helper()
		if r := run("busybox", "sh", "-c", script); r.Code != 0 || r.Out != out {
			t.Errorf("%s: `%s`: %s\nwant %q", what, script, r, out)
		}
	}
	// fails runs a shell snippet in a default container that must fail, for the reason given
	// (a part of the error message).
	fails := func(what, script, reason string) {
		t.Helper()
		if r := run("busybox", "sh", "-c", script); r.Code == 0 || !strings.Contains(r.Err, reason) {
			t.Errorf("%s: `%s` in a default container: %s\nwant a failure with %q", what, script, r, reason)
		}
	}
	want("docker's 14 default capabilities", "grep CapEff /proc/self/status", "CapEff:\t00000000a80425fb\n")
	want("bounding set", "grep CapBnd /proc/self/status", "CapBnd:\t00000000a80425fb\n")
	want("seccomp filter on", "grep Seccomp: /proc/self/status", "Seccomp:\t2\n")
	want("no_new_privs off by default", "grep NoNewPrivs /proc/self/status", "NoNewPrivs:\t0\n")
	for _, p := range []string{"/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug"} {
		if fileExists(p) { // masking a file the kernel does not have is moot
			want(p+" masked", "wc -c < "+p, "0\n")
		}
	}
	want("/sys/firmware masked", "ls -A /sys/firmware | wc -l", "0\n")
	fails("/proc/sys is read-only", "echo x > /proc/sys/kernel/domainname", "Read-only file system")
	if fileExists("/proc/sysrq-trigger") {
		fails("/proc/sysrq-trigger is read-only", "echo h > /proc/sysrq-trigger", "Read-only file system")
	}
	fails("mount", "mount -t tmpfs none /tmp", "permission denied")
	fails("unshare of a user namespace (seccomp)", "unshare -U true", "Operation not permitted")
	fails("unshare of a mount namespace", "unshare -m true", "Operation not permitted")
	fails("a raw host block device (device cgroup)", "mknod /tmp/blk b 8 0 && head -c1 /tmp/blk > /dev/null", "Operation not permitted")
	fails("no /dev/kmsg", "head -c1 /dev/kmsg", "No such file")
	want("the container's init is pid 1 in its own pid namespace", fmt.Sprintf("echo $$; test -d /proc/%d || echo isolated", os.Getpid()), "1\nisolated\n")
	want("/dev/shm is a 64M tmpfs", "df -k /dev/shm | tail -1 | awk '{print $2}'; grep ' /dev/shm ' /proc/mounts | awk '{print $3}'", "65536\ntmpfs\n")
	if r := run("--shm-size", "8m", "busybox", "sh", "-c", "df -k /dev/shm | tail -1 | awk '{print $2}'"); r.Out != "8192\n" {
		t.Errorf("--shm-size 8m: %s", r)
	}
	want("/etc/hosts has localhost", "grep -c localhost /etc/hosts", "2\n")
	want("only the default devices", "ls /dev | grep -vE '^(console|core|fd|full|mqueue|null|ptmx|pts|random|shm|stderr|stdin|stdout|tty|urandom|zero)$' | wc -l", "0\n")

	// /etc/hostname and the hostname are the short id.
	id := e.mustID("run", "-d", "--name", "hn", "busybox", "sleep", "1000")
	if got := e.exec("hn", "sh", "-c", "cat /etc/hostname; hostname"); got != id[:12]+"\n"+id[:12]+"\n" {
		t.Errorf("/etc/hostname and hostname: %q, want the short id %s", got, id[:12])
	}
	if r := run("--hostname", "myhost", "busybox", "sh", "-c", "cat /etc/hostname; hostname"); r.Out != "myhost\nmyhost\n" {
		t.Errorf("--hostname: %s", r)
	}
}

func TestSecurityOptions(t *testing.T) {
	t.Parallel()
	e := newBusyboxEnv(t)
	run := func(args ...string) result {
		t.Helper()
		return e.berth(append([]string{"run", "--rm"}, args...)...)
	}
	hostCaps := procStatus(t, "CapEff")
	for _, c := range []struct {
		what string
		args []string
		want string
	}{
		{"--privileged: every capability", []string{"--privileged", "busybox", "sh", "-c", "grep CapEff /proc/self/status"}, "CapEff:\t" + hostCaps + "\n"},
		{"--privileged: no seccomp", []string{"--privileged", "busybox", "sh", "-c", "grep Seccomp: /proc/self/status"}, "Seccomp:\t0\n"},
		{"--privileged: mount works", []string{"--privileged", "busybox", "sh", "-c", "mount -t tmpfs none /tmp && echo ok"}, "ok\n"},
		{"--privileged: nothing masked", []string{"--privileged", "busybox", "sh", "-c", "grep -c -E ' /proc/(keys|timer_list) ' /proc/mounts || true"}, "0\n"},
		{"--privileged: host devices", []string{"--privileged", "busybox", "sh", "-c", "test -c /dev/kmsg && echo ok"}, "ok\n"},
		{"--cap-add SYS_ADMIN", []string{"--cap-add", "SYS_ADMIN", "busybox", "sh", "-c", "grep CapEff /proc/self/status; mount -t tmpfs none /tmp && echo mounted"}, "CapEff:\t00000000a82425fb\nmounted\n"},
		{"--cap-add CAP_SYS_TIME", []string{"--cap-add", "CAP_SYS_TIME", "busybox", "sh", "-c", "grep CapEff /proc/self/status"}, "CapEff:\t00000000aa0425fb\n"},
		{"--cap-drop CHOWN", []string{"--cap-drop", "CHOWN", "busybox", "sh", "-c", "grep CapEff /proc/self/status; chown nobody /tmp || echo denied"}, "CapEff:\t00000000a80425fa\ndenied\n"},
		{"--cap-drop ALL --cap-add NET_RAW", []string{"--cap-drop", "ALL", "--cap-add", "NET_RAW", "busybox", "sh", "-c", "grep CapEff /proc/self/status"}, "CapEff:\t0000000000002000\n"},
		{"--cap-add ALL", []string{"--cap-add", "ALL", "busybox", "sh", "-c", "grep CapEff /proc/self/status"}, "CapEff:\t" + hostCaps + "\n"},
		{"--security-opt no-new-privileges", []string{"--security-opt", "no-new-privileges", "busybox", "sh", "-c", "grep NoNewPrivs /proc/self/status"}, "NoNewPrivs:\t1\n"},
		{"--security-opt no-new-privileges:true", []string{"--security-opt", "no-new-privileges:true", "busybox", "sh", "-c", "grep NoNewPrivs /proc/self/status"}, "NoNewPrivs:\t1\n"},
		{"--security-opt seccomp=unconfined", []string{"--security-opt", "seccomp=unconfined", "busybox", "sh", "-c", "grep Seccomp: /proc/self/status"}, "Seccomp:\t0\n"},
		{"--read-only: / is read-only", []string{"--read-only", "busybox", "sh", "-c", "touch /x 2>/dev/null || echo ro; touch /tmp/x 2>/dev/null || echo ro-tmp; touch /dev/shm/x && echo shm-rw"}, "ro\nro-tmp\nshm-rw\n"},
		{"--read-only --tmpfs /tmp", []string{"--read-only", "--tmpfs", "/tmp", "busybox", "sh", "-c", "touch /tmp/x && echo ok"}, "ok\n"},
		{"--user-less default: root", []string{"busybox", "id", "-u"}, "0\n"},
	} {
		if r := run(c.args...); r.Code != 0 || r.Out != c.want {
			t.Errorf("%s: run --rm %s: %s\nwant %q", c.what, strings.Join(c.args, " "), r, c.want)
		}
	}
	for _, bad := range [][]string{
		{"--cap-add", "NOT_A_CAP"},
		{"--security-opt", "bogus=1"},
		{"--security-opt", "seccomp=/nonexistent/profile.json"},
	} {
		r := run(append(bad, "busybox", "true")...)
		if r.Code != 125 {
			t.Errorf("run %s: %s\nwant exit 125", strings.Join(bad, " "), r)
		}
		oneLine(t, "run "+strings.Join(bad, " "), r)
	}
	if got := e.must("ps", "-a", "-q"); got != "" {
		t.Errorf("failed runs left containers: %q", got)
	}
}

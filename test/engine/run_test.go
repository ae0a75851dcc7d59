package engine_test

// `berth run`'s own behaviour: stdio, exit codes, signal forwarding, attach, and the options
// that shape the container (resources, namespaces, /etc files, logging).

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRunForeground(t *testing.T) {
	t.Parallel()
	e := newBusyboxEnv(t)
	if r := e.berth("run", "busybox", "sh", "-c", "echo out; echo err >&2; exit 7"); r.Code != 7 || r.Out != "out\n" || r.Err != "err\n" {
		t.Errorf("run: %s\nwant exit 7, stdout out, stderr err", r)
	}
	if r := e.berthIn(strings.NewReader("piped in\n"), time.Minute, "run", "--rm", "-i", "busybox", "cat"); r.Code != 0 || r.Out != "piped in\n" {
		t.Errorf("run -i with stdin: %s", r)
	}
	if r := e.berthIn(strings.NewReader("piped in\n"), time.Minute, "run", "--rm", "busybox", "cat"); r.Code != 0 || r.Out != "" {
		t.Errorf("run without -i must not pass stdin: %s", r)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB through stdin and back
	if r := e.berthIn(bytes.NewReader(big), time.Minute, "run", "--rm", "-i", "busybox", "cat"); r.Code != 0 || r.Out != string(big) {
		t.Errorf("run -i cat of 1 MiB: exit %d, %d bytes back, stderr %q", r.Code, len(r.Out), r.Err)
	}

	// Signals to the foreground CLI reach the container (--sig-proxy, docker's default).
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		name := "sig" + strconv.Itoa(int(sig))
		cli := e.start(nil, "run", "--name", name, "busybox", "sh", "-c", fmt.Sprintf("trap 'echo got %d; exit 3' %d; echo ready; while :; do sleep 0.1; done", sig, sig))
		waitFor(t, 10*time.Second, name+" to be ready", func() bool { return strings.Contains(cli.out.String(), "ready") })
		cli.cmd.Process.Signal(sig)
		if code := cli.wait(t, 10*time.Second); code != 3 || !strings.Contains(cli.out.String(), fmt.Sprintf("got %d", sig)) {
			t.Errorf("%v to a foreground run: exit %d, stdout %q; want the container to get it and exit 3", sig, code, cli.out.String())
		}
		if d := e.inspect(name); d.State.Status != "exited" || d.State.ExitCode != 3 {
			t.Errorf("%s after %v: %s %d", name, sig, d.State.Status, d.State.ExitCode)
		}
	}

	// --cidfile
	cid := filepath.Join(e.dir, "cid")
	id := e.mustID("run", "-d", "--cidfile", cid, "busybox", "true")
	if b, err := os.ReadFile(cid); err != nil || string(b) != id {
		t.Errorf("--cidfile holds %q (%v), want %s", b, err, id)
	}
	if r := e.berth("run", "-d", "--cidfile", cid, "busybox", "true"); r.Code != 125 {
		t.Errorf("run with an existing --cidfile: %s\nwant 125", r)
	}

	// --init: the command is not pid 1, and zombies are reaped.
	if r := e.berth("run", "--rm", "--init", "busybox", "sh", "-c", "echo $$"); r.Code != 0 || r.Out == "1\n" || r.Out == "" {
		t.Errorf("run --init: the command's pid is %q, want an init above it", r.Out)
	}
	if r := e.berth("run", "--rm", "--init", "busybox", "sh", "-c", "exit 9"); r.Code != 9 {
		t.Errorf("run --init passes the exit code: %s", r)
	}
	// -w creates a missing working directory, as docker does.
	if r := e.berth("run", "--rm", "-w", "/new/dir", "busybox", "pwd"); r.Code != 0 || r.Out != "/new/dir\n" {
		t.Errorf("run -w /new/dir: %s", r)
	}
	// --entrypoint with args, -e from the host, --env-file.
	envFile := filepath.Join(e.dir, "env")
	os.WriteFile(envFile, []byte("# a comment\nA=1\nC=two words\n\n"), 0o644)
	c := e.cmd(t.Context(), "run", "--rm", "--env-file", envFile, "-e", "FROMHOST", "busybox", "sh", "-c", "echo $A/$C/$FROMHOST")
	c.Env = append(c.Env, "FROMHOST=hostvalue")
	if out, err := c.Output(); err != nil || string(out) != "1/two words/hostvalue\n" {
		t.Errorf("--env-file and -e VAR: %q %v", out, err)
	}
}

func TestAttach(t *testing.T) {
	t.Parallel()
	e := newBusyboxEnv(t)
	e.mustID("run", "-d", "--name", "ticker", "busybox", "sh", "-c", "while :; do echo tick; sleep 0.1; done")
	att := e.start(nil, "attach", "ticker")
	waitFor(t, 10*time.Second, "attach to show output", func() bool { return strings.Count(att.out.String(), "tick") >= 3 })
	e.must("kill", "ticker")
	if code := att.wait(t, 10*time.Second); code != 137 {
		t.Errorf("attach exited %d when the container was killed, want 137", code)
	}

	// stdin of a -i container through attach.
	e.mustID("run", "-d", "-i", "--name", "cat", "busybox", "cat")
	pr, pw := io.Pipe()
	att = e.start(pr, "attach", "cat")
	time.Sleep(300 * time.Millisecond)
	pw.Write([]byte("hello through attach\n"))
	waitFor(t, 10*time.Second, "the echo of attach's stdin", func() bool { return strings.Contains(att.out.String(), "hello through attach") })
	pw.Close()
	if code := att.wait(t, 10*time.Second); code != 0 {
		t.Errorf("attach exited %d after stdin closed, want 0 (cat ends)", code)
	}
	e.waitExited("cat", 10*time.Second)
	if r := e.berth("attach", "cat"); r.Code == 0 {
		t.Errorf("attach to a stopped container: %s\nwant a failure", r)
	}
	// -it with a detached start, then logs.
	e.mustID("run", "-d", "-t", "--name", "tty", "busybox", "sh", "-c", "test -t 1 && echo is-a-tty")
	e.waitExited("tty", 10*time.Second)
	if l := e.logs("tty"); l != "is-a-tty\r\n" {
		t.Errorf("logs of a -t container: %q, want \"is-a-tty\\r\\n\"", l)
	}
}

func TestRunOptions(t *testing.T) {
	t.Parallel()
	e := newBusyboxEnv(t)
	id := e.mustID("run", "-d", "--name", "opts",
		"-m", "64m", "--memory-reservation", "32m", "--pids-limit", "10", "--cpus", "0.5", "--cpu-shares", "512", "--cpuset-cpus", "0",
		"--ulimit", "nofile=100:200", "--oom-score-adj", "500", "--sysctl", "kernel.msgmax=12345",
		"--device", "/dev/zero:/dev/myzero", "--add-host", "myhost:192.0.2.7", "--dns", "192.0.2.53", "--dns-search", "example.com",
		"--group-add", "1234", "-l", "x=y", "busybox", "sleep", "1000")
	for _, c := range []struct{ ctrl, file, want string }{
		{"memory", "memory.limit_in_bytes", strconv.Itoa(64 << 20)},
		{"memory", "memory.soft_limit_in_bytes", strconv.Itoa(32 << 20)},
		{"pids", "pids.max", "10"},
		{"cpu", "cpu.cfs_quota_us", "50000"},
		{"cpu", "cpu.cfs_period_us", "100000"},
		{"cpu", "cpu.shares", "512"},
		{"cpuset", "cpuset.cpus", "0"},
	} {
		if got := cgroupFile(t, id, c.ctrl, c.file); got != c.want {
			t.Errorf("%s/%s = %q, want %q", c.ctrl, c.file, got, c.want)
		}
	}
	for _, c := range []struct{ script, want string }{
		{"ulimit -n; ulimit -Hn", "100\n200\n"},
		{"cat /proc/1/oom_score_adj", "500\n"},
		{"cat /proc/sys/kernel/msgmax", "12345\n"},
		{"head -c 3 /dev/myzero | wc -c", "3\n"},
		{"grep myhost /etc/hosts", "192.0.2.7\tmyhost\n"},
		{"grep -E '^(nameserver|search)' /etc/resolv.conf", "nameserver 192.0.2.53\nsearch example.com\n"},
		{"id -G", "0 1234\n"},
		{"ls /sys/class/net", "eth0\nlo\n"}, // the default network is bridge (docker's)
	} {
		if r := e.berth("exec", "opts", "sh", "-c", c.script); r.Code != 0 || r.Out != c.want {
			t.Errorf("exec `%s`: %s\nwant %q", c.script, r, c.want)
		}
	}
	// Namespaces shared with the host or another container.
	host, _ := os.Hostname()
	if r := e.berth("run", "--rm", "--network", "host", "busybox", "hostname"); r.Out != host+"\n" {
		t.Errorf("--network host: hostname %s, want the host's %q", r, host)
	}
	hostInit, _ := os.ReadFile("/proc/1/cmdline")
	if r := e.berth("run", "--rm", "--pid", "host", "busybox", "cat", "/proc/1/cmdline"); r.Out != string(hostInit) {
		t.Errorf("--pid host: /proc/1/cmdline %q, want the host's %q", r.Out, hostInit)
	}
	if r := e.berth("run", "--rm", "--pid", "container:opts", "busybox", "ps", "-o", "args"); !strings.Contains(r.Out, "sleep 1000") {
		t.Errorf("--pid container:opts does not see its processes: %s", r)
	}
	if r := e.berth("run", "--rm", "--uts", "host", "busybox", "hostname"); r.Out != host+"\n" {
		t.Errorf("--uts host: %s", r)
	}
	if r := e.berth("run", "--rm", "--pid", "container:nosuch", "busybox", "true"); r.Code != 125 {
		t.Errorf("--pid container:nosuch: %s\nwant 125", r)
	}
}

func TestLogRotation(t *testing.T) {
	t.Parallel()
	e := newBusyboxEnv(t)
	id := e.mustID("run", "-d", "--name", "chatty", "--log-opt", "max-size=2k", "--log-opt", "max-file=2", "busybox", "sh", "-c",
		"for i in $(seq 1 300); do echo line$i-padding-padding-padding; done")
	e.waitExited("chatty", 20*time.Second)
	files, _ := filepath.Glob(filepath.Join(e.root, "containers", id, id+"-json.log*"))
	if len(files) == 0 || len(files) > 2 {
		t.Errorf("log files with max-file=2: %v", files)
	}
	for _, f := range files {
		if st, err := os.Stat(f); err == nil && st.Size() > 2048+200 {
			t.Errorf("%s is %d bytes, beyond max-size=2k", f, st.Size())
		}
	}
	l := lines(e.logs("chatty"))
	if len(l) == 0 || l[len(l)-1] != "line300-padding-padding-padding" || slices.Contains(l, "line1-padding-padding-padding") {
		t.Errorf("logs after rotation: %d lines, last %q", len(l), l[len(l)-1:])
	}
	// The json-file format, docker's.
	b, _ := os.ReadFile(filepath.Join(e.root, "containers", id, id+"-json.log"))
	first := strings.SplitN(string(b), "\n", 2)[0]
	if !strings.HasPrefix(first, `{"log":"line`) || !strings.Contains(first, `\n","stream":"stdout","time":"`) {
		t.Errorf("a json-file line: %q", first)
	}
	// --log-driver none: no log, and logs says so.
	e.mustID("run", "-d", "--name", "silent", "--log-driver", "none", "busybox", "echo", "x")
	e.waitExited("silent", 10*time.Second)
	if r := e.berth("logs", "silent"); r.Code == 0 {
		t.Errorf("logs with --log-driver none: %s\nwant a failure", r)
	}
}

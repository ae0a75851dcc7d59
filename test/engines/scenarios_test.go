package engines_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// engine is one started container engine: its CLI and the arguments that point it at this
// test's daemon or storage. docker and podman take the same commands for everything here.
type engine struct {
	name     string
	bin      string   // the CLI
	dir      string   // the engine's temp dir: commands run there; dir/share/f for bind mounts
	global   []string // global flags, before the subcommand
	env      []string // extra environment for the CLI
	runArgs  []string // flag/value pairs every `run` gets (network, cgroup parent, ...)
	rmForce  []string // removes a running container at once (podman's rm -f waits 10s for SIGTERM unless -t 0)
	cgParent string   // the cgroup every container of this engine is created under
	cgKeep   []string // the engine's own cgroups under cgParent (podman's conmon)
	// exit code of `run` when the OCI runtime's create fails (docker 125, podman 126)
	createFailCode int
}

// rm force-removes containers, ignoring errors (for cleanups).
func (e *engine) rm(rt runtimeSel, names ...string) result {
	return e.cli(rt, "", slices.Concat(e.rmForce, names)...)
}

// runtimeSel picks the OCI runtime: docker takes --runtime NAME on run (the daemon knows the
// path), podman takes --runtime PATH as a global flag on every command.
type runtimeSel struct {
	name   string
	global []string
	run    []string
}

// cli runs one engine command.
func (e *engine) cli(rt runtimeSel, stdin string, args ...string) result {
	full := slices.Concat(e.global, rt.global, args)
	// In the engine's temp dir: conmon writes its "oom" marker file into its working
	// directory, which it inherits from podman.
	return run(120*time.Second, e.dir, e.env, stdin, e.bin, full...)
}

// runCtr is `run` with the runtime and the engine's run flags, then flags (options, image and
// command).
func (e *engine) runCtr(rt runtimeSel, stdin string, flags ...string) result {
	// e.runArgs are flag/value pairs; one that flags sets itself gives way.
	var defaults []string
	for i := 0; i+1 < len(e.runArgs); i += 2 {
		if !slices.Contains(flags, e.runArgs[i]) {
			defaults = append(defaults, e.runArgs[i], e.runArgs[i+1])
		}
	}
	return e.cli(rt, stdin, slices.Concat([]string{"run"}, rt.run, defaults, flags)...)
}

// must runs an engine command and fails the test unless it exits 0; it returns stdout.
func (e *engine) must(t *testing.T, rt runtimeSel, args ...string) string {
	t.Helper()
	r := e.cli(rt, "", args...)
	if r.code != 0 {
		t.Fatalf("%s %s: %v", e.name, strings.Join(args, " "), r)
	}
	return r.out
}

// detached starts a `run -d` container named name and registers its forced removal.
func (e *engine) detached(t *testing.T, rt runtimeSel, name string, flags ...string) {
	t.Helper()
	t.Cleanup(func() { e.rm(rt, name) })
	r := e.runCtr(rt, "", slices.Concat([]string{"-d", "--name", name}, flags)...)
	if r.code != 0 {
		t.Fatalf("%s run -d %v: %v", e.name, flags, r)
	}
}

// status returns the container's state as the engine reports it (running, paused, exited).
func (e *engine) status(rt runtimeSel, name string) string {
	return strings.TrimSpace(e.cli(rt, "", "inspect", "-f", "{{.State.Status}}", name).out)
}

// waitReady waits until the file the container's command touches once its signal trap is set
// exists: a signal sent before that would be lost (pid 1 ignores signals it has no handler for).
func (e *engine) waitReady(t *testing.T, rt runtimeSel, name, file string) {
	t.Helper()
	var last result
	if !waitFor(20*time.Second, func() bool {
		last = e.cli(rt, "", "exec", name, "test", "-e", file)
		return last.code == 0
	}) {
		t.Fatalf("container %s never got ready (%s): last exec: %v", name, file, last)
	}
}

type scenario struct {
	name string
	fn   func(t *testing.T, e *engine, rt runtimeSel, name string)
	only string // run only with this engine (a feature the other lacks)
}

// scenarios run in order for each runtime; each gets a container name unique in the engine.
var scenarios = []scenario{
	{"output", scenarioOutput, ""},
	{"user-workdir", scenarioUserWorkdir, ""},
	{"tty", scenarioTTY, ""},
	{"stdin", scenarioStdin, ""},
	{"exec", scenarioExec, ""},
	{"limits", scenarioLimits, ""},
	{"stop-term", scenarioStopTerm, ""},
	{"stop-kill-rm", scenarioStopKillRm, ""},
	{"kill-signal", scenarioKillSignal, ""},
	{"exit-code", scenarioExitCode, ""},
	{"bad-command", scenarioBadCommand, ""},
	{"init-error", scenarioInitError, ""},
	{"pause", scenarioPause, ""},
	{"join-namespaces", scenarioJoinNamespaces, ""},
	{"mounts", scenarioMounts, ""},
	{"tmpfs", scenarioTmpfs, ""},
	{"top-restart", scenarioTopRestart, ""},
	{"oom", scenarioOOM, ""},
	{"update", scenarioUpdate, "docker"}, // podman 4.3 has no update
	{"userns", scenarioUserns, "podman"}, // docker maps users only daemon-wide
}

// runScenarios runs every scenario with the reference runtime and with berth as subtests
// <runtime>/<scenario>: a scenario that passes with the reference but fails with berth is a
// berth bug.
func runScenarios(t *testing.T, e *engine, runtimes ...runtimeSel) {
	for _, rt := range runtimes {
		t.Run(rt.name, func(t *testing.T) {
			for _, s := range scenarios {
				if s.only != "" && s.only != e.name {
					continue
				}
				t.Run(s.name, func(t *testing.T) {
					name := fmt.Sprintf("be-%s-%s", rt.name, s.name)
					// after the scenario's own cleanups have removed its containers
					t.Cleanup(func() {
						e.rm(rt, name)
						checkNoCgroupsLeft(t, e.cgParent, e.cgKeep...)
					})
					s.fn(t, e, rt, name)
				})
			}
		})
	}
}

// want fails the test unless r exited with code.
func want(t *testing.T, what string, r result, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("%s: want exit %d, got %v", what, code, r)
	}
}

// (1) a command whose output is checked: pid 1, its command line, hostname, environment.
func scenarioOutput(t *testing.T, e *engine, rt runtimeSel, _ string) {
	script := `echo "$GREETING"; echo pid=$$; tr '\0' ' ' < /proc/1/cmdline; echo; hostname`
	r := e.runCtr(rt, "", "--rm", "--hostname", "berth-h", "-e", "GREETING=hello", image, "sh", "-c", script)
	want(t, "run", r, 0)
	got := lines(r.out)
	if len(got) != 4 || got[0] != "hello" || got[1] != "pid=1" || got[2] != "sh -c "+script || got[3] != "berth-h" {
		t.Fatalf("want hello / pid=1 / sh -c %s / berth-h, got %q (stderr %q)", script, got, r.err)
	}
}

// user and working directory from the run options.
func scenarioUserWorkdir(t *testing.T, e *engine, rt runtimeSel, _ string) {
	r := e.runCtr(rt, "", "--rm", "-u", "1000:1000", "-w", "/tmp", image, "sh", "-c", "id -u; id -g; pwd")
	want(t, "run -u -w", r, 0)
	if got := lines(r.out); !slices.Equal(got, []string{"1000", "1000", "/tmp"}) {
		t.Fatalf("want 1000 / 1000 / /tmp, got %q (stderr %q)", got, r.err)
	}
}

// (2) -t: the container's stdio is a pseudo-terminal, though the CLI's own stdin is not one.
func scenarioTTY(t *testing.T, e *engine, rt runtimeSel, _ string) {
	r := e.runCtr(rt, "", "--rm", "-t", image, "sh", "-c", "tty; test -t 0 && echo stdin-tty; test -t 1 && echo stdout-tty")
	want(t, "run -t", r, 0)
	got := lines(r.out)
	if len(got) != 3 || !strings.HasPrefix(got[0], "/dev/pts/") || got[1] != "stdin-tty" || got[2] != "stdout-tty" {
		t.Fatalf("want /dev/pts/N / stdin-tty / stdout-tty, got %q (stderr %q)", got, r.err)
	}
}

// -i: the CLI's stdin reaches the container and its end closes the container's stdin.
func scenarioStdin(t *testing.T, e *engine, rt runtimeSel, _ string) {
	r := e.runCtr(rt, "piped-in\n", "--rm", "-i", image, "sh", "-c", "cat; echo end")
	want(t, "run -i", r, 0)
	if got := lines(r.out); !slices.Equal(got, []string{"piped-in", "end"}) {
		t.Fatalf("want piped-in / end, got %q (stderr %q)", got, r.err)
	}
}

// (3) exec into a running detached container: output, environment, working directory, user,
// exit code, tty, stdin; then remove it.
func scenarioExec(t *testing.T, e *engine, rt runtimeSel, name string) {
	e.detached(t, rt, name, image, "sleep", "1000")

	r := e.cli(rt, "", "exec", name, "sh", "-c", `echo exec-ok; tr '\0' ' ' < /proc/1/cmdline`)
	want(t, "exec", r, 0)
	if got := lines(r.out); !slices.Equal(got, []string{"exec-ok", "sleep 1000"}) {
		t.Fatalf("exec: want exec-ok / sleep 1000 (the container's pid 1), got %q (stderr %q)", got, r.err)
	}
	r = e.cli(rt, "", "exec", "-e", "FOO=bar", "-w", "/tmp", name, "sh", "-c", `echo "$FOO" "$(pwd)"`)
	want(t, "exec -e -w", r, 0)
	if got := norm(r.out); got != "bar /tmp" {
		t.Fatalf("exec -e -w: want %q, got %q (stderr %q)", "bar /tmp", got, r.err)
	}
	r = e.cli(rt, "", "exec", "-u", "1000", name, "id", "-u")
	want(t, "exec -u", r, 0)
	if got := norm(r.out); got != "1000" {
		t.Fatalf("exec -u 1000: want 1000, got %q (stderr %q)", got, r.err)
	}
	want(t, "exec sh -c 'exit 5'", e.cli(rt, "", "exec", name, "sh", "-c", "exit 5"), 5)
	r = e.cli(rt, "", "exec", "-t", name, "tty")
	want(t, "exec -t", r, 0)
	if got := norm(r.out); !strings.HasPrefix(got, "/dev/pts/") {
		t.Fatalf("exec -t tty: want /dev/pts/N, got %q (stderr %q)", got, r.err)
	}
	r = e.cli(rt, "via-stdin\n", "exec", "-i", name, "cat")
	want(t, "exec -i", r, 0)
	if got := norm(r.out); got != "via-stdin" {
		t.Fatalf("exec -i cat: want via-stdin, got %q (stderr %q)", got, r.err)
	}
	if st := e.status(rt, name); st != "running" {
		t.Fatalf("after the execs the container is %q, want running", st)
	}
	if r := e.rm(rt, name); r.code != 0 {
		t.Fatalf("rm -f: %v", r)
	}
	if r := e.cli(rt, "", "inspect", name); r.code == 0 {
		t.Fatalf("container still there after rm -f")
	}
}

// (4) resource limits as the container sees them in its cgroup (v1 paths, else v2).
func scenarioLimits(t *testing.T, e *engine, rt runtimeSel, _ string) {
	script := `cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max
cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max
cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cut -d' ' -f1 /sys/fs/cgroup/cpu.max`
	r := e.runCtr(rt, "", "--rm", "--memory", "64m", "--pids-limit", "64", "--cpus", "0.5", image, "sh", "-c", script)
	want(t, "run --memory 64m --pids-limit 64 --cpus 0.5", r, 0)
	if got := lines(r.out); !slices.Equal(got, []string{"67108864", "64", "50000"}) {
		t.Fatalf("want memory 67108864 / pids 64 / cpu quota 50000, got %q (stderr %q)", got, r.err)
	}
}

// (5a) stop delivers SIGTERM to pid 1, which handles it: the container exits with its own code
// long before the grace period ends.
func scenarioStopTerm(t *testing.T, e *engine, rt runtimeSel, name string) {
	e.detached(t, rt, name, image, "sh", "-c", `trap "exit 7" TERM; touch /tmp/ready; sleep 1000 & wait`)
	e.waitReady(t, rt, name, "/tmp/ready")
	start := time.Now()
	e.must(t, rt, "stop", "-t", "30", name)
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("stop took %s: SIGTERM did not reach the container's pid 1", d)
	}
	if st := e.status(rt, name); st != "exited" {
		t.Fatalf("after stop the container is %q, want exited", st)
	}
	if code := strings.TrimSpace(e.must(t, rt, "inspect", "-f", "{{.State.ExitCode}}", name)); code != "7" {
		t.Fatalf("exit code after SIGTERM: want 7 (the trap's), got %s", code)
	}
	e.must(t, rt, "rm", name)
}

// (5b) stop of a pid 1 that ignores SIGTERM: SIGKILL after the grace period, and a --rm
// container is removed.
func scenarioStopKillRm(t *testing.T, e *engine, rt runtimeSel, name string) {
	e.detached(t, rt, name, "--rm", image, "sleep", "1000")
	if st := e.status(rt, name); st != "running" {
		t.Fatalf("container is %q, want running", st)
	}
	e.must(t, rt, "stop", "-t", "1", name)
	var last result
	if !waitFor(30*time.Second, func() bool {
		last = e.cli(rt, "", "inspect", "-f", "{{.State.Status}}", name)
		return last.code != 0
	}) {
		t.Fatalf("--rm container not removed after stop: inspect: %v", last)
	}
}

// kill -s: any signal reaches pid 1.
func scenarioKillSignal(t *testing.T, e *engine, rt runtimeSel, name string) {
	e.detached(t, rt, name, image, "sh", "-c", `trap "exit 9" USR1; touch /tmp/ready; sleep 1000 & wait`)
	e.waitReady(t, rt, name, "/tmp/ready")
	e.must(t, rt, "kill", "-s", "USR1", name)
	var last string
	if !waitFor(20*time.Second, func() bool {
		last = e.status(rt, name)
		return last == "exited"
	}) {
		t.Fatalf("container is %q after kill -s USR1, want exited", last)
	}
	if code := strings.TrimSpace(e.must(t, rt, "inspect", "-f", "{{.State.ExitCode}}", name)); code != "9" {
		t.Fatalf("exit code after USR1: want 9 (the trap's), got %s", code)
	}
}

// (5c) the container's exit code is the CLI's.
func scenarioExitCode(t *testing.T, e *engine, rt runtimeSel, _ string) {
	want(t, "run sh -c 'exit 3'", e.runCtr(rt, "", "--rm", image, "sh", "-c", "exit 3"), 3)
}

// A program that cannot be executed fails `create`: 127 for a missing one, 126 for one that
// is not executable, as the engines map runc's errors (the message must say why).
func scenarioBadCommand(t *testing.T, e *engine, rt runtimeSel, _ string) {
	r := e.runCtr(rt, "", "--rm", image, "/no/such/cmd")
	want(t, "run /no/such/cmd", r, 127)
	if !strings.Contains(r.err, "no such file or directory") {
		t.Errorf("run /no/such/cmd: the error does not say why: %q", r.err)
	}
	r = e.runCtr(rt, "", "--rm", image, "/etc/passwd")
	want(t, "run /etc/passwd", r, 126)
	if !strings.Contains(r.err, "permission denied") {
		t.Errorf("run /etc/passwd: the error does not say why: %q", r.err)
	}
	// After a failed create the engines run `delete --force`, which runc answers with
	// success when the container is already gone; podman shows any error to the user.
	if strings.Contains(r.err, "does not exist") {
		t.Errorf("run /etc/passwd: the runtime's delete --force of the failed container complained: %q", r.err)
	}
}

// A process setting the container init cannot apply fails `create`, and the engine reports
// it as a runtime error (docker 125, podman 126), as runc does: the container must not
// start, run its program or exit with a code of its own. An RLIMIT_NOFILE above fs.nr_open
// is refused by the kernel even to root.
func scenarioInitError(t *testing.T, e *engine, rt runtimeSel, _ string) {
	data, err := os.ReadFile("/proc/sys/fs/nr_open")
	if err != nil {
		t.Fatal(err)
	}
	nrOpen, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	limit := fmt.Sprintf("nofile=%d:%d", nrOpen+1, nrOpen+1)
	r := e.runCtr(rt, "", "--rm", "--ulimit", limit, image, "echo", "should-not-run")
	if strings.Contains(r.out, "should-not-run") {
		t.Fatalf("run --ulimit %s: the program ran: %v", limit, r)
	}
	want(t, "run --ulimit "+limit+" (must fail at create)", r, e.createFailCode)
}

// pause freezes the container and unpause thaws it.
func scenarioPause(t *testing.T, e *engine, rt runtimeSel, name string) {
	e.detached(t, rt, name, image, "sleep", "1000")
	e.must(t, rt, "pause", name)
	if st := e.status(rt, name); st != "paused" {
		t.Fatalf("after pause the container is %q, want paused", st)
	}
	e.must(t, rt, "unpause", name)
	if st := e.status(rt, name); st != "running" {
		t.Fatalf("after unpause the container is %q, want running", st)
	}
	want(t, "exec after unpause", e.cli(rt, "", "exec", name, "true"), 0)
	want(t, "rm -f", e.rm(rt, name), 0)
}

// Bind mount (read-only) and read-only root.
func scenarioMounts(t *testing.T, e *engine, rt runtimeSel, _ string) {
	script := `cat /share/f
touch /share/x 2>/dev/null && echo share-writable || echo share-ro
touch /x 2>/dev/null && echo root-writable || echo root-ro`
	r := e.runCtr(rt, "", "--rm", "--read-only", "-v", filepath.Join(e.dir, "share")+":/share:ro", image, "sh", "-c", script)
	want(t, "run --read-only -v DIR:/share:ro", r, 0)
	if got := lines(r.out); !slices.Equal(got, []string{"shared-data", "share-ro", "root-ro"}) {
		t.Fatalf("want shared-data / share-ro / root-ro, got %q (stderr %q)", got, r.err)
	}
}

// --tmpfs with a size (podman adds the runc extension option "tmpcopyup" to it).
func scenarioTmpfs(t *testing.T, e *engine, rt runtimeSel, _ string) {
	script := `touch /scratch/x && echo scratch-ok
df -k /scratch | tail -n 1 | awk '{print $2}'`
	r := e.runCtr(rt, "", "--rm", "--tmpfs", "/scratch:size=1m", image, "sh", "-c", script)
	want(t, "run --tmpfs /scratch:size=1m", r, 0)
	if got := lines(r.out); !slices.Equal(got, []string{"scratch-ok", "1024"}) {
		t.Fatalf("want scratch-ok / 1024, got %q (stderr %q)", got, r.err)
	}
}

// top lists the container's processes (docker: through the runtime's ps); restart runs it
// again under the same name.
func scenarioTopRestart(t *testing.T, e *engine, rt runtimeSel, name string) {
	e.detached(t, rt, name, image, "sleep", "1000")
	if out := e.must(t, rt, "top", name); !strings.Contains(out, "sleep 1000") {
		t.Fatalf("top does not show the container's sleep 1000:\n%s", out)
	}
	e.must(t, rt, "restart", "-t", "1", name)
	if st := e.status(rt, name); st != "running" {
		t.Fatalf("after restart the container is %q, want running", st)
	}
	r := e.cli(rt, "", "exec", name, "sh", "-c", `tr '\0' ' ' < /proc/1/cmdline`)
	want(t, "exec after restart", r, 0)
	if got := norm(r.out); got != "sleep 1000" {
		t.Fatalf("after restart pid 1 is %q, want sleep 1000", got)
	}
	want(t, "rm -f", e.rm(rt, name), 0)
}

// A container over its memory limit is OOM-killed: 137, and docker says OOMKilled.
func scenarioOOM(t *testing.T, e *engine, rt runtimeSel, name string) {
	t.Cleanup(func() { e.rm(rt, name) })
	r := e.runCtr(rt, "", "--name", name, "--memory", "8m", image, "sh", "-c", `x=a; while :; do x="$x$x"; done`)
	want(t, "run --memory 8m (memory hog)", r, 137)
	if e.name == "docker" { // podman 4.3 does not notice the OOM kill on cgroup v1, with runc either
		if got := strings.TrimSpace(e.must(t, rt, "inspect", "-f", "{{.State.OOMKilled}}", name)); got != "true" {
			t.Fatalf("OOMKilled: want true, got %s", got)
		}
	}
	e.must(t, rt, "rm", name)
}

// update changes a running container's limits (the shim calls the runtime's update).
func scenarioUpdate(t *testing.T, e *engine, rt runtimeSel, name string) {
	e.detached(t, rt, name, "--memory", "64m", image, "sleep", "1000")
	e.must(t, rt, "update", "--memory", "32m", "--memory-swap", "64m", "--cpus", "0.25", "--pids-limit", "20", name)
	script := `cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max
cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max
cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cut -d' ' -f1 /sys/fs/cgroup/cpu.max`
	r := e.cli(rt, "", "exec", name, "sh", "-c", script)
	want(t, "exec after update", r, 0)
	if got := lines(r.out); !slices.Equal(got, []string{"33554432", "20", "25000"}) {
		t.Fatalf("after update: want memory 33554432 / pids 20 / cpu quota 25000, got %q (stderr %q)", got, r.err)
	}
	want(t, "rm -f", e.rm(rt, name), 0)
}

// A user namespace from --uidmap/--gidmap: root inside is 100000 outside.
func scenarioUserns(t *testing.T, e *engine, rt runtimeSel, _ string) {
	r := e.runCtr(rt, "", "--rm", "--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536", image,
		"sh", "-c", "id -u; cat /proc/self/uid_map; cat /proc/self/gid_map; stat -c %u /bin/busybox")
	want(t, "run --uidmap --gidmap", r, 0)
	got := lines(r.out)
	if len(got) != 4 || got[0] != "0" || strings.Join(strings.Fields(got[1]), " ") != "0 100000 65536" ||
		strings.Join(strings.Fields(got[2]), " ") != "0 100000 65536" || got[3] != "0" {
		t.Fatalf("want 0 / 0 100000 65536 (uid and gid maps) / 0 (rootfs owned by root inside), got %q (stderr %q)", got, r.err)
	}
}

// A container joining another's pid, ipc and network namespaces (by /proc/<pid>/ns paths).
func scenarioJoinNamespaces(t *testing.T, e *engine, rt runtimeSel, name string) {
	const nsScript = `for ns in pid ipc net; do ls -l /proc/self/ns/$ns | sed 's/.*-> //'; done`
	e.detached(t, rt, name, "--ipc", "shareable", image, "sleep", "1000")
	r := e.cli(rt, "", "exec", name, "sh", "-c", nsScript)
	want(t, "exec (namespaces of the first container)", r, 0)
	first := lines(r.out)
	c := "container:" + name
	r = e.runCtr(rt, "", "--rm", "--pid", c, "--ipc", c, "--network", c, image, "sh", "-c",
		`tr '\0' ' ' < /proc/1/cmdline; echo; `+nsScript)
	want(t, "run --pid/--ipc/--network container:", r, 0)
	got := lines(r.out)
	if len(got) != 4 || got[0] != "sleep 1000" || !slices.Equal(got[1:], first) {
		t.Fatalf("want pid 1 = sleep 1000 and the namespaces %q, got %q (stderr %q)", first, got, r.err)
	}
	want(t, "rm -f", e.rm(rt, name), 0)
}

package engine_test

// The clean-up invariant, and recovery after a (simulated) reboot.

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// running lists what a live container holds, to prove the leak checks can see it.
func (e *env) holds(id string) []string {
	return e.leaks([]string{id})
}

func TestCleanupInvariant(t *testing.T) {
	t.Parallel()
	e := newBusyboxEnv(t)
	host := filepath.Join(e.dir, "host")
	os.Mkdir(host, 0o755)
	id := e.mustID("run", "-d", "--name", "full", "-v", host+":/h", "-v", "named:/n", "-v", "/anon", "--tmpfs", "/t",
		"-m", "64m", "--health-cmd", "true", "--health-interval", "200ms", "busybox", "sleep", "1000")
	// While it runs, each kind of resource the checks look for is there.
	held := strings.Join(e.holds(id), "\n")
	for _, want := range []string{"mount " + filepath.Join(e.root, "containers", id, "bundle", "rootfs"), "cgroup /sys/fs/cgroup/memory/berth/" + id, "berth-monitor", "runtime state " + filepath.Join(e.rt, id), "left in containers: " + id, "left in containers/names: full"} {
		if !strings.Contains(held, want) {
			t.Errorf("a running container should hold %q; the checks found:\n%s", want, held)
		}
	}
	logPath := e.inspect("full").LogPath
	if !fileExists(logPath) {
		t.Errorf("no log file at LogPath %q", logPath)
	}
	if r := e.berth("rm", "-f", "full"); r.Code != 0 {
		t.Fatalf("rm -f: %s", r)
	}
	e.checkClean("after rm -f of a running container")
	if fileExists(logPath) {
		t.Errorf("rm left the log %s", logPath)
	}
	vols := strings.Fields(e.must("volume", "ls", "-q"))
	if len(vols) != 2 || !slices.Contains(vols, "named") {
		t.Errorf("volumes after rm (without -v): %v, want the named one and the anonymous one", vols)
	}

	// A container that exits on its own gives back all it held while running; its record,
	// log and name stay until rm.
	id = e.mustID("run", "-d", "--name", "quick", "-v", "/anon2", "busybox", "true")
	e.waitExited("quick", 10*time.Second)
	left := e.holds(id)
	slices.Sort(left)
	if want := []string{"left in containers/names: quick", "left in containers: " + id}; !slices.Equal(left, want) {
		t.Errorf("an exited container holds:\n%s\nwant only:\n%s", strings.Join(left, "\n"), strings.Join(want, "\n"))
	}
	e.must("rm", "-v", "quick")
	e.checkClean("after rm of an exited container")

	// --rm leaves nothing, its anonymous volumes included, foreground or detached.
	before := e.must("volume", "ls", "-q")
	e.must("run", "--rm", "-v", "/anon3", "busybox", "true")
	e.mustID("run", "-d", "--rm", "-v", "/anon4", "busybox", "true")
	waitFor(t, 10*time.Second, "run -d --rm to remove its container", func() bool { return e.must("ps", "-a", "-q") == "" })
	e.checkClean("after --rm")
	if after := e.must("volume", "ls", "-q"); after != before {
		t.Errorf("--rm left anonymous volumes: before %q after %q", before, after)
	}
	// A failed start leaves no mount, monitor or cgroup.
	e.berth("run", "-d", "--name", "broken", "busybox", "/no/such/bin")
	e.waitNoMonitor("broken", 10*time.Second)
	left = e.holds(e.id("broken"))
	slices.Sort(left)
	if want := []string{"left in containers/names: broken", "left in containers: " + e.id("broken")}; !slices.Equal(left, want) {
		t.Errorf("a container whose start failed holds:\n%s", strings.Join(left, "\n"))
	}
}

// After a reboot (monitors and containers killed, mounts and /run gone) berth shows the
// containers as exited, can start them again, and `system restore` brings back those with
// --restart always.
func TestRebootRecovery(t *testing.T) {
	t.Parallel()
	e := newBusyboxEnv(t)
	plain := e.mustID("run", "-d", "--name", "plain", "busybox", "sleep", "1000")
	always := e.mustID("run", "-d", "--name", "always", "--restart", "always", "busybox", "sleep", "1000")
	e.mustID("run", "-d", "--name", "stopped", "--restart", "always", "busybox", "sleep", "1000")
	e.must("stop", "-t", "1", "stopped") // docker restores an "always" container even when stopped by the user
	mons := monitorsOf(e.root)
	if len(mons) != 1 { // the data root's hub supervises both running containers
		t.Fatalf("%d monitor processes, want the hub: %v", len(mons), mons)
	}
	// The "reboot".
	for _, m := range mons {
		syscall.Kill(m.pid, syscall.SIGKILL)
	}
	for _, cg := range cgroupsOf([]string{plain, always}) {
		killCgroup(cg)
	}
	waitFor(t, 10*time.Second, "the monitors to die", func() bool { return len(monitorsOf(e.root)) == 0 })
	if _, err := testutil.UnmountUnder(filepath.Join(e.root, "containers")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(e.rt); err != nil {
		t.Fatal(err)
	}

	got := lines(e.must("ps", "-a", "--format", "{{.Names}} {{.State}}"))
	slices.Sort(got)
	if want := []string{"always exited", "plain exited", "stopped exited"}; !slices.Equal(got, want) {
		t.Errorf("ps -a after the reboot: %q, want %q", got, want)
	}
	if got := e.must("ps", "-q"); got != "" {
		t.Errorf("ps after the reboot shows running containers: %q", got)
	}
	for _, n := range []string{"plain", "always"} {
		if d := e.inspect(n); d.State.Running || d.State.Pid != 0 {
			t.Errorf("inspect %s after the reboot: %+v", n, d.State)
		}
	}
	// start works again.
	if r := e.berth("start", "plain"); r.Code != 0 {
		t.Fatalf("start after the reboot: %s", r)
	}
	if got := e.exec("plain", "echo", "alive"); got != "alive\n" {
		t.Errorf("exec in the restarted container: %q", got)
	}
	plainPid := e.inspect("plain").State.Pid
	// system restore starts the --restart always ones that are not running.
	r := e.berth("system", "restore")
	if r.Code != 0 {
		t.Fatalf("system restore: %s", r)
	}
	restored := lines(r.Out)
	slices.Sort(restored)
	if want := []string{"always", "stopped"}; !slices.Equal(restored, want) {
		t.Errorf("system restore printed %q, want %q", restored, want)
	}
	for _, n := range []string{"always", "stopped"} {
		if st := e.status(n); st != "running" {
			t.Errorf("%s after system restore: %q, want running", n, st)
		}
	}
	if d := e.inspect("plain"); d.State.Pid != plainPid || d.State.Status != "running" {
		t.Errorf("system restore touched the running plain container: pid %d -> %d", plainPid, d.State.Pid)
	}
	// A second restore has nothing to do.
	if r := e.berth("system", "restore"); r.Code != 0 || r.Out != "" {
		t.Errorf("a second system restore: %s", r)
	}
	// The restored containers are whole: stop and rm leave nothing.
	e.must("rm", "-f", "plain", "always", "stopped")
	e.checkClean("after rm -f of the restored containers")
}

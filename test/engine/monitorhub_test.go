package engine_test

import (
	"strings"
	"testing"
	"time"
)

// One monitor process (the data root's hub) supervises every running container; each
// container's supervision ends on its own (stop one, the others keep running and logging),
// and the hub exits with its last container. BERTH_MONITOR_HUB=0 gives each container a
// monitor process of its own.
func TestMonitorHub(t *testing.T) {
	e := newBusyboxEnv(t)
	for _, n := range []string{"h1", "h2", "h3"} {
		e.mustID("run", "-d", "--name", n, "busybox", "sh", "-c", "echo started-"+n+"; sleep 1000")
	}
	mons := monitorsOf(e.root)
	if len(mons) != 1 || !strings.Contains(mons[0].cmdline, "--hub") {
		t.Fatalf("monitor processes: %v, want one hub", mons)
	}
	e.must("stop", "-t", "1", "h2")
	if got := lines(e.must("ps", "--format", "{{.Names}}")); len(got) != 2 {
		t.Errorf("running after stopping h2: %q", got)
	}
	if got := e.must("logs", "h3"); got != "started-h3\n" {
		t.Errorf("logs h3: %q", got)
	}
	if d := e.inspect("h2"); d.State.Running || d.State.ExitCode != 137 {
		t.Errorf("h2 after stop: %+v", d.State)
	}
	// A container started while the hub serves others joins it.
	e.mustID("run", "-d", "--name", "h4", "busybox", "sleep", "1000")
	if m := monitorsOf(e.root); len(m) != 1 || m[0].pid != mons[0].pid {
		t.Errorf("after run h4: %v, want the same hub %d", m, mons[0].pid)
	}
	// A foreground run with --rm uses it too and cleans up.
	if out := e.must("run", "--rm", "busybox", "echo", "fg"); out != "fg\n" {
		t.Errorf("run --rm: %q", out)
	}
	e.must("rm", "-f", "h1", "h2", "h3", "h4")
	waitFor(t, 10*time.Second, "the hub to exit", func() bool { return len(monitorsOf(e.root)) == 0 })

	t.Setenv("BERTH_MONITOR_HUB", "0")
	e.mustID("run", "-d", "--name", "p1", "busybox", "sleep", "1000")
	e.mustID("run", "-d", "--name", "p2", "busybox", "sleep", "1000")
	if m := monitorsOf(e.root); len(m) != 2 || strings.Contains(m[0].cmdline, "--hub") {
		t.Errorf("with BERTH_MONITOR_HUB=0: %v, want one monitor per container", m)
	}
	e.must("rm", "-f", "p1", "p2")
	waitFor(t, 10*time.Second, "the monitors to exit", func() bool { return len(monitorsOf(e.root)) == 0 })
}

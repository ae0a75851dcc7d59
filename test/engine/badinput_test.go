package engine_test

// Bad input: one clear line on stderr, docker's exit codes, nothing left behind.

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestBadInput(t *testing.T) {
	t.Parallel()
	e := newBusyboxEnv(t)
	e.mustID("create", "--name", "dup", "busybox", "true")
	dupID := e.id("dup")
	missing := filepath.Join(e.dir, "no-such-source")
	for _, c := range []struct {
		what string
		args []string
		code int
		says string // the error line names this
		// created: docker leaves a created (never started) container behind for a command
		// that cannot be run (without --rm).
		created bool
	}{
		{"unknown image (--pull never)", []string{"run", "--pull", "never", "nosuchimage"}, 125, "nosuchimage", false},
		{"unknown flag", []string{"run", "--bogus", "busybox", "true"}, 125, "--bogus", false},
		{"unknown flag of create", []string{"create", "--bogus", "busybox", "true"}, 125, "--bogus", false},
		{"bad memory size", []string{"run", "-m", "12xyz", "busybox", "true"}, 125, "12xyz", false},
		{"name in use", []string{"run", "--name", "dup", "busybox", "true"}, 125, "already in use", false},
		{"name in use (create)", []string{"create", "--name", "dup", "busybox", "true"}, 125, "already in use", false},
		{"bad name", []string{"run", "--name", "bad/name", "busybox", "true"}, 125, "bad/name", false},
		{"missing --mount source", []string{"run", "--mount", "type=bind,source=" + missing + ",target=/d", "busybox", "true"}, 125, missing, false},
		{"bad restart policy", []string{"run", "--restart", "sometimes", "busybox", "true"}, 125, "sometimes", false},
		{"bad on-failure count", []string{"run", "--restart", "on-failure:x", "busybox", "true"}, 125, "restart policy", false},
		{"--restart with --rm", []string{"run", "--rm", "--restart", "always", "busybox", "true"}, 125, "--rm", false},
		{"bad --cpus", []string{"run", "--cpus", "lots", "busybox", "true"}, 125, "lots", false},
		{"bad --ulimit", []string{"run", "--ulimit", "nofile", "busybox", "true"}, 125, "nofile", false},
		{"bad -e from a missing --env-file", []string{"run", "--env-file", missing, "busybox", "true"}, 125, missing, false},
		{"command not found", []string{"run", "busybox", "nonexistent-cmd"}, 127, "nonexistent-cmd", true},
		{"command not found, --rm", []string{"run", "--rm", "busybox", "nonexistent-cmd"}, 127, "nonexistent-cmd", false},
		{"command not found, -d", []string{"run", "-d", "busybox", "nonexistent-cmd"}, 127, "nonexistent-cmd", true},
		{"absolute path not found", []string{"run", "busybox", "/no/such/bin"}, 127, "/no/such/bin", true},
		{"a directory", []string{"run", "busybox", "/etc"}, 126, "/etc", true},
		{"not executable", []string{"run", "--rm", "busybox", "/etc/passwd"}, 126, "/etc/passwd", false},
	} {
		r := e.berth(c.args...)
		if r.Code != c.code {
			t.Errorf("%s: berth %s: %s\nwant exit %d", c.what, strings.Join(c.args, " "), r, c.code)
		}
		oneLine(t, c.what, r)
		if !strings.Contains(r.Err, c.says) {
			t.Errorf("%s: the error %q does not name %q", c.what, strings.TrimSpace(r.Err), c.says)
		}
		// Nothing left behind but (docker's) created container.
		for _, id := range strings.Fields(e.must("ps", "-a", "-q", "--no-trunc")) {
			if id == dupID {
				continue
			}
			st := e.status(id)
			if !c.created || st != "created" {
				t.Errorf("%s: left a container in state %q", c.what, st)
			}
			if ec := strings.TrimSpace(e.must("inspect", "-f", "{{.State.ExitCode}}", id)); c.created && ec != strconv.Itoa(c.code) {
				t.Errorf("%s: the created container's State.ExitCode is %s, want %d", c.what, ec, c.code)
			}
			if c.created && !strings.HasPrefix(e.must("ps", "-a", "--filter", "id="+id, "--format", "{{.Status}}"), "Created") {
				t.Errorf("%s: ps does not show the failed container as Created", c.what)
			}
			e.waitNoMonitor(id, 10*time.Second)
			e.must("rm", "-f", id)
		}
		e.checkClean(c.what, dupID, "names: dup")
		if fileExists(missing) {
			t.Fatalf("%s: created %s", c.what, missing)
		}
	}
	if got := strings.TrimSpace(e.must("ps", "-a", "-q", "--no-trunc")); got != dupID {
		t.Errorf("ps -a: %q, want only dup", got)
	}
	// docker pulls a missing image; here the pull fails (no registry): two lines at most,
	// the last one naming the image, exit 125.
	r := e.berth("run", "nosuchimage:latest")
	errLines := lines(r.Err)
	if r.Code != 125 || len(errLines) == 0 || len(errLines) > 2 || !strings.Contains(errLines[len(errLines)-1], "nosuchimage") {
		t.Errorf("run of an image that is nowhere: %s", r)
	}
}

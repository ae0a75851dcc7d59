package runtime_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Each bad input fails with a non-zero exit and one line naming the problem, and leaves no
// state, cgroup, mount or process (checkClean runs after each subtest's env).
func TestBadInput(t *testing.T) {
	cases := []struct {
		name  string
		setup func(e *env)
		want  string
	}{
		{"malformed config", func(e *env) {
			os.WriteFile(filepath.Join(e.bundle, "config.json"), []byte(`{"ociVersion": "1.2.0", "process": {`), 0o644)
		}, "invalid config.json"},
		{"missing rootfs", func(e *env) {
			e.spec.Root.Path = "no-such-rootfs"
			e.writeSpec()
		}, "rootfs does not exist"},
		{"unknown namespace", func(e *env) {
			e.spec.Linux.Namespaces = append(e.spec.Linux.Namespaces, specs.LinuxNamespace{Type: "bogus"})
			e.writeSpec()
		}, `unknown namespace type "bogus"`},
		{"bad seccomp action", func(e *env) {
			e.spec.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_EXPLODE"}
			e.writeSpec()
		}, `unknown action "SCMP_ACT_EXPLODE"`},
		{"command not found", func(e *env) {
			e.spec.Process.Args = []string{"no-such-command"}
			e.writeSpec()
		}, `"no-such-command": executable file not found`},
		{"join a missing namespace", func(e *env) {
			e.spec.Linux.Namespaces = append(e.spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace, Path: "/proc/self/ns/does-not-exist"})
			e.writeSpec()
		}, "open namespace /proc/self/ns/does-not-exist"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t)
			e.writeSpec()
			c.setup(e)
			r := e.rt("create", "--bundle", e.bundle, e.id())
			assertOneLineError(t, r, c.want)
		})
	}
	t.Run("id in use", func(t *testing.T) {
		e := newEnv(t)
		id, _ := e.start("sleep", "100")
		r := e.rt("create", "--bundle", e.bundle, id)
		assertOneLineError(t, r, "container id already in use")
		if s := e.state(id); s.Status != "running" {
			t.Fatalf("the existing container was disturbed: %+v", s)
		}
	})
	t.Run("bad id", func(t *testing.T) {
		e := newEnv(t)
		e.writeSpec()
		assertOneLineError(t, e.rt("create", "--bundle", e.bundle, "../escape"), "invalid container id")
	})
	t.Run("unknown container", func(t *testing.T) {
		e := newEnv(t)
		assertOneLineError(t, e.rt("start", "nope"), "container does not exist")
		assertOneLineError(t, e.rt("kill", "nope", "KILL"), "container does not exist")
	})
	t.Run("bad signal", func(t *testing.T) {
		e := newEnv(t)
		id, _ := e.start("sleep", "100")
		assertOneLineError(t, e.rt("kill", id, "SIGNOPE"), "unknown signal")
	})
}

func assertOneLineError(t *testing.T, r result, want string) {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("exit 0, want an error containing %q", want)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], want) {
		t.Fatalf("stderr %q, want one line containing %q", r.stderr, want)
	}
}

// A create killed before it saved its record leaves only a directory: the id is reusable and
// delete --force clears it.
func TestStaleCreateReconciled(t *testing.T) {
	e := newEnv(t)
	id := e.id()
	os.MkdirAll(filepath.Join(e.root, id), 0o711)
	e.must("delete", "--force", id)
	if _, err := os.Stat(filepath.Join(e.root, id)); err == nil {
		t.Fatal("delete --force left the stale directory")
	}
	os.MkdirAll(filepath.Join(e.root, id), 0o711)
	e.spec.Process.Args = []string{"true"}
	e.writeSpec()
	if r := e.rt("run", "--bundle", e.bundle, id); r.code != 0 {
		t.Fatalf("run over a stale directory: %d %s", r.code, r.stderr)
	}
}

// Package runtime_test drives the built berth-runtime binary on real containers from the
// busybox bundle (make test-integration sets BERTH_BIN and BERTH_BUNDLE). Every test gets its
// own state root, bundle copy and container ids, and checks that nothing is left behind.
package runtime_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var (
	berthBin string
	// runtimeCmd starts berth-runtime: the lean binary when BERTH_RUNTIME names it (what engines
	// use), else `berth runtime`.
	runtimeCmd []string
	bundleDir  string
	seq        atomic.Int64
)

func TestMain(m *testing.M) {
	berthBin = os.Getenv("BERTH_BIN")
	runtimeCmd = []string{berthBin, "runtime"}
	if rt := os.Getenv("BERTH_RUNTIME"); rt != "" {
		runtimeCmd = []string{rt}
	}
	bundleDir = os.Getenv("BERTH_BUNDLE")
	if berthBin == "" || bundleDir == "" {
		fmt.Fprintln(os.Stderr, "set BERTH_BIN and BERTH_BUNDLE (make test-integration does)")
		os.Exit(1)
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "integration tests run real containers: run them as root")
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// env is one test's runtime root and bundle.
type env struct {
	t      *testing.T
	root   string
	bundle string
	spec   *specs.Spec
	// wrap prefixes every berth invocation (the cgroup v2 tests run it in a mount namespace
	// whose /sys/fs/cgroup is the unified hierarchy).
	wrap []string
}

// newEnv copies the busybox rootfs (tests may write to it) and loads the default config with
// a non-terminal process; mutate the spec, then call create/run.
func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	// A container with a user namespace runs as an unprivileged host uid: it must be able
	// to reach the bundle (t.TempDir makes 0700 directories).
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755)
	e := &env{t: t, root: filepath.Join(dir, "state"), bundle: filepath.Join(dir, "bundle")}
	if out, err := exec.Command("cp", "-a", bundleDir, e.bundle).CombinedOutput(); err != nil {
		t.Fatalf("copy bundle: %v: %s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(e.bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	e.spec = &specs.Spec{}
	if err := json.Unmarshal(data, e.spec); err != nil {
		t.Fatal(err)
	}
	e.spec.Process.Terminal = false
	e.spec.Root.Readonly = false
	t.Cleanup(func() { e.checkClean() })
	return e
}

func (e *env) writeSpec() {
	e.t.Helper()
	data, err := json.MarshalIndent(e.spec, "", "  ")
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.bundle, "config.json"), data, 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) id() string {
	return fmt.Sprintf("bt-%d-%d", os.Getpid(), seq.Add(1))
}

// result of one berth-runtime invocation.
type result struct {
	stdout, stderr string
	code           int
}

func (e *env) rt(args ...string) result {
	e.t.Helper()
	return e.rtIn(nil, args...)
}

func (e *env) rtIn(stdin []byte, args ...string) result {
	e.t.Helper()
	argv := append(append(append(append([]string(nil), e.wrap...), runtimeCmd...), "--root", e.root), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	// Files, not pipes: a created container inherits the runtime's stdio and keeps it open
	// after the runtime exits, so a pipe would never reach EOF.
	so, err := os.CreateTemp(e.t.TempDir(), "stdout")
	if err != nil {
		e.t.Fatal(err)
	}
	defer so.Close()
	se, err := os.CreateTemp(e.t.TempDir(), "stderr")
	if err != nil {
		e.t.Fatal(err)
	}
	defer se.Close()
	cmd.Stdout, cmd.Stderr = so, se
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	timer := time.AfterFunc(60*time.Second, func() { cmd.Process.Kill() })
	defer timer.Stop()
	err = cmd.Run()
	if err != nil && cmd.ProcessState == nil {
		e.t.Fatal(err)
	}
	out, _ := os.ReadFile(so.Name())
	errOut, _ := os.ReadFile(se.Name())
	return result{string(out), string(errOut), cmd.ProcessState.ExitCode()}
}

// must runs berth-runtime and fails the test on a non-zero exit.
func (e *env) must(args ...string) string {
	e.t.Helper()
	r := e.rt(args...)
	if r.code != 0 {
		e.t.Fatalf("berth-runtime %v: exit %d: %s%s", args, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// run runs the container in the foreground and returns its output and exit code.
func (e *env) run(args ...string) result {
	e.t.Helper()
	if args != nil {
		e.spec.Process.Args = args
	}
	e.writeSpec()
	return e.rt("run", "--bundle", e.bundle, e.id())
}

// start creates and starts a long-running container and registers its deletion.
func (e *env) start(args ...string) (id string, pid int) {
	e.t.Helper()
	if args != nil {
		e.spec.Process.Args = args
	}
	e.writeSpec()
	id = e.id()
	e.must("create", "--bundle", e.bundle, id)
	e.t.Cleanup(func() { e.rt("delete", "--force", id) })
	e.must("start", id)
	return id, e.state(id).Pid
}

type stateOut struct {
	ID     string `json:"id"`
	Pid    int    `json:"pid"`
	Status string `json:"status"`
}

func (e *env) state(id string) stateOut {
	e.t.Helper()
	var s stateOut
	if err := json.Unmarshal([]byte(e.must("state", id)), &s); err != nil {
		e.t.Fatal(err)
	}
	return s
}

// checkClean fails the test if the runtime left a container, cgroup or process behind.
func (e *env) checkClean() {
	t := e.t
	if entries, _ := os.ReadDir(e.root); len(entries) > 0 {
		for _, en := range entries {
			if !strings.HasPrefix(en.Name(), ".") {
				t.Errorf("state left behind: %s", en.Name())
			}
		}
	}
	prefix := fmt.Sprintf("bt-%d-", os.Getpid())
	matches, _ := filepath.Glob("/sys/fs/cgroup/*/berth/" + prefix + "*")
	more, _ := filepath.Glob("/sys/fs/cgroup/berth/" + prefix + "*")
	for _, m := range append(matches, more...) {
		// a sibling test's live container is fine; only ones of this env's ids count,
		// and the harness deletes every container before this runs.
		if _, err := os.Stat(filepath.Join(e.root, filepath.Base(m))); err != nil {
			continue
		}
		t.Errorf("cgroup left behind: %s", m)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), e.bundle) {
		t.Errorf("mount of the bundle left behind on the host")
	}
}

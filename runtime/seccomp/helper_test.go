package seccomp

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Loading a filter cannot be undone, so every test that loads one re-executes
// the test binary: TestHelperProcess reads the profile and the probes to run
// from the environment, loads the filter, runs each probe on its locked
// thread and prints "probe=errno" lines (0 = success) for the parent to check.
const (
	envHelper  = "BERTH_SECCOMP_HELPER"
	envProfile = "BERTH_SECCOMP_PROFILE"
	envProbes  = "BERTH_SECCOMP_PROBES"
	envDir     = "BERTH_SECCOMP_DIR"
)

func TestHelperProcess(t *testing.T) {
	if os.Getenv(envHelper) != "1" {
		return
	}
	// Probes use unix.* calls from this goroutine; locking it keeps them on
	// the thread that called seccomp(2), and TSYNC (set by the parent unless
	// the test is about notify) covers the runtime's other threads.
	runtime.LockOSThread()
	if err := helperMain(); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(3)
	}
	os.Exit(0)
}

func helperMain() error {
	var cfg specs.LinuxSeccomp
	if err := json.Unmarshal([]byte(os.Getenv(envProfile)), &cfg); err != nil {
		return err
	}
	// A SIGSYS kill must not leave core files behind in the test directory.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return err
	}
	prog, err := Compile(&cfg)
	if err != nil {
		return err
	}
	flags, err := Flags(&cfg)
	if err != nil {
		return err
	}
	fd, err := Load(prog, flags)
	if err != nil {
		return err
	}
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(out, "notifyfd=%d\n", fd)
	if fd >= 0 {
		link, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
		fmt.Fprintf(out, "notifylink=%s\n", link)
	}
	for _, p := range strings.Split(os.Getenv(envProbes), ",") {
		if p == "" {
			continue
		}
		fn, ok := probes[p]
		if !ok {
			return fmt.Errorf("unknown probe %q", p)
		}
		// Flush first: a probe may be a kill, and the parent wants to see
		// how far the child got.
		out.Flush()
		fmt.Fprintf(out, "%s=%d\n", p, errnoOf(fn()))
	}
	return out.Flush()
}

func errnoOf(err error) int {
	if err == nil {
		return 0
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		return int(e)
	}
	return -1
}

func rawErr(_, _ uintptr, e syscall.Errno) error {
	if e != 0 {
		return e
	}
	return nil
}

func socketProbe(domain, typ int) func() error {
	return func() error {
		fd, err := unix.Socket(domain, typ|unix.SOCK_CLOEXEC, 0)
		if err == nil {
			unix.Close(fd)
		}
		return err
	}
}

func personalityProbe(persona uintptr) func() error {
	return func() error {
		return rawErr(unix.RawSyscall(unix.SYS_PERSONALITY, persona, 0, 0))
	}
}

var probes = map[string]func() error{
	"getpid": func() error { unix.Getpid(); return nil },
	"mkdirat": func() error {
		p := filepath.Join(os.Getenv(envDir), "d")
		err := unix.Mkdirat(unix.AT_FDCWD, p, 0o700)
		if err == nil {
			unix.Rmdir(p)
		}
		return err
	},
	"unshare0":           func() error { return unix.Unshare(0) },
	"getpgid":            func() error { _, err := unix.Getpgid(0); return err },
	"nr1000":             func() error { return rawErr(unix.RawSyscall(1000, 0, 0, 0)) },
	"socket_inet_dgram":  socketProbe(unix.AF_INET, unix.SOCK_DGRAM),
	"socket_inet_stream": socketProbe(unix.AF_INET, unix.SOCK_STREAM),
	"socket_unix_dgram":  socketProbe(unix.AF_UNIX, unix.SOCK_DGRAM),
	"personality_query":  personalityProbe(0xffffffff),
	"personality_a":      personalityProbe(0x0040000), // ADDR_NO_RANDOMIZE
	"personality_b":      personalityProbe(0x0200000), // READ_IMPLIES_EXEC
}

// childResult is what one helper run produced.
type childResult struct {
	vals   map[string]string
	state  *os.ProcessState
	stderr string
}

func (r childResult) errno(t *testing.T, probe string) int {
	t.Helper()
	v, ok := r.vals[probe]
	if !ok {
		t.Fatalf("child did not report %q; stdout %v, stderr %q", probe, r.vals, r.stderr)
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("probe %s: %v", probe, err)
	}
	return n
}

// runChild runs the helper with cfg (plus TSYNC when tsync is set) and the
// given probes.
func runChild(t *testing.T, cfg specs.LinuxSeccomp, tsync bool, probeNames ...string) childResult {
	t.Helper()
	if tsync {
		cfg.Flags = append(cfg.Flags, flagTSYNC)
	}
	js, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(),
		envHelper+"=1",
		envProfile+"="+string(js),
		envProbes+"="+strings.Join(probeNames, ","),
		envDir+"="+t.TempDir(),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("run helper: %v", err)
	}
	res := childResult{vals: map[string]string{}, state: cmd.ProcessState, stderr: stderr.String()}
	for _, line := range strings.Split(stdout.String(), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			res.vals[k] = v
		}
	}
	return res
}

func (r childResult) requireSuccess(t *testing.T) {
	t.Helper()
	if !r.state.Success() {
		t.Fatalf("helper failed: %v; stderr %q", r.state, r.stderr)
	}
}

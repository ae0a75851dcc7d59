package main

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as berth-init: with BERTH_INIT_AS_MAIN=1 it runs main's code on its
// arguments (TestMain runs before any test flag is parsed).
func TestMain(m *testing.M) {
	if os.Getenv("BERTH_INIT_AS_MAIN") == "1" {
		os.Exit(run(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func initCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "BERTH_INIT_AS_MAIN=1")
	return cmd
}

func exitStatus(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("run: %v", err)
	}
	return ee.ExitCode()
}

func TestExitCodes(t *testing.T) {
	notExec := filepath.Join(t.TempDir(), "script")
	os.WriteFile(notExec, []byte("#!/bin/sh\nexit 0\n"), 0o644)
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"--", "true"}, 0},
		{[]string{"--", "sh", "-c", "exit 3"}, 3},
		{[]string{"sh", "-c", "exit 42"}, 42}, // without --
		{[]string{"--", "sh", "-c", "kill -TERM $$"}, 128 + 15},
		{[]string{"--", "sh", "-c", "kill -KILL $$"}, 128 + 9},
		{[]string{"--", "sh", "-c", "kill -SEGV $$"}, 128 + 11},
		{[]string{"--", "/nonexistent/cmd"}, 127},
		{[]string{"--", "no-such-command-in-path"}, 127},
		{[]string{"--", notExec}, 126},
		{[]string{}, 1},
		{[]string{"--"}, 1},
	} {
		out, err := initCmd(tc.args...).CombinedOutput()
		if got := exitStatus(t, err); got != tc.want {
			t.Errorf("berth-init %q: exit %d, want %d (%s)", tc.args, got, tc.want, out)
		}
	}
}

func TestOutputAndEnv(t *testing.T) {
	cmd := initCmd("--", "sh", "-c", `echo "out $BERTH_X"; echo err >&2; read line; echo "in $line"`)
	cmd.Env = append(cmd.Env, "BERTH_X=y")
	cmd.Stdin = strings.NewReader("hello\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatal(err, stderr.String())
	}
	if stdout.String() != "out y\nin hello\n" || stderr.String() != "err\n" {
		t.Fatalf("stdout %q stderr %q", stdout.String(), stderr.String())
	}
}

// started runs berth-init with a shell script that prints "ready" once its traps are set.
func started(t *testing.T, args ...string) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	cmd := initCmd(args...)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		pr.Close()
	})
	r := bufio.NewReader(pr)
	waitLine(t, r, "ready")
	return cmd, r
}

func waitLine(t *testing.T, r *bufio.Reader, want string) string {
	t.Helper()
	got := make(chan string, 1)
	go func() {
		for {
			line, err := r.ReadString('\n')
			if strings.Contains(line, want) || err != nil {
				got <- line
				return
			}
		}
	}()
	select {
	case line := <-got:
		if !strings.Contains(line, want) {
			t.Fatalf("output ended before %q", want)
		}
		return line
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %q", want)
	}
	return ""
}

func waitExit(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return exitStatus(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("berth-init did not exit")
	}
	return -1
}

func TestSignalForwarding(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGQUIT, syscall.SIGWINCH} {
		name := strings.TrimPrefix(sigName(sig), "SIG")
		t.Run(name, func(t *testing.T) {
			script := `trap 'echo got-` + name + `; exit 7' ` + name + `; echo ready; while :; do sleep 0.05; done`
			cmd, r := started(t, "--", "sh", "-c", script)
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			waitLine(t, r, "got-"+name)
			if code := waitExit(t, cmd); code != 7 {
				t.Fatalf("exit %d, want 7", code)
			}
		})
	}

	// A signal the command does not handle kills it; init reports 128+N.
	cmd, _ := started(t, "--", "sh", "-c", "echo ready; exec sleep 30")
	cmd.Process.Signal(syscall.SIGTERM)
	if code := waitExit(t, cmd); code != 128+int(syscall.SIGTERM) {
		t.Fatalf("untrapped SIGTERM: exit %d", code)
	}

	// SIGTTIN/SIGTTOU do not stop init, nor reach the command.
	cmd, r := started(t, "--", "sh", "-c", `trap 'echo got-TTIN' TTIN; echo ready; sleep 0.5; echo alive; exit 5`)
	cmd.Process.Signal(syscall.SIGTTIN)
	cmd.Process.Signal(syscall.SIGTTOU)
	if line := waitLine(t, r, "alive"); strings.Contains(line, "got-TTIN") {
		t.Fatal("SIGTTIN was forwarded")
	}
	if code := waitExit(t, cmd); code != 5 {
		t.Fatalf("exit %d, want 5", code)
	}
}

// With -g a signal goes to the command's whole process group.
func TestGroupForwarding(t *testing.T) {
	// the outer shell's trap is set before the inner one starts; the inner one says ready
	cmd, r := started(t, "-g", "--", "sh", "-c", `trap 'echo child-got-USR1' USR1; sh -c 'trap "echo grandchild-got-USR1; exit 0" USR1; echo ready; while :; do sleep 0.05; done' & wait; wait; exit 9`)
	cmd.Process.Signal(syscall.SIGUSR1)
	waitLine(t, r, "got-USR1")
	waitLine(t, r, "got-USR1")
	if code := waitExit(t, cmd); code != 9 {
		t.Fatalf("exit %d, want 9", code)
	}
}

// Orphans reparented to init are reaped: no zombie child of init stays around.
func TestReapsZombies(t *testing.T) {
	cmd, _ := started(t, "--", "sh", "-c", `for i in 1 2 3 4 5; do (sleep 0.1 &) ; done; echo ready; sleep 3`)
	pid := cmd.Process.Pid
	var children []int
	deadline := time.Now().Add(5 * time.Second)
	for {
		children = children[:0]
		zombies := 0
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			p, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			state, ppid := procStat(p)
			if ppid == pid {
				children = append(children, p)
				if state == "Z" {
					zombies++
				}
			}
		}
		// the orphans exit after 0.1s; once only the shell is left and no zombie, done
		if zombies == 0 && len(children) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("init's children %v, %d zombies", children, zombies)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if code := waitExit(t, cmd); code != 143 {
		t.Fatalf("exit %d", code)
	}
}

// procStat returns a process's state and parent pid from /proc/PID/stat.
func procStat(pid int) (string, int) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return "", 0
	}
	ppid, _ := strconv.Atoi(f[1])
	return f[0], ppid
}

func sigName(s syscall.Signal) string {
	return map[syscall.Signal]string{
		syscall.SIGTERM: "SIGTERM", syscall.SIGINT: "SIGINT", syscall.SIGHUP: "SIGHUP", syscall.SIGUSR1: "SIGUSR1",
		syscall.SIGUSR2: "SIGUSR2", syscall.SIGQUIT: "SIGQUIT", syscall.SIGWINCH: "SIGWINCH",
	}[s]
}

// The shipped binary is static (no ELF interpreter) and works on its own.
func TestStaticBuild(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go toolchain in PATH")
	}
	bin := filepath.Join(t.TempDir(), "berth-init")
	build := exec.Command(goBin, "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("berth-init is dynamically linked")
		}
	}
	out, err := exec.Command(bin, "--", "sh", "-c", "echo static; exit 4").Output()
	if code := exitStatus(t, err); code != 4 || string(out) != "static\n" {
		t.Fatalf("exit %d output %q", code, out)
	}
}

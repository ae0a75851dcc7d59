package engine_test

// The classic scenarios of issue 4's acceptance list.

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A detached container with a host directory bind-mounted writes into it.
func TestRunDetachedBindMount(t *testing.T) {
	t.Parallel()
	e := newBusyboxEnv(t)
	host := filepath.Join(e.dir, "hostdir")
	if err := os.Mkdir(host, 0o755); err != nil {
		t.Fatal(err)
	}
	id := e.mustID("run", "-d", "-v", host+":/var/data", "busybox", "sh", "-c", "echo hi > /var/data/f; sleep 1000")
	waitFor(t, 10*time.Second, "HOSTDIR/f", func() bool {
		b, err := os.ReadFile(filepath.Join(host, "f"))
		return err == nil && string(b) == "hi\n"
	})
	if st := e.status(id); st != "running" {
		t.Fatalf("status %q, want running", st)
	}
}

// The Debian minbase image: the host's kernel, Debian's userland, an interactive bash on a pty
// with its window size.
func TestDebian(t *testing.T) {
	t.Parallel()
	if minbaseGz == "" {
		t.Skip("BERTH_MINBASE not set (make builds it)")
	}
	e := newEnv(t)
	e.importImage(minbaseGz, "debian:latest", `CMD ["bash"]`)

	t.Run("uname-ls-os-release", func(t *testing.T) {
		var u unix.Utsname
		if err := unix.Uname(&u); err != nil {
			t.Fatal(err)
		}
		release := unix.ByteSliceToString(u.Release[:])
		r := e.berth("run", "--rm", "debian", "sh", "-c", "uname -a; ls /; cat /etc/os-release")
		if r.Code != 0 {
			t.Fatalf("run: %s", r)
		}
		first := strings.SplitN(r.Out, "\n", 2)[0]
		if !strings.HasPrefix(first, "Linux ") || !strings.Contains(first, " "+release+" ") {
			t.Errorf("uname -a %q does not show the host kernel %s", first, release)
		}
		for _, want := range []string{"\nbin\n", "\netc\n", "\nusr\n", "\nproc\n", `PRETTY_NAME="Debian GNU/Linux`, "ID=debian"} {
			if !strings.Contains(r.Out, want) {
				t.Errorf("output lacks %q:\n%s", want, r.Out)
			}
		}
		if r.Err != "" {
			t.Errorf("stderr: %q", r.Err)
		}
		waitFor(t, 10*time.Second, "--rm to remove the container", func() bool {
			return strings.TrimSpace(e.must("ps", "-a", "-q")) == ""
		})
	})

	t.Run("interactive-bash-on-a-pty", func(t *testing.T) {
		p := openPty(t, 37, 113)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c := e.cmd(ctx, "run", "--rm", "-it", "--name", "itbash", "debian", "bash")
		c.Stdin, c.Stdout, c.Stderr = p.slave, p.slave, p.slave
		c.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0, Pdeathsig: syscall.SIGKILL}
		c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		p.slave.Close()
		done := make(chan struct{})
		go func() { c.Wait(); close(done) }()
		defer func() {
			select {
			case <-done:
			default:
				syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
				<-done
			}
		}()
		p.waitFor(t, "the bash prompt", "# ", 20*time.Second)

		// The size set on our pty before the start is the container's.
		p.typeLine(t, "stty size")
		p.waitFor(t, "stty size = 37 113", "37 113", 10*time.Second)

		// A resize of our terminal reaches the container (SIGWINCH -> CLI -> monitor -> pty).
		if err := unix.IoctlSetWinsize(int(p.master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 50, Col: 120}); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(p.out.String(), "50 120") {
			if time.Now().After(deadline) {
				t.Fatalf("the container never saw the new window size 50x120; pty output:\n%s", p.out.String())
			}
			p.typeLine(t, "stty size")
			time.Sleep(300 * time.Millisecond)
		}

		p.typeLine(t, "echo $((6*7)); exit 3")
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("run -it did not exit after `exit 3`; pty output:\n%s", p.out.String())
		}
		if code := c.ProcessState.ExitCode(); code != 3 {
			t.Errorf("run -it exited %d, want 3", code)
		}
		if !strings.Contains(p.out.String(), "42") {
			t.Errorf("no 42 in the pty output:\n%q", p.out.String())
		}
		waitFor(t, 10*time.Second, "--rm to remove the container", func() bool {
			return strings.TrimSpace(e.must("ps", "-a", "-q")) == ""
		})
	})
}

// pty is a pseudo-terminal pair made through /dev/ptmx; out collects what the master reads.
type pty struct {
	master, slave *os.File
	out           *syncBuf
}

func openPty(t *testing.T, rows, cols uint16) *pty {
	t.Helper()
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil { // unlockpt
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN) // ptsname
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		t.Fatal(err)
	}
	sfd, err := unix.Open(fmt.Sprintf("/dev/pts/%d", n), unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	p := &pty{master: os.NewFile(uintptr(fd), "ptmx"), slave: os.NewFile(uintptr(sfd), "pts"), out: &syncBuf{}}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := p.master.Read(b)
			p.out.Write(b[:n])
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { p.master.Close(); p.slave.Close() })
	return p
}

func (p *pty) typeLine(t *testing.T, s string) {
	t.Helper()
	if _, err := p.master.Write([]byte(s + "\r")); err != nil {
		t.Fatal(err)
	}
}

func (p *pty) waitFor(t *testing.T, what, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.out.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; pty output:\n%q", what, p.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A memory hog under -m 32m is OOM-killed: exit 137, OOMKilled true, an oom event.
func TestMemoryHogOOMKilled(t *testing.T) {
	t.Parallel()
	e := newBusyboxEnv(t)
	r := e.berthIn(nil, time.Minute, "run", "--name", "hog", "-m", "32m", "busybox", "sh", "-c", "x=a; while true; do x=$x$x; done")
	if r.Code != 137 {
		t.Fatalf("run: %s\nwant exit 137", r)
	}
	d := e.inspect("hog")
	if !d.State.OOMKilled || d.State.ExitCode != 137 || d.State.Status != "exited" {
		t.Errorf("inspect State: OOMKilled %v ExitCode %d Status %q; want true 137 exited", d.State.OOMKilled, d.State.ExitCode, d.State.Status)
	}
	if d.HostConfig.Memory != 32<<20 {
		t.Errorf("HostConfig.Memory %d, want %d", d.HostConfig.Memory, 32<<20)
	}
	if got := strings.TrimSpace(e.must("inspect", "-f", "{{.State.OOMKilled}}", "hog")); got != "true" {
		t.Errorf("inspect -f {{.State.OOMKilled}}: %q", got)
	}
	ev := e.must("events", "--since", "5m", "--until", "0s", "--filter", "container=hog", "--format", "{{.Action}}")
	if !strings.Contains(ev, "oom\n") {
		t.Errorf("no oom event:\n%s", ev)
	}
}

// A foreground container survives its CLI being killed, and logs -f follows it until it stops.
func TestContainerSurvivesCLIKill(t *testing.T) {
	t.Parallel()
	e := newBusyboxEnv(t)
	cli := e.start(nil, "run", "--name", "ticker", "busybox", "sh", "-c", "while true; do echo tick; sleep 0.2; done")
	waitFor(t, 10*time.Second, "the first tick on the CLI's stdout", func() bool { return strings.Contains(cli.out.String(), "tick") })
	if err := syscall.Kill(cli.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cli.wait(t, 5*time.Second)

	ps := e.must("ps", "--filter", "name=ticker", "--format", "{{.Names}} {{.Status}}")
	if !strings.HasPrefix(ps, "ticker Up") {
		t.Fatalf("after the CLI was killed, ps shows %q, want ticker Up ...", ps)
	}
	n1 := strings.Count(e.logs("ticker"), "tick")
	time.Sleep(time.Second)
	n2 := strings.Count(e.logs("ticker"), "tick")
	if n2 < n1+2 {
		t.Fatalf("the log stopped growing after the CLI died: %d ticks, a second later %d", n1, n2)
	}

	follow := e.start(nil, "logs", "-f", "ticker")
	waitFor(t, 10*time.Second, "logs -f to follow new ticks", func() bool {
		return strings.Count(follow.out.String(), "tick") >= n2+3
	})
	select {
	case <-follow.done:
		t.Fatalf("logs -f exited while the container runs: %q", follow.errb.String())
	default:
	}
	e.must("stop", "-t", "1", "ticker")
	if code := follow.wait(t, 10*time.Second); code != 0 {
		t.Errorf("logs -f exited %d after the container stopped: %s", code, follow.errb.String())
	}
	d := e.inspect("ticker")
	if d.State.Status != "exited" || d.State.ExitCode != 137 {
		t.Errorf("after stop: %s exit %d, want exited 137 (sh as pid 1 ignores SIGTERM)", d.State.Status, d.State.ExitCode)
	}
}

// --restart on-failure:3 restarts a failing container exactly three times.
func TestRestartOnFailure(t *testing.T) {
	t.Parallel()
	e := newBusyboxEnv(t)
	since := time.Now().Add(-time.Second).Format(time.RFC3339Nano)
	e.mustID("run", "-d", "--name", "flaky", "--restart", "on-failure:3", "busybox", "sh", "-c", "exit 1")
	e.waitExited("flaky", 30*time.Second)
	time.Sleep(500 * time.Millisecond) // a fourth restart would come within docker's back-off
	d := e.inspect("flaky")
	if d.RestartCount != 3 || d.State.Status != "exited" || d.State.ExitCode != 1 {
		t.Errorf("RestartCount %d, Status %q, ExitCode %d; want 3, exited, 1", d.RestartCount, d.State.Status, d.State.ExitCode)
	}
	if d.HostConfig.RestartPolicy.Name != "on-failure" || d.HostConfig.RestartPolicy.MaximumRetryCount != 3 {
		t.Errorf("HostConfig.RestartPolicy %+v", d.HostConfig.RestartPolicy)
	}
	ev := e.must("events", "--since", since, "--until", time.Now().Format(time.RFC3339Nano), "--filter", "container=flaky", "--format", "{{.Action}}")
	count := map[string]int{}
	for _, a := range lines(ev) {
		count[a]++
	}
	if count["start"] != 4 || count["die"] != 4 || count["restart"] != 0 && count["restart"] != 3 {
		t.Errorf("events: %d start, %d die, %d restart; want 4, 4 and 3 (or none):\n%s", count["start"], count["die"], count["restart"], ev)
	}
	// A container that succeeds is not restarted by on-failure.
	e.mustID("run", "-d", "--name", "fine", "--restart", "on-failure:3", "busybox", "true")
	e.waitExited("fine", 20*time.Second)
	if d := e.inspect("fine"); d.RestartCount != 0 || d.State.ExitCode != 0 {
		t.Errorf("on-failure restarted a container that exited 0: RestartCount %d ExitCode %d", d.RestartCount, d.State.ExitCode)
	}
}

package engine_test

// The lifecycle commands, with docker's output and exit codes.

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestCreateStartWait(t *testing.T) {
	t.Parallel()
	e := newBusyboxEnv(t)
	id := e.mustID("create", "--name", "c1", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
	if got := e.must("ps", "-a", "--format", "{{.Names}} {{.Status}}"); got != "c1 Created\n" {
		t.Errorf("ps -a after create: %q, want \"c1 Created\"", got)
	}
	if got := e.must("ps", "-q"); got != "" {
		t.Errorf("ps (running only) shows a created container: %q", got)
	}
	d := e.inspect("c1")
	if d.ID != id || d.Name != "/c1" || d.State.Status != "created" || d.State.Running || d.State.Pid != 0 || d.State.StartedAt != "0001-01-01T00:00:00Z" {
		t.Errorf("inspect after create: %+v", d.State)
	}
	// start -a streams both outputs and exits with the container's code.
	r := e.berth("start", "-a", "c1")
	if r.Code != 3 || r.Out != "out\n" || r.Err != "err\n" {
		t.Errorf("start -a: %s\nwant exit 3, stdout \"out\\n\", stderr \"err\\n\"", r)
	}
	d = e.inspect("c1")
	if d.State.Status != "exited" || d.State.ExitCode != 3 || d.State.Running {
		t.Errorf("after start -a: %+v", d.State)
	}
	started, finished := parseTime(t, "StartedAt", d.State.StartedAt), parseTime(t, "FinishedAt", d.State.FinishedAt)
	if finished.Before(started) || time.Since(started) > time.Minute {
		t.Errorf("StartedAt %v FinishedAt %v", started, finished)
	}
	if r := e.berth("wait", "c1"); r.Code != 0 || r.Out != "3\n" {
		t.Errorf("wait on an exited container: %s\nwant \"3\"", r)
	}
	// start (detached) prints the name as given; a second run of the same container.
	if out := e.must("start", "c1"); out != "c1\n" {
		t.Errorf("start printed %q, want \"c1\"", out)
	}
	if r := e.berth("wait", "c1"); r.Code != 0 || r.Out != "3\n" {
		t.Errorf("wait after start: %s", r)
	}
	e.waitNoMonitor("c1", 10*time.Second)
	if l := e.logs("c1"); strings.Count(l, "out\n") != 2 {
		t.Errorf("the log of two runs: %q", l)
	}
	// wait blocks until the exit and prints the code.
	e.mustID("run", "-d", "--name", "waiter", "busybox", "sh", "-c", "sleep 0.5; exit 42")
	if r := e.berth("wait", "waiter"); r.Code != 0 || r.Out != "42\n" || r.Dur < 200*time.Millisecond {
		t.Errorf("wait: %s\nwant \"42\" after the container's half second", r)
	}
	if r := e.berth("wait", "nosuch"); r.Code != 1 {
		t.Errorf("wait nosuch: %s\nwant exit 1", r)
	}
}

func TestStopKillRestart(t *testing.T) {
	t.Parallel()
	e := newBusyboxEnv(t)
	e.mustID("run", "-d", "--name", "trapper", "busybox", "sh", "-c", "trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 0.1; done")
	e.waitLog("trapper", "ready", 10*time.Second)
	r := e.berth("stop", "-t", "5", "trapper")
	if r.Code != 0 || r.Out != "trapper\n" || r.Dur > 4*time.Second {
		t.Errorf("stop -t 5 of a container that exits on TERM: %s", r)
	}
	if d := e.inspect("trapper"); d.State.Status != "exited" || d.State.ExitCode != 7 {
		t.Errorf("after stop: %s exit %d, want exited 7", d.State.Status, d.State.ExitCode)
	}
	if !strings.Contains(e.logs("trapper"), "got TERM") {
		t.Errorf("the stop signal did not reach the container: %q", e.logs("trapper"))
	}
	if r := e.berth("stop", "trapper"); r.Code != 0 {
		t.Errorf("stop of a stopped container: %s\nwant exit 0", r)
	}

	// A container that ignores SIGTERM is killed after -t.
	e.mustID("run", "-d", "--name", "stubborn", "busybox", "sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.1; done")
	e.waitLog("stubborn", "ready", 10*time.Second)
	r = e.berth("stop", "-t", "1", "stubborn")
	if r.Code != 0 || r.Dur < time.Second || r.Dur > 8*time.Second {
		t.Errorf("stop -t 1 of a container that ignores TERM: %s\nwant exit 0 after 1 s", r)
	}
	if d := e.inspect("stubborn"); d.State.ExitCode != 137 {
		t.Errorf("after SIGKILL: exit %d, want 137", d.State.ExitCode)
	}

	// kill -s delivers the signal; kill defaults to SIGKILL.
	e.mustID("run", "-d", "--name", "kk", "busybox", "sh", "-c", "trap 'echo got USR1' USR1; echo ready; while :; do sleep 0.1; done")
	e.waitLog("kk", "ready", 10*time.Second)
	if r := e.berth("kill", "-s", "USR1", "kk"); r.Code != 0 || r.Out != "kk\n" {
		t.Errorf("kill -s USR1: %s", r)
	}
	e.waitLog("kk", "got USR1", 10*time.Second)
	if st := e.status("kk"); st != "running" {
		t.Errorf("after USR1: %s, want running", st)
	}
	if r := e.berth("kill", "-s", "SIGUSR1", "kk"); r.Code != 0 {
		t.Errorf("kill -s SIGUSR1: %s", r)
	}
	if r := e.berth("kill", "kk"); r.Code != 0 || r.Out != "kk\n" {
		t.Errorf("kill: %s", r)
	}
	e.waitExited("kk", 10*time.Second)
	if d := e.inspect("kk"); d.State.ExitCode != 137 {
		t.Errorf("after kill: exit %d, want 137", d.State.ExitCode)
	}
	if r := e.berth("kill", "kk"); r.Code != 1 {
		t.Errorf("kill of a stopped container: %s\nwant exit 1", r)
	} else {
		oneLine(t, "kill of a stopped container", r)
	}
	if r := e.berth("kill", "-s", "NOSUCHSIG", "trapper"); r.Code == 0 {
		t.Errorf("kill -s NOSUCHSIG: %s\nwant a failure", r)
	}

	// restart: a new process, still running.
	e.mustID("run", "-d", "--name", "rr", "busybox", "sh", "-c", "echo started; trap 'exit 0' TERM; while :; do sleep 0.1; done")
	e.waitLog("rr", "started", 10*time.Second)
	d1 := e.inspect("rr")
	r = e.berth("restart", "-t", "5", "rr")
	if r.Code != 0 || r.Out != "rr\n" {
		t.Fatalf("restart: %s", r)
	}
	d2 := e.inspect("rr")
	if d2.State.Status != "running" || d2.State.Pid == d1.State.Pid || d2.State.Pid == 0 {
		t.Errorf("after restart: %s pid %d (before: pid %d)", d2.State.Status, d2.State.Pid, d1.State.Pid)
	}
	if !parseTime(t, "StartedAt", d2.State.StartedAt).After(parseTime(t, "StartedAt", d1.State.StartedAt)) {
		t.Errorf("StartedAt did not move on restart: %s -> %s", d1.State.StartedAt, d2.State.StartedAt)
	}
	e.waitLog("rr", "started\nstarted\n", 10*time.Second)
	// restart of a stopped container starts it.
	if r := e.berth("restart", "trapper"); r.Code != 0 {
		t.Errorf("restart of a stopped container: %s", r)
	}
	e.waitStatus("trapper", "running", 10*time.Second)
}

func TestPauseUnpause(t *testing.T) {
	t.Parallel()
	e := newBusyboxEnv(t)
	id := e.mustID("run", "-d", "--name", "pz", "busybox", "sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /tmp/n; sleep 0.05; done")
	counter := func() int {
		// cp - writes a tar stream holding the one file.
		tr := tar.NewReader(strings.NewReader(e.berth("cp", "pz:/tmp/n", "-").Out))
		if _, err := tr.Next(); err != nil {
			return -1
		}
		b, _ := io.ReadAll(tr)
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return -1
		}
		return n
	}
	waitFor(t, 10*time.Second, "the counter", func() bool { return counter() > 0 })
	if r := e.berth("pause", "pz"); r.Code != 0 || r.Out != "pz\n" {
		t.Fatalf("pause: %s", r)
	}
	if got := e.must("ps", "--format", "{{.Names}} {{.Status}}"); !strings.HasPrefix(got, "pz Up") || !strings.Contains(got, "(Paused)") {
		t.Errorf("ps of a paused container: %q, want \"pz Up ... (Paused)\"", got)
	}
	if d := e.inspect("pz"); d.State.Status != "paused" || !d.State.Paused || !d.State.Running {
		t.Errorf("inspect of a paused container: %+v", d.State)
	}
	if fs := cgroupFile(t, id, "freezer", "freezer.state"); fs != "FROZEN" {
		t.Errorf("freezer.state %q, want FROZEN", fs)
	}
	n1 := counter()
	time.Sleep(400 * time.Millisecond)
	if n2 := counter(); n2 != n1 {
		t.Errorf("the paused container kept running: counter %d -> %d", n1, n2)
	}
	if r := e.berth("pause", "pz"); r.Code != 1 {
		t.Errorf("pause of a paused container: %s\nwant exit 1", r)
	}
	if r := e.berth("unpause", "pz"); r.Code != 0 || r.Out != "pz\n" {
		t.Fatalf("unpause: %s", r)
	}
	if got := e.must("ps", "--format", "{{.Status}}"); strings.Contains(got, "Paused") || !strings.HasPrefix(got, "Up") {
		t.Errorf("ps after unpause: %q", got)
	}
	waitFor(t, 5*time.Second, "the counter to move after unpause", func() bool { return counter() > n1 })
	if r := e.berth("unpause", "pz"); r.Code != 1 {
		t.Errorf("unpause of a running container: %s\nwant exit 1", r)
	}
	// A paused container can be stopped and removed.
	e.must("pause", "pz")
	if r := e.berth("rm", "-f", "pz"); r.Code != 0 {
		t.Errorf("rm -f of a paused container: %s", r)
	}
	e.checkClean("after rm -f of a paused container")
}

func TestRmRename(t *testing.T) {
	t.Parallel()
	e := newBusyboxEnv(t)
	e.mustID("run", "-d", "--name", "victim", "busybox", "sleep", "1000")
	r := e.berth("rm", "victim")
	if r.Code != 1 {
		t.Errorf("rm of a running container: %s\nwant exit 1", r)
	}
	oneLine(t, "rm of a running container", r)
	if st := e.status("victim"); st != "running" {
		t.Errorf("rm without -f touched the running container: %q", st)
	}
	if r := e.berth("rm", "-f", "victim"); r.Code != 0 || r.Out != "victim\n" {
		t.Errorf("rm -f: %s", r)
	}
	if r := e.berth("inspect", "victim"); r.Code != 1 {
		t.Errorf("inspect of a removed container: %s\nwant exit 1", r)
	}
	if r := e.berth("rm", "victim"); r.Code != 1 {
		t.Errorf("rm of a missing container: %s\nwant exit 1", r)
	}
	if r := e.berth("rm", "-f", "victim"); r.Code != 0 {
		t.Errorf("rm -f of a missing container: %s\nwant exit 0 (docker is quiet)", r)
	}

	// rm -v removes the container's anonymous volumes; plain rm keeps them.
	e.mustID("run", "-d", "--name", "withvol", "-v", "/data", "busybox", "sleep", "1000")
	vols := strings.Fields(e.must("volume", "ls", "-q"))
	if len(vols) != 1 || !fullID.MatchString(vols[0]) {
		t.Fatalf("volume ls after -v /data: %v, want one anonymous volume", vols)
	}
	if d := e.inspect("withvol"); len(d.Mounts) != 1 || d.Mounts[0].Type != "volume" || d.Mounts[0].Name != vols[0] || d.Mounts[0].Destination != "/data" {
		t.Errorf("inspect Mounts: %+v", d.Mounts)
	}
	if r := e.berth("rm", "-f", "-v", "withvol"); r.Code != 0 {
		t.Errorf("rm -f -v: %s", r)
	}
	if got := e.must("volume", "ls", "-q"); got != "" {
		t.Errorf("rm -v left the anonymous volume: %q", got)
	}
	e.mustID("run", "-d", "--name", "keepvol", "-v", "/data", "busybox", "true")
	e.waitExited("keepvol", 10*time.Second)
	e.must("rm", "keepvol")
	if got := strings.Fields(e.must("volume", "ls", "-q")); len(got) != 1 {
		t.Errorf("rm without -v removed the anonymous volume: %v", got)
	}

	// rename
	id := e.mustID("create", "--name", "old", "busybox", "true")
	e.mustID("create", "--name", "taken", "busybox", "true")
	if r := e.berth("rename", "old", "new"); r.Code != 0 || r.Out != "" {
		t.Errorf("rename: %s", r)
	}
	if d := e.inspect("new"); d.ID != id || d.Name != "/new" {
		t.Errorf("after rename: %s %s", d.ID, d.Name)
	}
	if r := e.berth("inspect", "old"); r.Code != 1 {
		t.Errorf("the old name still resolves: %s", r)
	}
	r = e.berth("rename", "new", "taken")
	if r.Code != 1 || !strings.Contains(r.Err, "already in use") {
		t.Errorf("rename to a name in use: %s\nwant exit 1, \"already in use\"", r)
	}
	oneLine(t, "rename to a name in use", r)
	if d := e.inspect("new"); d.Name != "/new" {
		t.Errorf("a failed rename changed the name to %s", d.Name)
	}
	if r := e.berth("rename", "nosuch", "other"); r.Code != 1 {
		t.Errorf("rename of a missing container: %s", r)
	}
	// The old name is free again.
	e.mustID("create", "--name", "old", "busybox", "true")
	names := lines(e.must("ps", "-a", "--format", "{{.Names}}"))
	slices.Sort(names)
	if !slices.Equal(names, []string{"new", "old", "taken"}) {
		t.Errorf("ps -a names: %v", names)
	}
}

func TestPs(t *testing.T) {
	t.Parallel()
	e := newBusyboxEnv(t)
	alpha := e.mustID("run", "-d", "--name", "alpha", "-l", "tier=front", "busybox", "true")
	e.waitExited("alpha", 10*time.Second)
	bravo := e.mustID("run", "-d", "--name", "bravo", "-l", "tier=back", "busybox", "sh", "-c", "exit 3")
	e.waitExited("bravo", 10*time.Second)
	charlie := e.mustID("run", "-d", "--name", "charlie", "-l", "tier=front", "busybox", "sleep", "1000")

	check := func(want []string, args ...string) {
		t.Helper()
		got := lines(e.must(append([]string{"ps"}, args...)...))
		if !slices.Equal(got, want) {
			t.Errorf("ps %s:\n got %q\nwant %q", strings.Join(args, " "), got, want)
		}
	}
	short := func(ids ...string) []string {
		var out []string
		for _, id := range ids {
			out = append(out, id[:12])
		}
		return out
	}
	check(short(charlie), "-q")
	check(short(charlie, bravo, alpha), "-a", "-q")
	check([]string{charlie, bravo, alpha}, "-a", "-q", "--no-trunc")
	check(short(charlie, bravo), "-n", "2", "-q")
	check(short(charlie), "-l", "-q")
	check([]string{"bravo", "alpha"}, "-a", "--filter", "status=exited", "--format", "{{.Names}}")
	check([]string{"charlie"}, "-a", "--filter", "status=running", "--format", "{{.Names}}")
	check([]string{"bravo"}, "-a", "--filter", "name=rav", "--format", "{{.Names}}")
	check([]string{"charlie", "alpha"}, "-a", "--filter", "label=tier=front", "--format", "{{.Names}}")
	check([]string{"charlie", "bravo", "alpha"}, "-a", "--filter", "label=tier", "--format", "{{.Names}}")
	check([]string{"bravo"}, "-a", "--filter", "exited=3", "--format", "{{.Names}}")
	check([]string{"alpha"}, "-a", "--filter", "label=tier=front", "--filter", "status=exited", "--format", "{{.Names}}")
	check([]string{"charlie", "alpha"}, "-a", "--filter", "name=alpha", "--filter", "name=charlie", "--format", "{{.Names}}")
	check([]string{charlie[:12] + " busybox"}, "--format", "{{.ID}} {{.Image}}")
	check([]string{"tier=front"}, "--format", "{{.Labels}}")

	st := lines(e.must("ps", "-a", "--format", "{{.Names}}\t{{.Status}}"))
	if len(st) != 3 || !strings.HasPrefix(st[0], "charlie\tUp ") || !strings.HasPrefix(st[1], "bravo\tExited (3) ") || !strings.HasPrefix(st[2], "alpha\tExited (0) ") {
		t.Errorf("ps -a statuses: %q", st)
	}
	tbl := lines(e.must("ps"))
	header := regexp.MustCompile(`^CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES$`)
	if len(tbl) != 2 || !header.MatchString(tbl[0]) {
		t.Fatalf("ps table:\n%s", strings.Join(tbl, "\n"))
	}
	row := regexp.MustCompile(`^` + charlie[:12] + `\s+busybox\s+"sleep 1000"\s+.+ ago\s+Up .+\s+charlie$`)
	if !row.MatchString(tbl[1]) {
		t.Errorf("ps row %q does not match %s", tbl[1], row)
	}
	if r := e.berth("ps", "--filter", "bogus=1"); r.Code == 0 {
		t.Errorf("ps --filter bogus=1: %s\nwant a failure", r)
	}
}

func TestInspect(t *testing.T) {
	t.Parallel()
	e := newBusyboxEnv(t)
	host := filepath.Join(e.dir, "hostdir")
	os.Mkdir(host, 0o755)
	id := e.mustID("run", "-d", "--name", "insp", "-m", "64m", "-v", host+":/d:ro", "-e", "FOO=bar", "busybox", "sleep", "1000")
	d := e.inspect("insp")
	if d.ID != id || d.Name != "/insp" || d.Path != "sleep" || !slices.Equal(d.Args, []string{"1000"}) {
		t.Errorf("Id %s Name %s Path %s Args %v", d.ID, d.Name, d.Path, d.Args)
	}
	if d.State.Status != "running" || !d.State.Running || d.State.Pid <= 0 || d.State.ExitCode != 0 || d.State.FinishedAt != "0001-01-01T00:00:00Z" {
		t.Errorf("State of a running container: %+v", d.State)
	}
	if started := parseTime(t, "StartedAt", d.State.StartedAt); time.Since(started) > time.Minute || time.Until(started) > time.Second {
		t.Errorf("StartedAt %v is not now", started)
	}
	if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", d.State.Pid)); !bytes.HasPrefix(cmdline, []byte("sleep\x001000")) {
		t.Errorf("State.Pid %d is %q, not the container's sleep", d.State.Pid, cmdline)
	}
	if procs := cgroupFile(t, id, "memory", "cgroup.procs"); !slices.Contains(strings.Fields(procs), strconv.Itoa(d.State.Pid)) {
		t.Errorf("State.Pid %d is not in the container's cgroup (%q)", d.State.Pid, procs)
	}
	if d.Config.Image != "busybox" || !slices.Contains(d.Config.Env, "FOO=bar") || !slices.Equal(d.Config.Cmd, []string{"sleep", "1000"}) {
		t.Errorf("Config: %+v", d.Config)
	}
	imgID := strings.TrimSpace(e.must("images", "-q", "--no-trunc", "busybox"))
	if d.Image != imgID {
		t.Errorf("Image %s, want the image id %s", d.Image, imgID)
	}
	if d.HostConfig.Memory != 64<<20 {
		t.Errorf("HostConfig.Memory %d", d.HostConfig.Memory)
	}
	if lim := cgroupFile(t, id, "memory", "memory.limit_in_bytes"); lim != strconv.Itoa(64<<20) {
		t.Errorf("memory.limit_in_bytes %s, want %d", lim, 64<<20)
	}
	if len(d.Mounts) != 1 || d.Mounts[0].Type != "bind" || d.Mounts[0].Source != host || d.Mounts[0].Destination != "/d" || d.Mounts[0].RW {
		t.Errorf("Mounts: %+v", d.Mounts)
	}
	// --format templates see docker's JSON field names.
	for tmpl, want := range map[string]string{
		"{{.Id}}":                  id,
		"{{.State.Pid}}":           strconv.Itoa(d.State.Pid),
		"{{json .State.Running}}":  "true",
		"{{.Name}}":                "/insp",
		"{{.Config.Image}}":        "busybox",
		"{{.HostConfig.Memory}}":   strconv.Itoa(64 << 20),
		"{{(index .Mounts 0).RW}}": "false",
	} {
		if r := e.berth("inspect", "-f", tmpl, "insp"); r.Code != 0 || strings.TrimSpace(r.Out) != want {
			t.Errorf("inspect -f %s: %s\nwant %q", tmpl, r, want)
		}
	}
	// Stopped: no pid, a finish time.
	e.must("stop", "-t", "1", "insp")
	d = e.inspect("insp")
	if d.State.Status != "exited" || d.State.Running || d.State.Pid != 0 || d.State.ExitCode != 137 {
		t.Errorf("State after stop: %+v", d.State)
	}
	if f, s := parseTime(t, "FinishedAt", d.State.FinishedAt), parseTime(t, "StartedAt", d.State.StartedAt); !f.After(s) {
		t.Errorf("FinishedAt %v not after StartedAt %v", f, s)
	}
	// Several at once, and a missing one.
	e.mustID("create", "--name", "other", "busybox", "true")
	var docs []inspectDoc
	if err := json.Unmarshal([]byte(e.must("inspect", "insp", "other")), &docs); err != nil || len(docs) != 2 {
		t.Errorf("inspect of two: %v %d", err, len(docs))
	}
	r := e.berth("inspect", "nosuch")
	if r.Code != 1 || strings.TrimSpace(r.Out) != "[]" {
		t.Errorf("inspect nosuch: %s\nwant exit 1 and []", r)
	}
}

func TestLogs(t *testing.T) {
	t.Parallel()
	e := newBusyboxEnv(t)
	e.mustID("run", "-d", "--name", "lg", "busybox", "sh", "-c", "for i in 1 2 3 4 5; do echo line$i; done; sleep 0.2; echo oops >&2")
	e.waitExited("lg", 10*time.Second)
	if r := e.berth("logs", "lg"); r.Code != 0 || r.Out != "line1\nline2\nline3\nline4\nline5\n" || r.Err != "oops\n" {
		t.Errorf("logs: %s", r)
	}
	if r := e.berth("logs", "--tail", "2", "lg"); r.Out != "line5\n" || r.Err != "oops\n" {
		t.Errorf("logs --tail 2: %s", r)
	}
	if r := e.berth("logs", "-n", "0", "lg"); r.Out != "" || r.Err != "" {
		t.Errorf("logs -n 0: %s", r)
	}
	r := e.berth("logs", "-t", "lg")
	ts := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z line\d$`)
	if ls := lines(r.Out); len(ls) != 5 || !ts.MatchString(ls[0]) || !ts.MatchString(ls[4]) {
		t.Errorf("logs -t: %q", r.Out)
	} else if tm, err := time.Parse(time.RFC3339Nano, strings.Fields(ls[0])[0]); err != nil || time.Since(tm) > time.Minute {
		t.Errorf("logs -t time %q: %v", ls[0], err)
	}

	e.mustID("run", "-d", "--name", "ss", "busybox", "sh", "-c", "echo early; sleep 2; echo late; sleep 1000")
	e.waitLog("ss", "early", 10*time.Second)
	mid := time.Now()
	e.waitLog("ss", "late", 10*time.Second)
	if r := e.berth("logs", "--since", mid.Format(time.RFC3339Nano), "ss"); r.Out != "late\n" {
		t.Errorf("logs --since RFC 3339: %s", r)
	}
	if r := e.berth("logs", "--since", fmt.Sprintf("%d.%09d", mid.Unix(), mid.Nanosecond()), "ss"); r.Out != "late\n" {
		t.Errorf("logs --since unix time: %s", r)
	}
	if r := e.berth("logs", "--until", mid.Format(time.RFC3339Nano), "ss"); r.Out != "early\n" {
		t.Errorf("logs --until: %s", r)
	}
	if r := e.berth("logs", "--since", "1h", "ss"); r.Out != "early\nlate\n" {
		t.Errorf("logs --since 1h: %s", r)
	}
	if r := e.berth("logs", "nosuch"); r.Code != 1 {
		t.Errorf("logs nosuch: %s", r)
	}
}

func TestExec(t *testing.T) {
	t.Parallel()
	e := newBusyboxEnv(t)
	e.mustID("run", "-d", "--name", "ex", "-e", "FROMRUN=1", "busybox", "sleep", "1000")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-e", "FOO=bar", "ex", "sh", "-c", "echo $FOO $FROMRUN"}, "bar 1\n"},
		{[]string{"-u", "nobody", "ex", "id"}, "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n"},
		{[]string{"-u", "1000", "ex", "id", "-un"}, "app\n"},
		{[]string{"-u", "app:root", "ex", "id", "-g"}, "0\n"},
		{[]string{"-w", "/tmp", "ex", "pwd"}, "/tmp\n"},
		{[]string{"ex", "pwd"}, "/\n"},
		{[]string{"ex", "hostname"}, e.id("ex")[:12] + "\n"},
	} {
		if r := e.berth(append([]string{"exec"}, c.args...)...); r.Code != 0 || r.Out != c.want {
			t.Errorf("exec %s: %s\nwant %q", strings.Join(c.args, " "), r, c.want)
		}
	}
	if r := e.berth("exec", "ex", "sh", "-c", "echo to-err >&2; exit 5"); r.Code != 5 || r.Err != "to-err\n" {
		t.Errorf("exec exit code: %s\nwant exit 5, stderr to-err", r)
	}
	if r := e.berthIn(strings.NewReader("piped\n"), time.Minute, "exec", "-i", "ex", "cat"); r.Code != 0 || r.Out != "piped\n" {
		t.Errorf("exec -i: %s", r)
	}
	if r := e.berthIn(strings.NewReader("piped\n"), time.Minute, "exec", "ex", "cat"); r.Code != 0 || r.Out != "" {
		t.Errorf("exec without -i must not pass stdin: %s", r)
	}
	if r := e.berth("exec", "ex", "nonexistent-cmd"); r.Code != 126 && r.Code != 127 {
		t.Errorf("exec of a missing command: %s\nwant 126 or 127", r)
	}
	r := e.berth("exec", "-d", "ex", "sh", "-c", "sleep 0.3; touch /tmp/detached")
	if r.Code != 0 || r.Dur > 2*time.Second {
		t.Errorf("exec -d: %s", r)
	}
	waitFor(t, 5*time.Second, "the detached exec", func() bool { return e.berth("exec", "ex", "test", "-f", "/tmp/detached").Code == 0 })
	e.must("stop", "-t", "1", "ex")
	r = e.berth("exec", "ex", "true")
	if r.Code == 0 || !strings.Contains(r.Err, "not running") {
		t.Errorf("exec in a stopped container: %s\nwant a failure saying it is not running", r)
	}
	oneLine(t, "exec in a stopped container", r)
}

func TestTopStats(t *testing.T) {
	t.Parallel()
	e := newBusyboxEnv(t)
	e.mustID("run", "-d", "--name", "ts", "-m", "64m", "busybox", "sh", "-c", "sleep 1000 & sleep 1001; echo done")
	var top []string
	waitFor(t, 10*time.Second, "top to list the three processes", func() bool {
		top = lines(e.must("top", "ts"))
		return len(top) == 4
	})
	if !strings.Contains(top[0], "PID") || !strings.Contains(top[0], "CMD") {
		t.Errorf("top header %q", top[0])
	}
	all := strings.Join(top, "\n")
	for _, want := range []string{"sleep 1000", "sleep 1001", "sh -c"} {
		if !strings.Contains(all, want) {
			t.Errorf("top lacks %q:\n%s", want, all)
		}
	}
	out := e.must("stats", "--no-stream", "--format", "{{.Name}}|{{.MemUsage}}|{{.PIDs}}|{{.CPUPerc}}|{{.MemPerc}}", "ts")
	f := strings.Split(strings.TrimSpace(out), "|")
	if len(f) != 5 || f[0] != "ts" || !strings.HasSuffix(f[1], " / 64MiB") || f[2] != "3" || !strings.HasSuffix(f[3], "%") || !strings.HasSuffix(f[4], "%") {
		t.Errorf("stats --no-stream --format: %q", out)
	}
	tbl := lines(e.must("stats", "--no-stream"))
	header := regexp.MustCompile(`^CONTAINER ID\s+NAME\s+CPU %\s+MEM USAGE / LIMIT\s+MEM %\s+NET I/O\s+BLOCK I/O\s+PIDS$`)
	if len(tbl) != 2 || !header.MatchString(tbl[0]) || !strings.Contains(tbl[1], " ts ") {
		t.Errorf("stats --no-stream table:\n%s", strings.Join(tbl, "\n"))
	}
	if r := e.berth("top", "nosuch"); r.Code == 0 {
		t.Errorf("top nosuch: %s", r)
	}
}

func TestCp(t *testing.T) {
	t.Parallel()
	e := newBusyboxEnv(t)
	e.mustID("run", "-d", "--name", "cp", "busybox", "sh", "-c", "echo inside > /tmp/in.txt; mkdir -p /tmp/d/sub; echo deep > /tmp/d/sub/f; ln -s / /tmp/esc; sleep 1000")
	waitFor(t, 10*time.Second, "the container's files", func() bool { return e.berth("exec", "cp", "test", "-L", "/tmp/esc").Code == 0 })
	hostFile := filepath.Join(e.dir, "h.txt")
	os.WriteFile(hostFile, []byte("from host\n"), 0o644)

	// host -> container
	if r := e.berth("cp", hostFile, "cp:/tmp/h.txt"); r.Code != 0 {
		t.Fatalf("cp to the container: %s", r)
	}
	if got := e.exec("cp", "cat", "/tmp/h.txt"); got != "from host\n" {
		t.Errorf("copied in: %q", got)
	}
	// container -> host: a file, a directory
	e.must("cp", "cp:/tmp/in.txt", filepath.Join(e.dir, "out.txt"))
	if b, _ := os.ReadFile(filepath.Join(e.dir, "out.txt")); string(b) != "inside\n" {
		t.Errorf("copied out: %q", b)
	}
	e.must("cp", "cp:/tmp/d", filepath.Join(e.dir, "dcopy"))
	if b, _ := os.ReadFile(filepath.Join(e.dir, "dcopy", "sub", "f")); string(b) != "deep\n" {
		t.Errorf("directory copied out: %q", b)
	}
	// container -> tar on stdout
	r := e.berth("cp", "cp:/tmp/d", "-")
	if r.Code != 0 {
		t.Fatalf("cp to -: %s", r)
	}
	got := tarFiles(t, []byte(r.Out))
	if got["d/sub/f"] != "deep\n" || !hasKey(got, "d/") || !hasKey(got, "d/sub/") {
		t.Errorf("cp CTR:/tmp/d - gave %v", got)
	}
	// tar on stdin -> container
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "x/", Mode: 0o755})
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "x/y.txt", Mode: 0o600, Size: 6})
	tw.Write([]byte("tarred"))
	tw.Close()
	if r := e.berthIn(bytes.NewReader(tb.Bytes()), time.Minute, "cp", "-", "cp:/tmp"); r.Code != 0 {
		t.Fatalf("cp - CTR:/tmp: %s", r)
	}
	if got := e.exec("cp", "cat", "/tmp/x/y.txt"); got != "tarred" {
		t.Errorf("from the tar stream: %q", got)
	}
	// A symlink inside the container never leads out of its root.
	name := filepath.Base(e.dir) + "-escape"
	if r := e.berth("cp", hostFile, "cp:/tmp/esc/"+name); r.Code != 0 {
		t.Errorf("cp through an in-container symlink to /: %s", r)
	}
	if fileExists("/" + name) {
		os.Remove("/" + name)
		t.Fatalf("cp followed the container's symlink out to the host's /%s", name)
	}
	if got := e.exec("cp", "cat", "/"+name); got != "from host\n" {
		t.Errorf("the file copied through /tmp/esc should be /%s in the container: %q", name, got)
	}
	// A stopped container can be copied from.
	e.must("stop", "-t", "1", "cp")
	e.must("cp", "cp:/tmp/in.txt", filepath.Join(e.dir, "out2.txt"))
	if b, _ := os.ReadFile(filepath.Join(e.dir, "out2.txt")); string(b) != "inside\n" {
		t.Errorf("copied out of a stopped container: %q", b)
	}
	if r := e.berth("cp", "cp:/nonexistent", e.dir); r.Code == 0 {
		t.Errorf("cp of a missing path: %s", r)
	}
}

func hasKey(m map[string]string, k string) bool { _, ok := m[k]; return ok }

// tarFiles reads a tar stream: name -> content ("" for directories).
func tarFiles(t *testing.T, b []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("tar: %v", err)
		}
		c, _ := io.ReadAll(tr)
		out[strings.TrimPrefix(h.Name, "./")] = string(c)
	}
}

func TestDiffCommitExport(t *testing.T) {
	t.Parallel()
	e := newBusyboxEnv(t)
	e.must("run", "--name", "dc", "busybox", "sh", "-c", "echo new > /newfile; echo more:x:1:1::/:/bin/sh >> /etc/passwd; rm /bin/vi; mkdir /newdir")
	got := lines(e.must("diff", "dc"))
	want := []string{"C /bin", "D /bin/vi", "C /etc", "C /etc/passwd", "A /newdir", "A /newfile"}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("diff:\n got %q\nwant %q", got, want)
	}
	out := strings.TrimSpace(e.must("commit", "-c", "ENV COMMITTED=yes", "-c", `CMD ["cat", "/newfile"]`, "-m", "a message", "dc", "img:committed"))
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(out) {
		t.Errorf("commit printed %q", out)
	}
	if r := e.berth("run", "--rm", "img:committed"); r.Code != 0 || r.Out != "new\n" {
		t.Errorf("run of the committed image (its CMD from --change): %s", r)
	}
	r := e.berth("run", "--rm", "img:committed", "sh", "-c", "echo $COMMITTED; test -e /bin/vi || echo no-vi; tail -1 /etc/passwd; test -d /newdir && echo dir")
	if r.Code != 0 || r.Out != "yes\nno-vi\nmore:x:1:1::/:/bin/sh\ndir\n" {
		t.Errorf("the committed image's content and env: %s", r)
	}
	// export
	exp := filepath.Join(e.dir, "export.tar")
	e.must("export", "-o", exp, "dc")
	b, err := os.ReadFile(exp)
	if err != nil {
		t.Fatal(err)
	}
	files := tarFiles(t, b)
	if files["newfile"] != "new\n" || !hasKey(files, "bin/busybox") || hasKey(files, "bin/vi") || !hasKey(files, "newdir/") {
		t.Errorf("export: newfile %q, bin/busybox %v, bin/vi %v, newdir/ %v", files["newfile"], hasKey(files, "bin/busybox"), hasKey(files, "bin/vi"), hasKey(files, "newdir/"))
	}
	// to stdout, and `tar t` reads it
	r = e.berth("export", "dc")
	if r.Code != 0 {
		t.Fatalf("export to stdout: %s", r)
	}
	tt := exec.Command("tar", "t")
	tt.Stdin = strings.NewReader(r.Out)
	list, err := tt.Output()
	if err != nil || !strings.Contains(string(list), "newfile") {
		t.Errorf("export | tar t: %v %s", err, list)
	}
}

func TestContainerPrune(t *testing.T) {
	t.Parallel()
	e := newBusyboxEnv(t)
	e.mustID("run", "-d", "--name", "run1", "busybox", "sleep", "1000")
	ex := e.mustID("run", "-d", "--name", "ex1", "busybox", "true")
	cr := e.mustID("create", "--name", "cr1", "busybox", "true")
	e.waitExited("ex1", 10*time.Second)
	out := e.must("container", "prune", "-f")
	if !strings.HasPrefix(out, "Deleted Containers:\n") || !strings.Contains(out, ex+"\n") || !strings.Contains(out, cr+"\n") || !strings.Contains(out, "Total reclaimed space: ") {
		t.Errorf("container prune -f:\n%s", out)
	}
	if got := e.must("ps", "-a", "--format", "{{.Names}}"); got != "run1\n" {
		t.Errorf("after prune: %q, want run1 only", got)
	}
	for _, id := range []string{ex, cr} {
		if fileExists(filepath.Join(e.root, "containers", id)) {
			t.Errorf("prune left the directory of %s", id[:12])
		}
	}
}

func TestEvents(t *testing.T) {
	t.Parallel()
	e := newBusyboxEnv(t)
	since := time.Now()
	follow := e.start(nil, "events", "--since", since.Format(time.RFC3339Nano), "--filter", "container=evt", "--format", "{{.Action}}")
	e.must("run", "--rm", "--name", "evt", "busybox", "true")
	waitFor(t, 10*time.Second, "--rm to remove evt", func() bool { return e.must("ps", "-a", "-q") == "" })
	until := time.Now()
	got := lines(e.must("events", "--since", since.Format(time.RFC3339Nano), "--until", until.Format(time.RFC3339Nano), "--filter", "container=evt", "--format", "{{.Action}}"))
	if !isSubsequence([]string{"create", "start", "die", "destroy"}, got) {
		t.Errorf("events --since --until: %q, want create, start, die, destroy in order", got)
	}
	waitFor(t, 5*time.Second, "events (following) to see the destroy", func() bool { return strings.Contains(follow.out.String(), "destroy") })
	if fl := lines(follow.out.String()); !slices.Equal(fl, got) {
		t.Errorf("followed events %q differ from the replayed ones %q", fl, got)
	}
	// The default rendering: time, type, action, id, attributes.
	plain := lines(e.must("events", "--since", since.Format(time.RFC3339Nano), "--until", until.Format(time.RFC3339Nano)))
	re := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}[+-]\d\d:\d\d container start [0-9a-f]{64} \(.*image=busybox.*name=evt.*\)$`)
	found := false
	for _, l := range plain {
		found = found || re.MatchString(l)
	}
	if !found {
		t.Errorf("no start line like docker's in:\n%s", strings.Join(plain, "\n"))
	}
	// --until in the past: nothing after it.
	if got := e.must("events", "--since", "1h", "--until", since.Format(time.RFC3339Nano), "--filter", "container=evt"); got != "" {
		t.Errorf("events --until before the container: %q", got)
	}
}

func isSubsequence(want, got []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

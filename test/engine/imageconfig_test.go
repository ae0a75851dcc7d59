package engine_test

// The image's config is honoured: Entrypoint/Cmd, Env, WorkingDir, User, Labels, Volumes,
// StopSignal, Healthcheck.

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

func TestImageEntrypointCmd(t *testing.T) {
	t.Parallel()
	e := newBusyboxEnv(t)
	e.importImage(busyboxTar, "ep:1", `ENTRYPOINT ["echo", "ep"]`, `CMD ["default"]`)
	e.importImage(busyboxTar, "cmd:1", `CMD ["echo", "from-cmd"]`)
	e.importImage(busyboxTar, "shellform:1", `ENTRYPOINT echo shellform $0`)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"ep:1"}, "ep default\n"},
		{[]string{"ep:1", "x", "y"}, "ep x y\n"},
		{[]string{"--entrypoint", "sh", "ep:1", "-c", "echo over"}, "over\n"},
		{[]string{"--entrypoint", "", "ep:1", "echo", "plain"}, "plain\n"},
		{[]string{"--entrypoint", "echo", "ep:1"}, "\n"}, // docker: --entrypoint clears the image's CMD
		{[]string{"cmd:1"}, "from-cmd\n"},
		{[]string{"cmd:1", "echo", "replaced"}, "replaced\n"},
		{[]string{"shellform:1", "arg0"}, "shellform arg0\n"},
	} {
		r := e.berth(append([]string{"run", "--rm"}, c.args...)...)
		if r.Code != 0 || r.Out != c.want {
			t.Errorf("run --rm %s: %s\nwant %q", strings.Join(c.args, " "), r, c.want)
		}
	}
	id := e.mustID("create", "ep:1", "a")
	if d := e.inspect(id); d.Path != "echo" || !slices.Equal(d.Args, []string{"ep", "a"}) || !slices.Equal(d.Config.Entrypoint, []string{"echo", "ep"}) || !slices.Equal(d.Config.Cmd, []string{"a"}) {
		t.Errorf("inspect: Path %q Args %q Entrypoint %q Cmd %q", d.Path, d.Args, d.Config.Entrypoint, d.Config.Cmd)
	}
}

func TestImageEnvWorkdirUserLabels(t *testing.T) {
	t.Parallel()
	e := newBusyboxEnv(t)
	e.importImage(busyboxTar, "cfg:1", "ENV FOO=bar", "ENV PATH=/custom:/usr/bin:/bin", "LABEL a=b", `CMD ["sh"]`)
	e.importImage(busyboxTar, "wd:1", "WORKDIR /work/dir", `CMD ["sh"]`) // not in the image: docker creates it
	e.importImage(busyboxTar, "nobody:1", "USER nobody", `CMD ["id"]`)
	e.importImage(busyboxTar, "app:1", "USER app", `CMD ["id"]`)
	e.importImage(busyboxTar, "uidgid:1", "USER 1000:65534", `CMD ["id"]`)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"cfg:1", "sh", "-c", "echo $FOO"}, "bar\n"},
		{[]string{"-e", "FOO=baz", "cfg:1", "sh", "-c", "echo $FOO"}, "baz\n"},
		{[]string{"cfg:1", "sh", "-c", "echo $PATH"}, "/custom:/usr/bin:/bin\n"},
		{[]string{"wd:1", "pwd"}, "/work/dir\n"},
		{[]string{"-w", "/tmp", "wd:1", "pwd"}, "/tmp\n"},
		{[]string{"cfg:1", "sh", "-c", "echo $HOME"}, "/root\n"},
		{[]string{"busybox", "sh", "-c", "echo $PATH"}, "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"},
		{[]string{"nobody:1"}, "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n"},
		{[]string{"nobody:1", "sh", "-c", "echo $HOME"}, "/nonexistent\n"},
		{[]string{"-u", "root", "nobody:1"}, "uid=0(root) gid=0(root) groups=0(root)\n"},
		{[]string{"app:1"}, "uid=1000(app) gid=1001(appgrp) groups=1001(appgrp)\n"},
		{[]string{"uidgid:1", "id", "-u"}, "1000\n"},
		{[]string{"uidgid:1", "id", "-g"}, "65534\n"},
		{[]string{"-u", "nobody:root", "busybox", "id", "-g"}, "0\n"},
	} {
		r := e.berth(append([]string{"run", "--rm"}, c.args...)...)
		if r.Code != 0 || r.Out != c.want {
			t.Errorf("run --rm %s: %s\nwant %q", strings.Join(c.args, " "), r, c.want)
		}
	}
	if r := e.berth("run", "--rm", "-u", "nosuchuser", "busybox", "true"); r.Code == 0 {
		t.Errorf("run -u nosuchuser: %s\nwant a failure", r)
	}
	e.mustID("create", "--name", "lab", "-l", "c=d", "cfg:1")
	d := e.inspect("lab")
	if d.Config.Labels["a"] != "b" || d.Config.Labels["c"] != "d" || !slices.Contains(d.Config.Env, "FOO=bar") {
		t.Errorf("inspect Config: %+v", d.Config)
	}
	e.mustID("create", "--name", "wd", "wd:1")
	if d := e.inspect("wd"); d.Config.WorkingDir != "/work/dir" {
		t.Errorf("inspect Config.WorkingDir %q", d.Config.WorkingDir)
	}
}

// An image VOLUME becomes an anonymous volume holding the image's content at that path.
func TestImageVolumeCopyUp(t *testing.T) {
	t.Parallel()
	e := newBusyboxEnv(t)
	tarball := filepath.Join(e.dir, "vol.tar")
	if err := testutil.WriteRootfsTar(tarball, bundleRootfs, map[string]string{"data/": "", "data/seed": "seeded\n"}); err != nil {
		t.Fatal(err)
	}
	e.importImage(tarball, "volimg:1", "VOLUME /data", `CMD ["sleep", "1000"]`)
	e.mustID("run", "-d", "--name", "vc", "volimg:1")
	d := e.inspect("vc")
	if len(d.Mounts) != 1 || d.Mounts[0].Type != "volume" || d.Mounts[0].Destination != "/data" || !fullID.MatchString(d.Mounts[0].Name) || !d.Mounts[0].RW {
		t.Fatalf("Mounts of an image VOLUME: %+v", d.Mounts)
	}
	if got := e.exec("vc", "cat", "/data/seed"); got != "seeded\n" {
		t.Errorf("image content in the volume: %q", got)
	}
	src := d.Mounts[0].Source
	if b, err := os.ReadFile(filepath.Join(src, "seed")); err != nil || string(b) != "seeded\n" {
		t.Errorf("the volume's Source %s lacks the copied-up seed: %v %q", src, err, b)
	}
	e.exec("vc", "sh", "-c", "echo written > /data/new")
	if b, _ := os.ReadFile(filepath.Join(src, "new")); string(b) != "written\n" {
		t.Errorf("a write to /data did not land in the volume: %q", b)
	}
	if vols := strings.Fields(e.must("volume", "ls", "-q")); !slices.Equal(vols, []string{d.Mounts[0].Name}) {
		t.Errorf("volume ls: %v", vols)
	}
	// -v on the same path replaces the image's volume.
	e.mustID("run", "-d", "--name", "vc2", "-v", "named:/data", "volimg:1")
	if d := e.inspect("vc2"); len(d.Mounts) != 1 || d.Mounts[0].Name != "named" {
		t.Errorf("-v named:/data over an image VOLUME: %+v", d.Mounts)
	}
	if got := e.exec("vc2", "cat", "/data/seed"); got != "seeded\n" {
		t.Errorf("named volume over an image VOLUME not copied up: %q", got)
	}
}

func TestStopSignal(t *testing.T) {
	t.Parallel()
	e := newBusyboxEnv(t)
	e.importImage(busyboxTar, "sig:1", "STOPSIGNAL SIGUSR1")
	script := "trap 'echo got USR1; exit 0' USR1; trap 'echo got USR2; exit 2' USR2; trap 'echo got TERM; exit 15' TERM; echo ready; while :; do sleep 0.1; done"
	e.mustID("run", "-d", "--name", "img-sig", "sig:1", "sh", "-c", script)
	e.mustID("run", "-d", "--name", "flag-sig", "--stop-signal", "USR2", "sig:1", "sh", "-c", script)
	e.mustID("run", "-d", "--name", "stop-timeout", "--stop-timeout", "1", "busybox", "sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.1; done")
	for _, n := range []string{"img-sig", "flag-sig", "stop-timeout"} {
		e.waitLog(n, "ready", 10*time.Second)
	}
	if d := e.inspect("img-sig"); d.Config.StopSignal != "SIGUSR1" {
		t.Errorf("Config.StopSignal %q, want the image's SIGUSR1", d.Config.StopSignal)
	}
	if r := e.berth("stop", "img-sig"); r.Code != 0 || r.Dur > 5*time.Second {
		t.Errorf("stop: %s", r)
	}
	if d := e.inspect("img-sig"); d.State.ExitCode != 0 || !strings.Contains(e.logs("img-sig"), "got USR1") {
		t.Errorf("the image's STOPSIGNAL was not used: exit %d, log %q", d.State.ExitCode, e.logs("img-sig"))
	}
	if r := e.berth("stop", "flag-sig"); r.Code != 0 || r.Dur > 5*time.Second {
		t.Errorf("stop: %s", r)
	}
	if d := e.inspect("flag-sig"); d.State.ExitCode != 2 || !strings.Contains(e.logs("flag-sig"), "got USR2") {
		t.Errorf("--stop-signal USR2 was not used: exit %d, log %q", d.State.ExitCode, e.logs("flag-sig"))
	}
	r := e.berth("stop", "stop-timeout")
	if r.Code != 0 || r.Dur < time.Second || r.Dur > 6*time.Second {
		t.Errorf("stop of a --stop-timeout 1 container that ignores TERM: %s\nwant about 1 s", r)
	}
}

func TestHealthcheck(t *testing.T) {
	t.Parallel()
	e := newBusyboxEnv(t)
	e.mustID("run", "-d", "--name", "hc", "--health-cmd", "test -f /tmp/ok", "--health-interval", "200ms", "--health-retries", "2", "--health-timeout", "2s", "busybox", "sleep", "1000")
	if d := e.inspect("hc"); d.State.Health == nil || d.State.Health.Status != "starting" && d.State.Health.Status != "unhealthy" {
		t.Errorf("State.Health right after the start: %+v", d.State.Health)
	}
	waitFor(t, 15*time.Second, "hc to be unhealthy", func() bool {
		d := e.inspect("hc")
		return d.State.Health != nil && d.State.Health.Status == "unhealthy"
	})
	d := e.inspect("hc")
	if d.State.Health.FailingStreak < 2 || len(d.State.Health.Log) == 0 || d.State.Health.Log[len(d.State.Health.Log)-1].ExitCode != 1 {
		t.Errorf("unhealthy State.Health: %+v", d.State.Health)
	}
	if ps := e.must("ps", "--format", "{{.Names}} {{.Status}}"); !strings.HasSuffix(strings.TrimSpace(ps), "(unhealthy)") {
		t.Errorf("ps of an unhealthy container: %q", ps)
	}
	if got := e.must("ps", "--filter", "health=unhealthy", "--format", "{{.Names}}"); got != "hc\n" {
		t.Errorf("ps --filter health=unhealthy: %q", got)
	}
	e.exec("hc", "touch", "/tmp/ok")
	waitFor(t, 15*time.Second, "hc to be healthy", func() bool {
		d := e.inspect("hc")
		return d.State.Health != nil && d.State.Health.Status == "healthy"
	})
	if d := e.inspect("hc"); d.State.Health.FailingStreak != 0 {
		t.Errorf("healthy FailingStreak %d", d.State.Health.FailingStreak)
	}
	if ps := e.must("ps", "--format", "{{.Status}}"); !strings.HasSuffix(strings.TrimSpace(ps), "(healthy)") {
		t.Errorf("ps of a healthy container: %q", ps)
	}
	if got := e.must("ps", "--filter", "health=healthy", "--format", "{{.Names}}"); got != "hc\n" {
		t.Errorf("ps --filter health=healthy: %q", got)
	}
	ev := e.must("events", "--since", "5m", "--until", "0s", "--filter", "container=hc", "--format", "{{.Action}}")
	if !strings.Contains(ev, "health_status: unhealthy") || !strings.Contains(ev, "health_status: healthy") {
		t.Errorf("events lack the health_status changes:\n%s", ev)
	}

	// The image's HEALTHCHECK (loaded from a docker archive), and --no-healthcheck.
	arch := filepath.Join(e.dir, "hc.tar")
	writeDockerArchive(t, arch, "hcimg:1", map[string]any{
		"Cmd":         []string{"sleep", "1000"},
		"Healthcheck": map[string]any{"Test": []string{"CMD-SHELL", "exit 0"}, "Interval": int64(200 * time.Millisecond), "Retries": 1},
	})
	e.must("load", "-i", arch)
	e.mustID("run", "-d", "--name", "imghc", "hcimg:1")
	e.mustID("run", "-d", "--name", "nohc", "--no-healthcheck", "hcimg:1")
	waitFor(t, 15*time.Second, "the image's health check to pass", func() bool {
		d := e.inspect("imghc")
		return d.State.Health != nil && d.State.Health.Status == "healthy"
	})
	if d := e.inspect("nohc"); d.State.Health != nil {
		t.Errorf("--no-healthcheck: State.Health %+v", d.State.Health)
	}
	// A container whose health check runs often stops at once when killed (the probes must
	// not hold up its exit).
	for i := range 5 {
		e.must("kill", "imghc")
		start := time.Now()
		e.waitExited("imghc", 60*time.Second)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("kill of a health-checked container: it took %v to exit (attempt %d)", d.Round(time.Millisecond), i+1)
			break
		}
		e.must("start", "imghc")
		time.Sleep(700 * time.Millisecond)
	}
	for _, n := range []string{"imghc", "hc"} {
		if r := e.berth("rm", "-f", n); r.Code != 0 || r.Dur > 5*time.Second {
			t.Errorf("rm -f of the health-checked running container %s: %s\nwant it gone within 5 s", n, r)
		}
	}
}

// writeDockerArchive writes a docker-archive (`docker save` format) of the busybox rootfs with
// the given container config.
func writeDockerArchive(t *testing.T, path, tag string, config map[string]any) {
	t.Helper()
	layer, err := os.ReadFile(busyboxTar)
	if err != nil {
		t.Fatal(err)
	}
	diff := sha256.Sum256(layer)
	cfg, _ := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"created":      "2024-01-01T00:00:00Z",
		"config":       config,
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + hex.EncodeToString(diff[:])}},
	})
	sum := sha256.Sum256(cfg)
	id := hex.EncodeToString(sum[:])
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	add := func(name string, b []byte) {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: time.Unix(1700000000, 0)})
		tw.Write(b)
	}
	add(id+".json", cfg)
	add("layer.tar", layer)
	m, _ := json.Marshal([]map[string]any{{"Config": id + ".json", "RepoTags": []string{tag}, "Layers": []string{"layer.tar"}}})
	add("manifest.json", m)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
}

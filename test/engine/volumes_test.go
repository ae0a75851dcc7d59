package engine_test

// Volumes: the volume commands, named volumes with copy-up, bind mounts, tmpfs.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

func TestVolumeCommands(t *testing.T) {
	t.Parallel()
	e := newBusyboxEnv(t)
	if out := e.must("volume", "create", "--label", "team=a", "vol1"); out != "vol1\n" {
		t.Errorf("volume create vol1 printed %q", out)
	}
	if out := e.must("volume", "create", "vol1"); out != "vol1\n" {
		t.Errorf("volume create of an existing volume (docker: idempotent) printed %q", out)
	}
	anon := strings.TrimSpace(e.must("volume", "create"))
	if !fullID.MatchString(anon) {
		t.Errorf("volume create without a name printed %q, want a 64-hex name", anon)
	}
	got := strings.Fields(e.must("volume", "ls", "-q"))
	slices.Sort(got)
	if want := []string{anon, "vol1"}; !slices.Equal(got, want) {
		t.Errorf("volume ls -q: %v, want %v", got, want)
	}
	tbl := lines(e.must("volume", "ls"))
	if len(tbl) != 3 || !regexp.MustCompile(`^DRIVER\s+VOLUME NAME$`).MatchString(tbl[0]) || !slices.ContainsFunc(tbl, regexp.MustCompile(`^local\s+vol1$`).MatchString) {
		t.Errorf("volume ls:\n%s", strings.Join(tbl, "\n"))
	}
	if got := e.must("volume", "ls", "-q", "--filter", "label=team=a"); got != "vol1\n" {
		t.Errorf("volume ls --filter label=team=a: %q", got)
	}
	var vi []struct {
		Name, Driver, Mountpoint, Scope, CreatedAt string
		Labels                                     map[string]string
	}
	if err := json.Unmarshal([]byte(e.must("volume", "inspect", "vol1")), &vi); err != nil || len(vi) != 1 {
		t.Fatalf("volume inspect: %v", err)
	}
	v := vi[0]
	if v.Name != "vol1" || v.Driver != "local" || v.Scope != "local" || v.Labels["team"] != "a" || !strings.HasPrefix(v.Mountpoint, e.root+"/") {
		t.Errorf("volume inspect: %+v", v)
	}
	if st, err := os.Stat(v.Mountpoint); err != nil || !st.IsDir() {
		t.Errorf("Mountpoint %s: %v", v.Mountpoint, err)
	}
	if _, err := time.Parse(time.RFC3339, v.CreatedAt); err != nil {
		t.Errorf("CreatedAt %q: %v", v.CreatedAt, err)
	}
	if out := e.must("volume", "inspect", "-f", "{{.Mountpoint}}", "vol1"); out != v.Mountpoint+"\n" {
		t.Errorf("volume inspect -f: %q", out)
	}
	if r := e.berth("volume", "inspect", "nosuch"); r.Code != 1 {
		t.Errorf("volume inspect nosuch: %s", r)
	}

	// A volume in use cannot be removed.
	e.mustID("run", "-d", "--name", "user", "-v", "vol1:/v", "busybox", "sleep", "1000")
	r := e.berth("volume", "rm", "vol1")
	if r.Code != 1 || !strings.Contains(r.Err, "in use") {
		t.Errorf("volume rm of a volume in use: %s\nwant exit 1, \"in use\"", r)
	}
	oneLine(t, "volume rm of a volume in use", r)
	e.must("rm", "-f", "user")
	if out := e.must("volume", "rm", "vol1"); out != "vol1\n" {
		t.Errorf("volume rm printed %q", out)
	}
	if fileExists(v.Mountpoint) {
		t.Errorf("volume rm left %s", v.Mountpoint)
	}
	if r := e.berth("volume", "rm", "vol1"); r.Code != 1 {
		t.Errorf("volume rm of a missing volume: %s", r)
	}

	// prune: anonymous unused volumes; -a: every unused volume; never one in use.
	e.must("run", "--name", "anonuser", "-v", "/data", "busybox", "true")
	anonVol := e.inspect("anonuser").Mounts[0].Name
	e.must("rm", "anonuser")
	e.must("volume", "create", "unused")
	e.mustID("run", "-d", "--name", "keeper", "-v", "used:/u", "busybox", "sleep", "1000")
	out := e.must("volume", "prune", "-f")
	if !strings.Contains(out, "Deleted Volumes:\n") || !strings.Contains(out, anonVol+"\n") || !strings.Contains(out, "Total reclaimed space:") || strings.Contains(out, "unused") || strings.Contains(out, "used\n") {
		t.Errorf("volume prune -f:\n%s", out)
	}
	got = strings.Fields(e.must("volume", "ls", "-q"))
	slices.Sort(got)
	if want := []string{anon, "unused", "used"}; !slices.Equal(got, want) {
		t.Errorf("after volume prune: %v, want %v", got, want)
	}
	e.must("volume", "prune", "-a", "-f")
	if got := e.must("volume", "ls", "-q"); got != "used\n" {
		t.Errorf("after volume prune -a: %q, want only the volume in use", got)
	}
}

func TestNamedVolumeCopyUp(t *testing.T) {
	t.Parallel()
	e := newBusyboxEnv(t)
	tarball := filepath.Join(e.dir, "seed.tar")
	if err := testutil.WriteRootfsTar(tarball, bundleRootfs, map[string]string{"data/": "", "data/seed": "seeded\n", "data/sub/": "", "data/sub/x": "x\n"}); err != nil {
		t.Fatal(err)
	}
	e.importImage(tarball, "seed:1", `CMD ["sh"]`)
	// First use: the image's content at the mount path fills the empty volume.
	r := e.berth("run", "--rm", "-v", "datavol:/data", "seed:1", "sh", "-c", "cat /data/seed /data/sub/x")
	if r.Code != 0 || r.Out != "seeded\nx\n" {
		t.Fatalf("a new named volume on /data: %s\nwant the image's /data in it", r)
	}
	mp := strings.TrimSpace(e.must("volume", "inspect", "-f", "{{.Mountpoint}}", "datavol"))
	if b, err := os.ReadFile(filepath.Join(mp, "sub", "x")); err != nil || string(b) != "x\n" {
		t.Errorf("the volume's directory lacks the copied-up files: %v %q", err, b)
	}
	// It outlives the container and keeps what was written.
	e.must("run", "--rm", "-v", "datavol:/data", "seed:1", "sh", "-c", "echo mine > /data/mine; rm /data/seed")
	if got := strings.TrimSpace(e.must("volume", "ls", "-q")); got != "datavol" {
		t.Errorf("volume ls after the --rm containers: %q", got)
	}
	if r := e.berth("run", "--rm", "-v", "datavol:/data", "seed:1", "sh", "-c", "cat /data/mine; test -e /data/seed || echo no-seed"); r.Out != "mine\nno-seed\n" {
		t.Errorf("a volume is copied up only when empty, and keeps its content: %s", r)
	}
	// Another image's content does not go into a used volume either.
	if r := e.berth("run", "--rm", "-v", "datavol:/etc", "busybox", "sh", "-c", "test -e /etc/passwd || echo no-passwd"); r.Out != "no-passwd\n" {
		t.Errorf("a non-empty volume got the image's content: %s", r)
	}
	// A volume that already holds files is not filled.
	e.must("volume", "create", "pre")
	pre := strings.TrimSpace(e.must("volume", "inspect", "-f", "{{.Mountpoint}}", "pre"))
	os.WriteFile(filepath.Join(pre, "marker"), []byte("x"), 0o644)
	if r := e.berth("run", "--rm", "-v", "pre:/data", "seed:1", "ls", "/data"); r.Out != "marker\n" {
		t.Errorf("a non-empty volume got the image's content: %s", r)
	}
	// --mount type=volume, and volume-nocopy.
	if r := e.berth("run", "--rm", "--mount", "type=volume,source=mvol,target=/data", "seed:1", "cat", "/data/seed"); r.Out != "seeded\n" {
		t.Errorf("--mount type=volume: %s", r)
	}
	if r := e.berth("run", "--rm", "--mount", "type=volume,source=nocopy,target=/data,volume-nocopy", "seed:1", "sh", "-c", "ls -A /data | wc -l"); r.Out != "0\n" {
		t.Errorf("--mount ...,volume-nocopy: %s", r)
	}
	if r := e.berth("run", "--rm", "-v", "ro:/data:ro", "seed:1", "touch", "/data/x"); r.Code == 0 {
		t.Errorf("write to a :ro volume succeeded: %s", r)
	}
}

func TestBindMounts(t *testing.T) {
	t.Parallel()
	e := newBusyboxEnv(t)
	// -v creates a missing host directory, as docker does.
	missing := filepath.Join(e.dir, "missing", "sub")
	if r := e.berth("run", "--rm", "-v", missing+":/d", "busybox", "sh", "-c", "echo x > /d/f"); r.Code != 0 {
		t.Fatalf("-v with a missing host dir: %s", r)
	}
	if b, err := os.ReadFile(filepath.Join(missing, "f")); err != nil || string(b) != "x\n" {
		t.Errorf("the created host dir: %v %q", err, b)
	}
	// --mount refuses a missing source, in one line, and creates nothing.
	gone := filepath.Join(e.dir, "gone")
	r := e.berth("run", "--mount", "type=bind,source="+gone+",target=/d", "busybox", "true")
	if r.Code != 125 || !strings.Contains(r.Err, gone) {
		t.Errorf("--mount with a missing source: %s\nwant exit 125 naming %s", r, gone)
	}
	oneLine(t, "--mount with a missing source", r)
	if fileExists(gone) {
		t.Errorf("--mount created its missing source %s", gone)
	}
	if got := e.must("ps", "-a", "-q"); got != "" {
		t.Errorf("the failed run left a container: %q", got)
	}
	// Read-only binds, --mount binds, a file bind.
	host := filepath.Join(e.dir, "host")
	os.Mkdir(host, 0o755)
	os.WriteFile(filepath.Join(host, "in"), []byte("hostdata\n"), 0o644)
	if r := e.berth("run", "--rm", "-v", host+":/d:ro", "busybox", "sh", "-c", "cat /d/in; touch /d/new 2>/dev/null || echo ro"); r.Out != "hostdata\nro\n" {
		t.Errorf("-v HOST:/d:ro: %s", r)
	}
	if r := e.berth("run", "--rm", "--mount", "type=bind,source="+host+",target=/d,readonly", "busybox", "sh", "-c", "cat /d/in; touch /d/new 2>/dev/null || echo ro"); r.Out != "hostdata\nro\n" {
		t.Errorf("--mount type=bind,readonly: %s", r)
	}
	if r := e.berth("run", "--rm", "-v", filepath.Join(host, "in")+":/etc/in.txt", "busybox", "cat", "/etc/in.txt"); r.Out != "hostdata\n" {
		t.Errorf("a file bind mount: %s", r)
	}
	if fileExists(filepath.Join(host, "new")) {
		t.Errorf("a read-only bind was written")
	}
	if r := e.berth("run", "--rm", "-v", "relative/path:/d", "busybox", "true"); r.Code != 125 {
		t.Errorf("-v with a relative host path that is not a volume name: %s\nwant 125", r)
	}
}

func TestTmpfs(t *testing.T) {
	t.Parallel()
	e := newBusyboxEnv(t)
	r := e.berth("run", "--rm", "--tmpfs", "/t:size=1m,mode=1770", "busybox", "sh", "-c",
		"df -k /t | tail -1 | awk '{print $2}'; stat -c %a /t; grep ' /t ' /proc/mounts | awk '{print $3}'; echo x > /t/f && cat /t/f")
	if r.Code != 0 || r.Out != "1024\n1770\ntmpfs\nx\n" {
		t.Errorf("--tmpfs /t:size=1m,mode=1770: %s\nwant 1024 KiB, mode 1770, tmpfs, writable", r)
	}
	r = e.berth("run", "--rm", "--mount", "type=tmpfs,target=/t2,tmpfs-size=2m,tmpfs-mode=0700", "busybox", "sh", "-c",
		"df -k /t2 | tail -1 | awk '{print $2}'; stat -c %a /t2")
	if r.Code != 0 || r.Out != "2048\n700\n" {
		t.Errorf("--mount type=tmpfs,tmpfs-size=2m,tmpfs-mode=0700: %s", r)
	}
	r = e.berth("run", "--rm", "--tmpfs", "/t", "busybox", "sh", "-c", "grep ' /t ' /proc/mounts")
	opts := strings.Split(strings.Fields(r.Out + " x x x x")[3], ",")
	for _, o := range []string{"rw", "nosuid", "nodev", "noexec"} {
		if !slices.Contains(opts, o) {
			t.Errorf("--tmpfs /t lacks docker's default option %s: %s", o, r)
		}
	}
	// What a container writes to a tmpfs is not part of its filesystem.
	e.must("run", "--name", "tw", "--tmpfs", "/t", "busybox", "sh", "-c", "echo x > /t/f")
	if d := e.must("diff", "tw"); strings.Contains(d, "/t/f") {
		t.Errorf("diff shows a tmpfs file: %q", d)
	}
}

package build_test

// The peer cross-check (issue 6, acceptance): every corpus case that builds is built by
// berth and by Debian's podman (buildah inside) on the same busybox rootfs tar imported with
// the same CMD, and the two images are compared: the config fields docker users see and
// the final file trees (every path's type, mode, owner, size and link target; no mtimes),
// each image flattened from its `save` archive. Every difference is logged; the test fails
// on those that peerAllowed does not list, each listed one with the reason it is expected.
//
// Podman runs on its own root, runroot and tmpdir in a temp dir of its own, with its own
// containers.conf and storage.conf (vfs; overlay for Debian), the cgroupfs manager, file
// events and locks, `--network none`, docker format (so that HEALTHCHECK, SHELL, ONBUILD and
// STOPSIGNAL are kept, as docker keeps them) and runc: crun refuses this hybrid-cgroup host
// ("cgroups in hybrid mode not supported"); see test/engines/podman_test.go.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/berth-dev/berth/internal/testutil"
)

// peerAllowed lists the differences between berth's and podman's images that are expected.
// case "" matches every case; key is a regexp on the difference's key ("config FIELD",
// "config Labels[KEY]" or "tree PATH").
var peerAllowed = []struct {
	cases []string
	key   string
	why   string
}{
	{nil, `^config Labels\[io\.buildah\.version\]$`,
		"buildah stamps its version on every image it builds; docker and berth add no label"},
	// Buildah makes the mount points of what it bind-mounts into a RUN container (the
	// container's /etc/hosts, /etc/resolv.conf and its /run/.containerenv) in the rootfs
	// and commits them with the RUN's layer when the image lacks them; docker's classic
	// builder and berth leave no such files behind.
	{nil, `^tree /run(/\.containerenv)?$`, "buildah's /run/.containerenv mount point of RUN containers (see above)"},
	{nil, `^tree /etc/(hosts|resolv\.conf|hostname)$`, "buildah's mount points of RUN containers (see above)"},
	// The busybox base has no Env. Docker's classic builder keeps the base's (empty) Env in
	// the image and gives RUN containers a default PATH only at run time, as berth does;
	// buildah (like BuildKit) writes its default PATH into the image's Env.
	{nil, `^config Env$`, "buildah adds a default PATH to an image whose base has none; docker's classic builder does not"},
	// The next two were seen with podman's default --layers=true (one commit per step); with
	// the --layers=false this test uses, buildah creates the WORKDIR too and they do not show.
	// Docker's WORKDIR creates the directory at once, even when nothing uses it later
	// (documented: "If the WORKDIR doesn't exist, it will be created even if it's not used
	// in any subsequent Dockerfile instruction"); buildah creates it lazily, when a RUN or
	// COPY needs it.
	{[]string{"env-expansion"}, `^tree /new$`, "buildah does not create an unused WORKDIR; docker does"},
	// Same cause: WORKDIR /srv/app then COPY --chown=builder ./ : docker's WORKDIR made
	// /srv root-owned before the COPY; in buildah the COPY creates /srv with its --chown owner.
	{[]string{"basics"}, `^tree /srv$`, "buildah's lazy WORKDIR lets COPY --chown create /srv (see above)"},
	// Docker applies SHELL to the shell forms of RUN, CMD and ENTRYPOINT (documented, and
	// dispatchCmd prepends getShell()); buildah uses SHELL for RUN only and /bin/sh -c for CMD.
	{[]string{"metadata"}, `^config Cmd$`, "buildah ignores SHELL for CMD's shell form; docker applies it"},
	// Docker expands EXPOSE ranges into single ports (nat.ParsePortSpecs); buildah keeps
	// "8000-8002/tcp" as one key.
	{[]string{"metadata"}, `^config ExposedPorts$`, "buildah keeps a port range as one key; docker lists each port"},
}

func allowed(caseName, key string) (string, bool) {
	for _, a := range peerAllowed {
		if len(a.cases) > 0 && !contains(a.cases, caseName) {
			continue
		}
		if regexp.MustCompile(a.key).MatchString(key) {
			return a.why, true
		}
	}
	return "", false
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

type podmanEnv struct {
	t      *testing.T
	bin    string
	dir    string
	global []string
	env    []string
	build  []string // flags of every build
}

func newPodman(t *testing.T, bin, driver string) *podmanEnv {
	// Short: podman refuses a runroot longer than 50 characters.
	dir, err := os.MkdirTemp("/tmp", "bpb-")
	if err != nil {
		t.Fatal(err)
	}
	var nofile, nproc syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &nofile)
	syscall.Getrlimit(6 /* RLIMIT_NPROC */, &nproc)
	lim := func(r syscall.Rlimit, def uint64) uint64 {
		if r.Max == 0 || r.Max > def {
			return def
		}
		return r.Max
	}
	nf, np := lim(nofile, 1048576), lim(nproc, 32768)
	// As test/engines: podman as root raises RLIMIT_NOFILE to 1048576 unless told, which
	// this host (no CAP_SYS_RESOURCE) refuses.
	conf := fmt.Sprintf(`[containers]
default_ulimits = ["nofile=%d:%d", "nproc=%d:%d"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
lock_type = "file"
image_copy_tmp_dir = %q
`, nf, nf, np, np, filepath.Join(dir, "vartmp"))
	storage := fmt.Sprintf("[storage]\ndriver = %q\ngraphroot = %q\nrunroot = %q\n", driver, filepath.Join(dir, "r"), filepath.Join(dir, "rr"))
	os.MkdirAll(filepath.Join(dir, "vartmp"), 0o700)
	os.WriteFile(filepath.Join(dir, "containers.conf"), []byte(conf), 0o644)
	os.WriteFile(filepath.Join(dir, "storage.conf"), []byte(storage), 0o644)
	p := &podmanEnv{t: t, bin: bin, dir: dir,
		global: []string{"--root", filepath.Join(dir, "r"), "--runroot", filepath.Join(dir, "rr"), "--tmpdir", filepath.Join(dir, "t"),
			"--storage-driver", driver, "--cgroup-manager", "cgroupfs", "--events-backend", "file"},
		env: []string{"CONTAINERS_CONF=" + filepath.Join(dir, "containers.conf"), "CONTAINERS_STORAGE_CONF=" + filepath.Join(dir, "storage.conf"),
			"TMPDIR=" + filepath.Join(dir, "vartmp")},
		// --layers=false: one commit per build instead of one per step (only the final
		// image is compared; its history is not).
		build: []string{"--format", "docker", "--pull=never", "--network", "none", "--layers=false",
			"--ulimit", fmt.Sprintf("nofile=%d:%d", nf, nf), "--ulimit", fmt.Sprintf("nproc=%d:%d", np, np)},
	}
	if runc, err := exec.LookPath("runc"); err == nil {
		p.global = append(p.global, "--runtime", runc)
	} else {
		p.build = append(p.build, "--isolation", "chroot")
	}
	t.Cleanup(func() {
		if r := p.run("ps", "-a", "--external", "-q"); strings.TrimSpace(r.out) != "" {
			t.Errorf("podman containers left: %q", r.out)
		}
		if driver != "vfs" { // overlay: podman keeps its layers' mounts until told
			p.run("rmi", "-a", "-f")
			p.run("system", "reset", "-f")
			testutil.UnmountUnder(dir)
		}
		os.RemoveAll(dir)
	})
	return p
}

func (p *podmanEnv) run(args ...string) result {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, p.bin, append(append([]string{}, p.global...), args...)...)
	c.Env = append(os.Environ(), p.env...)
	c.Dir = p.dir
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var out, errb strings.Builder
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	if err != nil && c.ProcessState == nil {
		p.t.Fatalf("podman %v: %v", args, err)
	}
	return result{out: out.String(), err: errb.String(), code: c.ProcessState.ExitCode()}
}

func (p *podmanEnv) must(args ...string) string {
	p.t.Helper()
	r := p.run(args...)
	if r.code != 0 {
		p.t.Fatalf("podman %s: %s", strings.Join(args, " "), r)
	}
	return r.out
}

// buildCase builds c in the context dir ctx as tag; safe to call from any goroutine.
func (p *podmanEnv) buildCase(c corpusCase, ctx, tag string) result {
	var flags []string
	for _, a := range c.buildArgs {
		flags = append(flags, "--build-arg", a)
	}
	flags = append(flags, p.build...)
	if c.parent != "" {
		if r := p.run(append(append([]string{"build", "-f", filepath.Join(ctx, c.parent), "-t", parentTag}, flags...), ctx)...); r.code != 0 {
			return r
		}
	}
	return p.run(append(append([]string{"build", "-f", filepath.Join(ctx, "Dockerfile"), "-t", tag}, flags...), ctx)...)
}

func (p *podmanEnv) save(ref string) savedImage {
	p.t.Helper()
	out := filepath.Join(p.dir, "save.tar")
	os.Remove(out)
	p.must("save", "--format", "docker-archive", "-o", out, ref)
	defer os.Remove(out)
	return readSaved(p.t, out)
}

// configDiffs compares the config fields docker users see.
func configDiffs(b, p v1.Config) map[string][2]string {
	d := map[string][2]string{}
	js := func(v any) string {
		if rv := reflect.ValueOf(v); !rv.IsValid() || ((rv.Kind() == reflect.Slice || rv.Kind() == reflect.Map || rv.Kind() == reflect.Pointer) && (rv.IsNil() || (rv.Kind() != reflect.Pointer && rv.Len() == 0))) {
			return "<none>"
		}
		j, _ := json.Marshal(v)
		return string(j)
	}
	for _, f := range []struct {
		name   string
		bv, pv any
	}{
		{"Env", b.Env, p.Env}, {"Cmd", b.Cmd, p.Cmd}, {"Entrypoint", b.Entrypoint, p.Entrypoint},
		{"WorkingDir", b.WorkingDir, p.WorkingDir}, {"User", b.User, p.User},
		{"ExposedPorts", b.ExposedPorts, p.ExposedPorts}, {"Volumes", b.Volumes, p.Volumes},
		{"StopSignal", b.StopSignal, p.StopSignal}, {"Healthcheck", b.Healthcheck, p.Healthcheck},
		{"OnBuild", b.OnBuild, p.OnBuild}, {"Shell", b.Shell, p.Shell},
	} {
		if x, y := js(f.bv), js(f.pv); x != y {
			d["config "+f.name] = [2]string{x, y}
		}
	}
	keys := map[string]bool{}
	for k := range b.Labels {
		keys[k] = true
	}
	for k := range p.Labels {
		keys[k] = true
	}
	for k := range keys {
		x, okx := b.Labels[k]
		y, oky := p.Labels[k]
		if x != y || okx != oky {
			sx, sy := fmt.Sprintf("%q", x), fmt.Sprintf("%q", y)
			if !okx {
				sx = "<none>"
			}
			if !oky {
				sy = "<none>"
			}
			d["config Labels["+k+"]"] = [2]string{sx, sy}
		}
	}
	return d
}

func (e treeEntry) String() string {
	s := fmt.Sprintf("%c %04o %d:%d", e.Type, e.Mode, e.UID, e.GID)
	if e.Type == '0' {
		s += fmt.Sprintf(" %dB", e.Size)
	}
	if e.Link != "" {
		s += " -> " + e.Link
	}
	return s
}

func treeDiffs(b, p map[string]treeEntry) map[string][2]string {
	d := map[string][2]string{}
	for k, x := range b {
		y, ok := p[k]
		switch {
		case !ok:
			d["tree "+k] = [2]string{x.String(), "<missing>"}
		case x != y:
			d["tree "+k] = [2]string{x.String(), y.String()}
		}
	}
	for k, y := range p {
		if _, ok := b[k]; !ok {
			d["tree "+k] = [2]string{"<missing>", y.String()}
		}
	}
	return d
}

func TestPeer(t *testing.T) { runPeer(t, false) }

// TestPeerDebian: the basics case (ENV, WORKDIR, USER, COPY, RUN) on the Debian minbase image.
func TestPeerDebian(t *testing.T) {
	if minbaseGz == "" {
		t.Skip("BERTH_MINBASE not set (make builds it)")
	}
	runPeer(t, true)
}

func runPeer(t *testing.T, debian bool) {
	bin, err := exec.LookPath("podman")
	if err != nil {
		t.Skip("podman not installed (scripts/install-deps.sh engines installs it)")
	}
	t.Parallel()
	e := newEnv(t)
	// vfs for busybox (2 MB: copying it per step is cheaper than overlay's mounts, and
	// nothing stays mounted); overlay for Debian, where vfs copies the 200 MB rootfs at every
	// step (minutes for one case). The cleanup unmounts what podman keeps mounted.
	driver := "vfs"
	if data, _ := os.ReadFile("/proc/filesystems"); debian && strings.Contains(string(data), "\toverlay\n") {
		driver = "overlay"
	}
	p := newPodman(t, bin, driver)
	t.Logf("podman: %s", strings.TrimSpace(p.must("version", "--format", "{{.Client.Version}}")))
	base := "busybox:latest"
	p.must("import", "-q", "-c", `CMD ["sh"]`, busyboxTar, base)
	if debian {
		base = "debian:latest"
		e.must("import", "-c", `CMD ["bash"]`, minbaseGz, base)
		p.must("import", "-q", "-c", `CMD ["bash"]`, minbaseGz, base)
	}
	// The two base images must agree before anything built on them can.
	if d := treeDiffs(saveImage(t, e, base).tree, p.save(base).tree); len(d) > 0 {
		t.Fatalf("the imported base images differ: %v", d)
	}
	// Podman's builds (vfs: a copy of the rootfs per step) take most of the time: they run
	// in the background, a few at a time, while berth builds the same contexts in turn. The
	// one case with a parent image goes first, alone: the parent's tag is shared.
	type podmanResult struct {
		ch chan result
	}
	podmanDone := map[string]podmanResult{}
	sem := make(chan struct{}, 6)
	var cases []corpusCase
	for _, c := range corpus {
		// Debian: the basics case only (ENV, WORKDIR, USER, COPY, RUN), for time.
		if c.wantErr != "" || c.noPeer != "" || (debian && c.name != "basics") {
			continue
		}
		cases = append(cases, c)
		prepareContext(t, c, filepath.Join(e.dir, "ctx-peer-"+c.name), debian)
		podmanDone[c.name] = podmanResult{make(chan result, 1)}
	}
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait) // before podman's dir goes, even when a subtest stopped early
	wg.Add(len(cases))
	go func() {
		for _, c := range cases {
			build := func(c corpusCase) {
				defer wg.Done()
				podmanDone[c.name].ch <- p.buildCase(c, filepath.Join(e.dir, "ctx-peer-"+c.name), "peer-"+c.name)
			}
			if c.parent != "" { // alone: another build must not see a half-built parent tag
				build(c)
				continue
			}
			sem <- struct{}{}
			go func(c corpusCase) {
				defer func() { <-sem }()
				build(c)
			}(c)
		}
	}()
	total, unexpected := 0, 0
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := &env{t: t, dir: e.dir, root: e.root, contextDir: e.contextDir}
			p := *p
			p.t = t
			tag := "peer-" + c.name
			if r := buildIn(e, c, filepath.Join(e.dir, "ctx-"+tag), tag); r.code != 0 {
				t.Fatalf("berth build: %s", r)
			}
			if r := <-podmanDone[c.name].ch; r.code != 0 {
				t.Fatalf("podman build: %s", r)
			}
			bs, ps := saveImage(t, e, tag), p.save(tag)
			diffs := configDiffs(bs.cfg.Config, ps.cfg.Config)
			if bs.cfg.Author != ps.cfg.Author {
				diffs["config Author"] = [2]string{bs.cfg.Author, ps.cfg.Author}
			}
			for k, v := range treeDiffs(bs.tree, ps.tree) {
				diffs[k] = v
			}
			keys := make([]string, 0, len(diffs))
			for k := range diffs {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				total++
				if why, ok := allowed(c.name, k); ok {
					t.Logf("allowed: %s: berth %s, podman %s (%s)", k, diffs[k][0], diffs[k][1], why)
					continue
				}
				unexpected++
				t.Errorf("%s: berth %s, podman %s", k, diffs[k][0], diffs[k][1])
			}
		})
	}
	t.Logf("%d differences, %d not in the allow-list", total, unexpected)
}

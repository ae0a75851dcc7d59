// Package build_test drives `berth build` end to end on the busybox test image. make sets
// BERTH_BIN, BERTH_RUNTIME and BERTH_BUNDLE; without them, or without root, it is skipped.
// Every test gets its own data root; at its end no container, mount or build snapshot may be
// left under it.
package build_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
	"github.com/berth-dev/berth/network"
)

var (
	berthBin, runtimeBin, baseDir, busyboxTar string
	minbaseGz                                 string // the Debian minbase tarball ("" skips the Debian cases)
)

func TestMain(m *testing.M) {
	skip := func(why string) {
		fmt.Fprintln(os.Stderr, "skipping the build tests:", why)
		os.Exit(0)
	}
	if os.Geteuid() != 0 {
		skip("they need root")
	}
	berthBin, runtimeBin = os.Getenv("BERTH_BIN"), os.Getenv("BERTH_RUNTIME")
	bundle := os.Getenv("BERTH_BUNDLE")
	if minbaseGz = os.Getenv("BERTH_MINBASE"); minbaseGz != "" {
		if abs, err := filepath.Abs(minbaseGz); err == nil {
			minbaseGz = abs
		}
	}
	if berthBin == "" || bundle == "" {
		skip("set BERTH_BIN and BERTH_BUNDLE (make does)")
	}
	var err error
	if baseDir, err = os.MkdirTemp("/tmp", "berth-build-e2e-"); err != nil {
		skip(err.Error())
	}
	// Copies: other work may rebuild bin/ meanwhile.
	src := filepath.Dir(berthBin)
	rt := runtimeBin
	if rt == "" {
		rt = filepath.Join(src, "berth-runtime")
	}
	bin := filepath.Join(baseDir, "bin")
	os.MkdirAll(bin, 0o755)
	for name, from := range map[string]string{"berth": berthBin, "berth-runtime": rt,
		"berth-monitor": filepath.Join(src, "berth-monitor"), "berth-init": filepath.Join(src, "berth-init")} {
		b, err := os.ReadFile(from)
		if err != nil {
			os.RemoveAll(baseDir)
			skip(err.Error())
		}
		os.WriteFile(filepath.Join(bin, name), b, 0o755)
	}
	berthBin, runtimeBin = filepath.Join(bin, "berth"), filepath.Join(bin, "berth-runtime")
	busyboxTar = filepath.Join(baseDir, "busybox.tar")
	if err := testutil.WriteRootfsTar(busyboxTar, filepath.Join(bundle, "rootfs"), map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1001:app:/home/app:/bin/sh\n",
		"etc/group":  "root:x:0:\nnogroup:x:65534:\nappgrp:x:1001:\n",
	}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if mps := testutil.MountsUnder(baseDir); len(mps) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: mounts left under %s: %v\n", baseDir, mps)
		testutil.UnmountUnder(baseDir)
		code = 1
	}
	os.RemoveAll(baseDir)
	os.Exit(code)
}

type env struct {
	t          *testing.T
	dir, root  string
	contextDir string
}

// newEnv is a data root with busybox:latest imported and an empty context directory.
func newEnv(t *testing.T) *env {
	t.Helper()
	dir, err := os.MkdirTemp(baseDir, strings.ReplaceAll(t.Name(), "/", "_")+"-")
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dir: dir, root: filepath.Join(dir, "root"), contextDir: filepath.Join(dir, "ctx")}
	os.MkdirAll(e.contextDir, 0o755)
	t.Cleanup(e.cleanup)
	e.must("import", "-c", `CMD ["sh"]`, busyboxTar, "busybox:latest")
	return e
}

func (e *env) cleanup() {
	if r := e.berth("ps", "-aq"); strings.TrimSpace(r.out) != "" {
		e.t.Errorf("containers left behind: %q", r.out)
		for _, id := range strings.Fields(r.out) {
			e.berth("rm", "-f", id)
		}
	}
	if mps := testutil.MountsUnder(e.dir); len(mps) > 0 {
		e.t.Errorf("mounts left behind: %v", mps)
		testutil.UnmountUnder(e.dir)
	}
	if ents, _ := os.ReadDir(filepath.Join(e.root, "build", "mnt")); len(ents) > 0 {
		e.t.Errorf("build mount points left behind: %d", len(ents))
	}
	if ents, _ := os.ReadDir(filepath.Join(e.root, "snapshots", "active")); len(ents) > 0 {
		var names []string
		for _, d := range ents {
			names = append(names, d.Name())
		}
		e.t.Errorf("active snapshots left behind: %v", names)
	}
	// RUN steps ran on the data root's default bridge: its bridge, firewall table and
	// run-time dir go with the root, as does the runtime's state dir.
	if ns, err := network.Open(e.root); err == nil {
		if err := ns.Reset(context.Background()); err != nil {
			e.t.Errorf("network reset: %v", err)
		}
		for _, l := range ns.Leftovers() {
			e.t.Errorf("after network reset: left behind: %s", l)
		}
	}
	sum := sha256.Sum256([]byte(e.root))
	rt := "/run/berth/rt-" + hex.EncodeToString(sum[:6])
	if ents, _ := os.ReadDir(rt); len(ents) > 0 {
		for _, d := range ents {
			if !strings.HasPrefix(d.Name(), ".") {
				e.t.Errorf("runtime state left behind: %s", filepath.Join(rt, d.Name()))
			}
		}
	}
	os.RemoveAll(rt)
	os.RemoveAll(e.dir)
}

// write puts files (name -> content) into the context.
func (e *env) write(files map[string]string) {
	e.t.Helper()
	for n, c := range files {
		p := filepath.Join(e.contextDir, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			e.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
}

type result struct {
	out, err string
	code     int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout: %s\nstderr: %s", r.code, r.out, r.err)
}

func (e *env) berth(args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, berthBin, append([]string{"--root", e.root}, args...)...)
	c.Env = append(os.Environ(), "BERTH_RUNTIME="+runtimeBin, "BERTH_CONFIG="+filepath.Join(e.dir, "config.json"),
		"DOCKER_CONFIG="+filepath.Join(e.dir, "docker"))
	c.Dir = e.dir
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var out, errb strings.Builder
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	if err != nil && c.ProcessState == nil {
		e.t.Fatalf("berth %v: %v", args, err)
	}
	return result{out: out.String(), err: errb.String(), code: c.ProcessState.ExitCode()}
}

func (e *env) must(args ...string) string {
	e.t.Helper()
	r := e.berth(args...)
	if r.code != 0 {
		e.t.Fatalf("berth %s: %s", strings.Join(args, " "), r)
	}
	return r.out
}

// build writes the Dockerfile and builds the context with extra flags.
func (e *env) build(dockerfile string, flags ...string) result {
	e.t.Helper()
	e.write(map[string]string{"Dockerfile": dockerfile})
	return e.berth(append(append([]string{"build", "--network", "none"}, flags...), e.contextDir)...)
}

func (e *env) mustBuild(dockerfile string, flags ...string) string {
	e.t.Helper()
	r := e.build(dockerfile, flags...)
	if r.code != 0 {
		e.t.Fatalf("build: %s", r)
	}
	return r.out
}

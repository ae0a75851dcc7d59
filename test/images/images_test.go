// Package images_test drives the built berth binary through the image workflow against a real
// registry (Debian's docker-registry on 127.0.0.1): import, images, tag, push, rmi, pull,
// history, inspect, save, load, system check/df.
package images_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

var berthBin, bundleDir string

func TestMain(m *testing.M) {
	berthBin, bundleDir = os.Getenv("BERTH_BIN"), os.Getenv("BERTH_BUNDLE")
	if berthBin == "" || bundleDir == "" {
		fmt.Fprintln(os.Stderr, "set BERTH_BIN and BERTH_BUNDLE (make test-integration does)")
		os.Exit(1)
	}
	os.Exit(m.Run())
}

type env struct {
	t    *testing.T
	root string
	dir  string
}

func newEnv(t *testing.T) *env {
	dir := t.TempDir()
	return &env{t: t, root: filepath.Join(dir, "root"), dir: dir}
}

func (e *env) berth(args ...string) (string, string, int) {
	e.t.Helper()
	cmd := exec.Command(berthBin, append([]string{"--root", e.root}, args...)...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+filepath.Join(e.dir, "docker-config"))
	var so, se strings.Builder
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	if err != nil && cmd.ProcessState == nil {
		e.t.Fatal(err)
	}
	return so.String(), se.String(), cmd.ProcessState.ExitCode()
}

func (e *env) must(args ...string) string {
	e.t.Helper()
	out, errOut, code := e.berth(args...)
	if code != 0 {
		e.t.Fatalf("berth %v: exit %d: %s%s", args, code, out, errOut)
	}
	return out
}

// rootfsTar packs the busybox bundle's rootfs.
func rootfsTar(t *testing.T) string {
	out := filepath.Join(t.TempDir(), "rootfs.tar")
	if b, err := exec.Command("tar", "-C", filepath.Join(bundleDir, "rootfs"), "-cf", out, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, b)
	}
	return out
}

func TestImageWorkflow(t *testing.T) {
	e := newEnv(t)
	reg := testutil.StartRegistry(t)
	tarball := rootfsTar(t)

	id := strings.TrimSpace(e.must("import", "-c", `CMD ["sh"]`, "-c", "ENV A=1", tarball, "busybox:test"))
	if !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("import printed %q", id)
	}
	out := e.must("images")
	if !strings.Contains(out, "REPOSITORY") || !strings.Contains(out, "busybox") || !strings.Contains(out, id[7:19]) {
		t.Fatalf("images:\n%s", out)
	}
	if got := e.must("images", "--format", "{{.Repository}}:{{.Tag}}"); got != "busybox:test\n" {
		t.Fatalf("images --format: %q", got)
	}
	var inspect []struct {
		ID     string `json:"Id"`
		Config struct{ Cmd, Env []string }
	}
	if err := json.Unmarshal([]byte(e.must("image", "inspect", "busybox:test")), &inspect); err != nil || len(inspect) != 1 {
		t.Fatalf("inspect: %v", err)
	}
	if inspect[0].ID != id || strings.Join(inspect[0].Config.Cmd, " ") != "sh" {
		t.Fatalf("inspect: %+v", inspect[0])
	}
	if h := e.must("history", "busybox:test"); !strings.Contains(h, "IMAGE") || !strings.Contains(h, id[7:19]) {
		t.Fatalf("history:\n%s", h)
	}

	remote := reg + "/test/busybox:1"
	e.must("tag", "busybox:test", remote)
	e.must("push", remote)
	if out := e.must("rmi", "busybox:test"); !strings.Contains(out, "Untagged: busybox:test") || strings.Contains(out, "Deleted") {
		t.Fatalf("rmi of one of two tags: %q", out)
	}
	if out := e.must("rmi", remote); !strings.Contains(out, "Deleted: "+id) {
		t.Fatalf("rmi of the last tag: %q", out)
	}
	if out := e.must("images", "-q"); out != "" {
		t.Fatalf("images after rmi: %q", out)
	}
	e.must("system", "check")

	if out := e.must("pull", remote); !strings.Contains(out, "Pull complete") || !strings.Contains(out, remote) {
		t.Fatalf("pull output:\n%s", out)
	}
	if out := e.must("pull", remote); !strings.Contains(out, "up to date") {
		t.Fatalf("second pull:\n%s", out)
	}
	if got := strings.TrimSpace(e.must("images", "-q", "--no-trunc")); got != id {
		t.Fatalf("pulled image ID %q, want %q", got, id)
	}

	archive := filepath.Join(e.dir, "save.tar")
	e.must("save", "-o", archive, remote)
	e.must("rmi", remote)
	if out := e.must("load", "-i", archive); !strings.Contains(out, "Loaded image: "+remote) {
		t.Fatalf("load: %q", out)
	}
	if got := strings.TrimSpace(e.must("images", "-q", "--no-trunc")); got != id {
		t.Fatalf("loaded image ID %q, want %q", got, id)
	}
	e.must("system", "check")
	if out := e.must("system", "df"); !strings.Contains(out, "Images") {
		t.Fatalf("df: %q", out)
	}
}

func TestImageErrors(t *testing.T) {
	e := newEnv(t)
	reg := testutil.StartRegistry(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"pull", reg + "/no/such:1"}, "manifest unknown"},
		{[]string{"pull", "Bad:Name"}, "invalid reference"},
		{[]string{"rmi", "nope"}, "no such image"},
		{[]string{"tag", "nope", "x:y"}, "no such image"},
		{[]string{"import", "-c", "FROB x", "/dev/null"}, "FROB"},
	} {
		out, errOut, code := e.berth(c.args...)
		if code == 0 || !strings.Contains(strings.ToLower(errOut), strings.ToLower(c.want)) {
			t.Errorf("berth %v: exit %d, stderr %q (stdout %q), want an error with %q", c.args, code, errOut, out, c.want)
		}
	}
	e.must("system", "check")
}

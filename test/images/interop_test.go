package images_test

// Interop with Debian's skopeo and podman, both ways: through the registry
// (manifest digests must match) and through save/load archives (image IDs
// must match).
//
// skopeo and podman run as root write a blob-info cache under
// /var/lib/containers/cache whatever --root says, so every peer command runs
// in its own mount namespace (unshare -m) with a tmpfs over that directory;
// podman also gets HOME, XDG dirs, storage.conf, --root, --runroot and
// --tmpdir in the test's temp dir, and the vfs driver, so it mounts nothing.

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

// peer runs skopeo or podman isolated from the host's container state.
type peer struct {
	t   *testing.T
	dir string // HOME, XDG dirs, podman's root, runroot and tmpdir live here
}

func newPeer(t *testing.T, bin string) *peer {
	t.Helper()
	if _, err := exec.LookPath(bin); err != nil {
		t.Skipf("%s is not installed (scripts/install-deps.sh engines installs it)", bin)
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatal("unshare (util-linux) is needed to keep the peer out of /var/lib/containers")
	}
	// podman refuses a runroot longer than 50 characters: t.TempDir's names are too long.
	dir, err := os.MkdirTemp("", "berth-peer-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("removing %s: %v", dir, err)
		}
	})
	p := &peer{t: t, dir: dir}
	for _, d := range []string{"home", "run", "tmp", "root", "runroot"} {
		os.MkdirAll(filepath.Join(p.dir, d), 0o700)
	}
	conf := fmt.Sprintf("[storage]\ndriver = \"vfs\"\ngraphroot = %q\nrunroot = %q\n", filepath.Join(p.dir, "root"), filepath.Join(p.dir, "runroot"))
	os.WriteFile(filepath.Join(p.dir, "storage.conf"), []byte(conf), 0o644)
	os.WriteFile(filepath.Join(p.dir, "containers.conf"), []byte("[engine]\nevents_logger = \"none\"\ncgroup_manager = \"cgroupfs\"\n"), 0o644)
	os.WriteFile(filepath.Join(p.dir, "registries.conf"), []byte("unqualified-search-registries = []\n"), 0o644)
	noLeftovers(t, p.dir)
	return p
}

// run runs bin args in a private mount namespace with a tmpfs over
// /var/lib/containers (or over /var/lib when the host has no
// /var/lib/containers, so that the peer cannot create it).
func (p *peer) run(bin string, args ...string) (string, error) {
	p.t.Helper()
	hide := "/var/lib/containers"
	if _, err := os.Stat(hide); err != nil {
		hide = "/var/lib"
	}
	if bin == "podman" {
		args = append([]string{"--root", filepath.Join(p.dir, "root"), "--runroot", filepath.Join(p.dir, "runroot"),
			"--tmpdir", filepath.Join(p.dir, "tmp"), "--storage-driver", "vfs", "--events-backend", "none",
			"--cgroup-manager", "cgroupfs"}, args...)
	}
	script := `mount -t tmpfs -o size=64m berth-test "$0" && shift && exec "$@"`
	cmd := exec.Command("unshare", append([]string{"-m", "--propagation", "private", "sh", "-c", script, hide, "--", bin}, args...)...)
	home := filepath.Join(p.dir, "home")
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_RUNTIME_DIR="+filepath.Join(p.dir, "run"),
		"XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "XDG_DATA_HOME="+filepath.Join(home, ".local", "share"),
		"XDG_CACHE_HOME="+filepath.Join(home, ".cache"), "TMPDIR="+filepath.Join(p.dir, "tmp"),
		"CONTAINERS_STORAGE_CONF="+filepath.Join(p.dir, "storage.conf"),
		"CONTAINERS_CONF="+filepath.Join(p.dir, "containers.conf"),
		"CONTAINERS_REGISTRIES_CONF="+filepath.Join(p.dir, "registries.conf"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v\n%s", bin, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (p *peer) must(bin string, args ...string) string {
	p.t.Helper()
	out, err := p.run(bin, args...)
	if err != nil {
		p.t.Fatal(err)
	}
	return out
}

// onlyPodmanImage returns the ID (sha256:...) and manifest digest of the
// single image in the peer's podman store.
func (p *peer) onlyPodmanImage() (id, dgst string) {
	p.t.Helper()
	lines := strings.Fields(p.must("podman", "images", "--no-trunc", "--format", "{{.ID}}"))
	if len(lines) != 1 {
		p.t.Fatalf("podman images: want one image, got %q", lines)
	}
	id = lines[0]
	if !strings.HasPrefix(id, "sha256:") {
		id = "sha256:" + id
	}
	dgst = strings.TrimSpace(p.must("podman", "image", "inspect", "--format", "{{.Digest}}", lines[0]))
	return id, dgst
}

// berthRepoDigests returns the RepoDigests berth reports for ref, and its ID.
func berthRepoDigests(e *env, ref string) (id string, digests []string) {
	e.t.Helper()
	var inspect []struct {
		ID          string `json:"Id"`
		RepoDigests []string
	}
	if err := json.Unmarshal([]byte(e.must("image", "inspect", ref)), &inspect); err != nil || len(inspect) != 1 {
		e.t.Fatalf("image inspect %s: %v", ref, err)
	}
	return inspect[0].ID, inspect[0].RepoDigests
}

func skopeoDigest(p *peer, ref string) string {
	p.t.Helper()
	var info struct{ Digest string }
	if err := json.Unmarshal([]byte(p.must("skopeo", "inspect", "--tls-verify=false", "docker://"+ref)), &info); err != nil || info.Digest == "" {
		p.t.Fatalf("skopeo inspect %s: %v", ref, err)
	}
	return info.Digest
}

func wantDigest(t *testing.T, digests []string, repo, dgst string) {
	t.Helper()
	for _, d := range digests {
		if d == repo+"@"+dgst {
			return
		}
	}
	t.Fatalf("RepoDigests %v lack %s@%s", digests, repo, dgst)
}

func TestInteropSkopeoPodman(t *testing.T) {
	reg := testutil.StartRegistry(t)
	e := newEnv(t)
	noLeftovers(t, e.dir)
	tarball := rootfsTar(t)
	// A gzip rootfs: berth keeps the layer gzipped, so skopeo's copy into an
	// OCI layout keeps every blob and the manifest byte for byte. (berth
	// stores a plain tar's layer uncompressed and skopeo compresses such a
	// layer when writing oci:, which changes the manifest digest.)
	if b, err := exec.Command("gzip", "-k", tarball).CombinedOutput(); err != nil {
		t.Fatalf("gzip: %v %s", err, b)
	}
	repoX := reg + "/interop/x"
	id := strings.TrimSpace(e.must("import", "-c", `CMD ["sh"]`, "-c", "ENV A=1", tarball+".gz", repoX+":1"))
	e.must("push", "-q", repoX+":1")
	// The digest berth pushed: the manifest it stores for the image.
	var pushed string
	for _, l := range strings.Split(e.must("images", "--digests", "--no-trunc", "--format", "{{.Repository}} {{.Digest}}"), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == repoX {
			pushed = f[1]
		}
	}
	if !strings.HasPrefix(pushed, "sha256:") {
		t.Fatalf("berth images --digests shows no digest for %s", repoX)
	}
	berthSave := filepath.Join(e.dir, "berth-save.tar")
	e.must("save", "-o", berthSave, repoX+":1")
	berthSaveOCI := filepath.Join(e.dir, "berth-save-oci.tar")
	e.must("save", "--format", "oci", "-o", berthSaveOCI, repoX+":1")

	t.Run("skopeo pulls berth's push", func(t *testing.T) {
		p := newPeer(t, "skopeo")
		if got := skopeoDigest(p, repoX+":1"); got != pushed {
			t.Fatalf("skopeo inspect digest %s, berth pushed %s", got, pushed)
		}
		dir := filepath.Join(p.dir, "oci")
		p.must("skopeo", "copy", "--src-tls-verify=false", "docker://"+repoX+":1", "oci:"+dir)
		var index struct{ Manifests []struct{ Digest string } }
		b, _ := os.ReadFile(filepath.Join(dir, "index.json"))
		if err := json.Unmarshal(b, &index); err != nil || len(index.Manifests) != 1 {
			t.Fatalf("skopeo's index.json: %v %s", err, b)
		}
		if index.Manifests[0].Digest != pushed {
			t.Fatalf("skopeo copied manifest %s, berth pushed %s", index.Manifests[0].Digest, pushed)
		}
	})

	t.Run("podman pulls berth's push", func(t *testing.T) {
		p := newPeer(t, "podman")
		p.must("podman", "pull", "-q", "--tls-verify=false", repoX+":1")
		pid, pdgst := p.onlyPodmanImage()
		if pdgst != pushed || pid != id {
			t.Fatalf("podman pulled image %s digest %s; berth pushed image %s digest %s", pid, pdgst, id, pushed)
		}
		if out := p.must("podman", "images", "--digests", "--no-trunc"); !strings.Contains(out, pushed) {
			t.Fatalf("podman images --digests does not show %s:\n%s", pushed, out)
		}
	})

	t.Run("berth pulls skopeo's push of berth save", func(t *testing.T) {
		p := newPeer(t, "skopeo")
		repoY := reg + "/interop/y"
		p.must("skopeo", "copy", "--dest-tls-verify=false", "docker-archive:"+berthSave, "docker://"+repoY+":1")
		dgst := skopeoDigest(p, repoY+":1")
		e2 := newEnv(t)
		noLeftovers(t, e2.dir)
		e2.must("pull", "-q", repoY+":1")
		gotID, digests := berthRepoDigests(e2, repoY+":1")
		wantDigest(t, digests, repoY, dgst)
		if gotID != id {
			t.Fatalf("berth pulled image %s, berth saved %s", gotID, id)
		}
		if out := e2.must("images", "--digests", "--no-trunc"); !strings.Contains(out, dgst) {
			t.Fatalf("berth images --digests does not show %s:\n%s", dgst, out)
		}
		checkStore(e2, "after pull")
	})

	t.Run("podman save loads in berth, and via skopeo push", func(t *testing.T) {
		p := newPeer(t, "podman")
		p.must("podman", "import", "--change", `CMD ["sh"]`, tarball, "localhost/interop/p:1")
		pid, _ := p.onlyPodmanImage()
		for _, format := range []string{"docker-archive", "oci-archive"} {
			archive := filepath.Join(p.dir, format+".tar")
			p.must("podman", "save", "--format", format, "-o", archive, "localhost/interop/p:1")
			e2 := newEnv(t)
			noLeftovers(t, e2.dir)
			e2.must("load", "-i", archive)
			if got := imageIDs(e2); len(got) != 1 || got[0] != pid {
				t.Fatalf("podman save --format %s loaded in berth as %v, podman's image is %s", format, got, pid)
			}
			checkStore(e2, "after load of podman's "+format)
		}
		// The docker-archive through skopeo to the registry, pulled by berth.
		s := newPeer(t, "skopeo")
		repoZ := reg + "/interop/z"
		s.must("skopeo", "copy", "--dest-tls-verify=false", "docker-archive:"+filepath.Join(p.dir, "docker-archive.tar"), "docker://"+repoZ+":1")
		dgst := skopeoDigest(s, repoZ+":1")
		e3 := newEnv(t)
		noLeftovers(t, e3.dir)
		e3.must("pull", "-q", repoZ+":1")
		gotID, digests := berthRepoDigests(e3, repoZ+":1")
		wantDigest(t, digests, repoZ, dgst)
		if gotID != pid {
			t.Fatalf("berth pulled image %s, podman's is %s", gotID, pid)
		}
		checkStore(e3, "after pull")
	})

	t.Run("berth save loads in podman", func(t *testing.T) {
		for _, archive := range []string{berthSave, berthSaveOCI} {
			p := newPeer(t, "podman")
			p.must("podman", "load", "-q", "-i", archive)
			if pid, _ := p.onlyPodmanImage(); pid != id {
				t.Fatalf("%s loaded in podman as %s, berth's image is %s", filepath.Base(archive), pid, id)
			}
		}
	})
}

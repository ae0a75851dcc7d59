package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/berth-dev/berth/image"
)

// ggcrImage builds an image with go-containerregistry, an independent
// implementation of the formats: its layers are gzip-compressed.
func ggcrImage(t *testing.T) v1.Image {
	t.Helper()
	blobs, _ := testLayers(t)
	var layers []v1.Layer
	for _, b := range [][]byte{blobs[0], makeTar(t, file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"), file("data/c", "c")), blobs[2]} {
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, l)
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Config.Cmd = []string{"/bin/sh"}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		t.Fatal(err)
	}
	return img
}

// TestLoadGGCRTarball loads a docker-archive written by go-containerregistry's
// tarball.Write (named layer files "<hex>.tar.gz", compressed layers).
func TestLoadGGCRTarball(t *testing.T) {
	ctx := context.Background()
	img := ggcrImage(t)
	ref, err := name.NewTag("example.com/ggcr/img:v1")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := tarball.Write(ref, img, &buf); err != nil {
		t.Fatal(err)
	}
	s := newStores(t)
	loaded, err := Load(ctx, s.images, s.snaps, &buf)
	if err != nil {
		t.Fatal(err)
	}
	want, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded) != 1 || loaded[0].Image.ID() != want.String() {
		t.Fatalf("loaded %+v, want image %s", loaded, want)
	}
	if got := refStrings(loaded[0].Tags); len(got) != 1 || got[0] != "example.com/ggcr/img:v1" {
		t.Errorf("tags = %v", got)
	}
	if mt := loaded[0].Image.Layers[0].MediaType; mt != string(types.DockerLayer) {
		t.Errorf("layer media type %s, want gzip kept as given", mt)
	}
	checkTestLayers(t, s, loaded[0].Image)
}

// TestLoadGGCRLayout loads an OCI layout written by go-containerregistry's
// layout package and tarred as `tar -C dir .` does ("./" names).
func TestLoadGGCRLayout(t *testing.T) {
	ctx := context.Background()
	img := ggcrImage(t)
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{annotationRefName: "example.com/ggcr/layout:2"})); err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{annotationRefName: "latest"})); err != nil {
		t.Fatal(err)
	}
	s := newStores(t)
	loaded, err := Load(ctx, s.images, s.snaps, bytes.NewReader(tarDir(t, dir)))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.ConfigName()
	wantManifest, _ := img.Digest()
	if len(loaded) != 1 || loaded[0].Image.ID() != want.String() || loaded[0].Image.Manifest.String() != wantManifest.String() {
		t.Fatalf("loaded %+v, want image %s manifest %s", loaded, want, wantManifest)
	}
	// "latest" alone names no repository: only the full name is a tag.
	if got := refStrings(loaded[0].Tags); len(got) != 1 || got[0] != "example.com/ggcr/layout:2" {
		t.Errorf("tags = %v", got)
	}
	checkTestLayers(t, s, loaded[0].Image)
}

// tarDir tars a directory with "./"-prefixed names.
func tarDir(t *testing.T, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		h, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		h.Name = "./" + rel
		if d.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			_, err = tw.Write(b)
			return err
		}
		return nil
	})
	if err == nil {
		err = tw.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// podman runs podman against a private store in temp dirs (vfs: no
// mounts), so it touches nothing of the host's.
func podman(t *testing.T, base string, args ...string) string {
	t.Helper()
	global := []string{
		"--root", filepath.Join(base, "root"), "--runroot", filepath.Join(base, "runroot"),
		"--tmpdir", filepath.Join(base, "tmp"), "--storage-driver", "vfs",
		"--events-backend", "none", "--cgroup-manager", "cgroupfs",
	}
	// Root's podman keeps a blob-info cache in /var/lib/containers/cache
	// whatever --root says; a private mount namespace with an empty tmpfs
	// on /var/lib makes it vanish with the command.
	script := `mount -t tmpfs berth-test /var/lib && exec podman "$@"`
	cmd := exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c", script, "sh"}, append(global, args...)...)...)
	cmd.Env = append(os.Environ(), "TMPDIR="+filepath.Join(base, "tmp"), "XDG_RUNTIME_DIR="+filepath.Join(base, "xdg"),
		"XDG_CONFIG_HOME="+filepath.Join(base, "config"), "XDG_DATA_HOME="+filepath.Join(base, "data"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestPodmanInterop: berth's docker-archive and OCI output load in podman
// with the same image ID, and what podman saves in the same format loads in
// berth with the same image ID and files. (Each format round-trips an image
// of its own manifest type: podman converts Docker images to OCI when saving
// an oci-archive, which rewrites the config and so changes the ID.) Skipped
// without podman.
func TestPodmanInterop(t *testing.T) {
	if _, err := exec.LookPath("podman"); err != nil {
		t.Skip("podman not installed (Debian package podman)")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("unshare (util-linux) not installed: needed to keep podman's cache off the host")
	}
	ctx := context.Background()
	for _, c := range []struct {
		format, podmanFormat string
		mt                   types.MediaType
	}{
		{FormatDocker, "docker-archive", types.DockerManifestSchema2},
		{FormatOCI, "oci-archive", types.OCIManifestSchema1},
	} {
		t.Run(c.format, func(t *testing.T) {
			src := newStores(t)
			blobs, diffIDs := testLayers(t)
			a := putImage(t, src, c.mt, "a", blobs, diffIDs, "localhost/berth/interop:1")
			base := t.TempDir()
			for _, d := range []string{"tmp", "xdg", "config", "data"} {
				if err := os.MkdirAll(filepath.Join(base, d), 0o700); err != nil {
					t.Fatal(err)
				}
			}
			var buf bytes.Buffer
			if err := Save(ctx, src.images, &buf, []string{"localhost/berth/interop:1"}, c.format); err != nil {
				t.Fatal(err)
			}
			saved := filepath.Join(base, "berth.tar")
			if err := os.WriteFile(saved, buf.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			out := podman(t, base, "load", "-i", saved)
			t.Logf("podman load: %s", out)
			id := strings.TrimSpace(podman(t, base, "image", "inspect", "--format", "{{.ID}}", "localhost/berth/interop:1"))
			if id == "" || !strings.Contains(a.img.ID(), id) {
				t.Errorf("podman says image ID %q, berth %s", id, a.img.ID())
			}

			back := filepath.Join(base, "podman.tar")
			podman(t, base, "save", "--format", c.podmanFormat, "-o", back, "localhost/berth/interop:1")
			f, err := os.Open(back)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			dst := newStores(t)
			loaded, err := Load(ctx, dst.images, dst.snaps, f)
			if err != nil {
				t.Fatal(err)
			}
			if len(loaded) != 1 || loaded[0].Image.Config != a.img.Config {
				t.Fatalf("loaded %+v, want image %s", loaded, a.img.ID())
			}
			if got := refStrings(loaded[0].Tags); len(got) != 1 || got[0] != "localhost/berth/interop:1" {
				t.Errorf("tags = %v", got)
			}
			checkTestLayers(t, dst, loaded[0].Image)
		})
	}
}

// TestSkopeoInterop converts berth's archives with skopeo both ways between
// the formats and loads the results. Skipped without skopeo.
func TestSkopeoInterop(t *testing.T) {
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Skip("skopeo not installed (Debian package skopeo)")
	}
	ctx := context.Background()
	src := newStores(t)
	blobs, diffIDs := testLayers(t)
	a := putImage(t, src, types.DockerManifestSchema2, "a", blobs, diffIDs, "localhost/berth/skopeo:1")
	base := t.TempDir()
	for _, c := range []struct{ format, from, to string }{
		{FormatDocker, "docker-archive:%s", "oci-archive:%s:localhost/berth/skopeo:1"},
		// The archive holds one image, so skopeo needs no reference to pick it.
		{FormatOCI, "oci-archive:%s", "docker-archive:%s:localhost/berth/skopeo:1"},
	} {
		t.Run(c.format, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Save(ctx, src.images, &buf, []string{"localhost/berth/skopeo:1"}, c.format); err != nil {
				t.Fatal(err)
			}
			in := filepath.Join(base, c.format+"-in.tar")
			out := filepath.Join(base, c.format+"-out.tar")
			if err := os.WriteFile(in, buf.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("skopeo", "--tmpdir", base, "copy", strings.Replace(c.from, "%s", in, 1), strings.Replace(c.to, "%s", out, 1))
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", cmd, err, b)
			}
			f, err := os.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			dst := newStores(t)
			loaded, err := Load(ctx, dst.images, dst.snaps, f)
			if err != nil {
				t.Fatal(err)
			}
			// skopeo rewrites the config when it converts between the Docker and OCI formats,
			// so the image ID changes by design; the layers (diffIDs) must not.
			if len(loaded) != 1 || !sameDiffIDs(loaded[0].Image, a.img) {
				t.Fatalf("loaded %+v, want the layers of image %s", loaded, a.img.ID())
			}
			if got := refStrings(loaded[0].Tags); len(got) != 1 || got[0] != "localhost/berth/skopeo:1" {
				t.Errorf("tags = %v", got)
			}
			checkTestLayers(t, dst, loaded[0].Image)
		})
	}
}

func sameDiffIDs(a, b *image.Image) bool {
	if len(a.Layers) != len(b.Layers) {
		return false
	}
	for i := range a.Layers {
		if a.Layers[i].DiffID != b.Layers[i].DiffID {
			return false
		}
	}
	return true
}

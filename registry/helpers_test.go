package registry

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/snapshot"
)

func init() {
	// Error-path tests hit 5xx answers; retry them, but without the
	// seconds-long pauses meant for real registries.
	retryBackoff = remote.Backoff{Duration: time.Millisecond, Factor: 2, Steps: 2}
}

// stores opens fresh image and snapshot stores and registers checks that
// the test leaves them consistent: image.Store.Check clean, nothing in the
// stores' temp dirs.
func stores(t *testing.T) (*image.Store, *snapshot.Store, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (the snapshotter writes ownership and overlay whiteouts)")
	}
	base := t.TempDir()
	images, err := image.Open(filepath.Join(base, "images"))
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := snapshot.Open(filepath.Join(base, "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		assertConsistent(t, images, base)
		images.Close()
	})
	return images, snaps, base
}

// assertConsistent fails t if the store has problems or temp leftovers.
func assertConsistent(t *testing.T, images *image.Store, base string) {
	t.Helper()
	problems, err := images.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("store problem: %s", p)
	}
	for _, dir := range []string{"images/ingest", "snapshots/tmp"} {
		ents, _ := os.ReadDir(filepath.Join(base, dir))
		for _, e := range ents {
			t.Errorf("leftover in %s: %s", dir, e.Name())
		}
	}
}

// isolateDockerConfig points DOCKER_CONFIG at an empty temp dir so tests
// neither read nor write the machine's credentials.
func isolateDockerConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	return dir
}

// layerOf builds a gzip layer from name -> content (a trailing "/" makes a
// directory).
func layerOf(t testing.TB, mt types.MediaType, files map[string]string) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for n, c := range files {
		hdr := &tar.Header{Name: n, Mode: 0o644, Size: int64(len(c)), Typeflag: tar.TypeReg, ModTime: time.Unix(1700000000, 0)}
		if strings.HasSuffix(n, "/") {
			hdr = &tar.Header{Name: n, Mode: 0o755, Typeflag: tar.TypeDir, ModTime: time.Unix(1700000000, 0)}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		tarball.WithMediaType(mt))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// imageOf stacks layers into an image for platform (Docker schema 2, or OCI
// if oci is set).
func imageOf(t testing.TB, p v1.Platform, oci bool, layers ...v1.Layer) v1.Image {
	t.Helper()
	var base v1.Image = empty.Image
	if oci {
		base = mutate.MediaType(base, types.OCIManifestSchema1)
		base = mutate.ConfigMediaType(base, types.OCIConfigJSON)
	}
	img, err := mutate.AppendLayers(base, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture, cfg.Variant = p.OS, p.Architecture, p.Variant
	cfg.Created = v1.Time{Time: time.Unix(1700000000, 0).UTC()}
	cfg.Config.Cmd = []string{"/bin/sh"}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// testImage is a three-layer image whose files tell the layers apart.
func testImage(t testing.TB, oci bool) v1.Image {
	mt := types.DockerLayer
	if oci {
		mt = types.OCILayer
	}
	return imageOf(t, v1.Platform{OS: "linux", Architecture: "amd64"}, oci,
		layerOf(t, mt, map[string]string{"etc/": "", "etc/os-release": "ID=test\n"}),
		layerOf(t, mt, map[string]string{"bin/": "", "bin/hello": "#!/bin/sh\necho hello\n"}),
		layerOf(t, mt, map[string]string{"etc/os-release": "ID=test2\n", "app.txt": "three"}),
	)
}

func mustRef(t testing.TB, s string) image.Reference {
	t.Helper()
	r, err := image.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func pushGGCR(t testing.TB, ref string, img v1.Image, opts ...remote.Option) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, opts...); err != nil {
		t.Fatal(err)
	}
}

func digestOf(t testing.TB, img interface{ Digest() (v1.Hash, error) }) digest.Digest {
	t.Helper()
	h, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return digest.Digest(h.String())
}

// progressLines parses the progress stream, failing on any bad line.
func progressLines(t testing.TB, b []byte) []progressMessage {
	t.Helper()
	var out []progressMessage
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var m progressMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("progress line %q: %v", sc.Text(), err)
		}
		if m.Status == "" {
			t.Fatalf("progress line without status: %q", sc.Text())
		}
		out = append(out, m)
	}
	return out
}

func countStatus(msgs []progressMessage, prefix string) int {
	n := 0
	for _, m := range msgs {
		if strings.HasPrefix(m.Status, prefix) {
			n++
		}
	}
	return n
}

// inProcessRegistry serves ggcr's registry on 127.0.0.1, with wrap (if not
// nil) in front of it for fault injection. It returns the host:port.
func inProcessRegistry(t *testing.T, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	var h http.Handler = ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// anonymous is a keychain for tests that must not depend on the machine.
var anonymous = authn.NewMultiKeychain()

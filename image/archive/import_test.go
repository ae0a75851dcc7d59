package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/snapshot"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/zstd"
	digest "github.com/opencontainers/go-digest"
)

// busyboxTree is a rootfs shaped like busybox's: one binary and applets
// linked to it.
func busyboxTree(t testing.TB) []byte {
	return makeTar(t, dir("bin/"), dir("etc/"), entry{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
		entry{name: "bin/busybox", body: "\x7fELF not really\n", mode: 0o755},
		symlink("bin/sh", "busybox"), symlink("bin/echo", "busybox"),
		file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"))
}

func zst(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestImport(t *testing.T) {
	tree := busyboxTree(t)
	for _, c := range []struct {
		name  string
		input []byte
		mt    types.MediaType
	}{
		{"plain", tree, types.OCIUncompressedLayer},
		{"gzip", gz(t, tree), types.OCILayer},
		{"zstd", zst(t, tree), types.OCILayerZStd},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			s := newStores(t)
			before := time.Now().UTC().Add(-time.Second)
			changes := []string{`CMD ["sh"]`, "ENV A=1", "WORKDIR /w", "ENTRYPOINT echo hi"}
			img, err := Import(ctx, s.images, s.snaps, bytes.NewReader(c.input), changes, mustRef(t, "example.com/imported:1"), "")
			if err != nil {
				t.Fatal(err)
			}
			if len(img.Layers) != 1 {
				t.Fatalf("%d layers", len(img.Layers))
			}
			l := img.Layers[0]
			if l.MediaType != string(c.mt) || l.Digest != digest.FromBytes(c.input) || l.DiffID != digest.FromBytes(tree) {
				t.Errorf("layer %+v: want %s, blob %s, diffID %s", l, c.mt, digest.FromBytes(c.input), digest.FromBytes(tree))
			}
			cfg, err := s.images.Config(img)
			if err != nil {
				t.Fatal(err)
			}
			host := image.HostPlatform()
			if cfg.OS != host.OS || cfg.Architecture != host.Architecture || cfg.Variant != host.Variant {
				t.Errorf("platform %s/%s/%s, want the host's %+v", cfg.OS, cfg.Architecture, cfg.Variant, host)
			}
			if cfg.Created.Before(before) || cfg.Created.After(time.Now().Add(time.Second)) {
				t.Errorf("created %s, want now", cfg.Created)
			}
			if len(cfg.History) != 1 || cfg.History[0].Comment != DefaultImportMessage || !cfg.History[0].Created.Equal(cfg.Created.Time) {
				t.Errorf("history %+v", cfg.History)
			}
			if len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0].String() != l.DiffID.String() || cfg.RootFS.Type != "layers" {
				t.Errorf("rootfs %+v", cfg.RootFS)
			}
			rc := cfg.Config
			if !reflect.DeepEqual(rc.Cmd, []string{"sh"}) || !reflect.DeepEqual(rc.Env, []string{"A=1"}) || rc.WorkingDir != "/w" ||
				!reflect.DeepEqual(rc.Entrypoint, []string{"/bin/sh", "-c", "echo hi"}) {
				t.Errorf("config %+v", rc)
			}
			raw, err := s.images.ReadBlob(img.Config)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(raw), `"comment":"Imported from -"`) {
				t.Errorf("config lacks docker's comment: %s", raw)
			}
			got, err := s.images.Resolve("example.com/imported:1")
			if err != nil || got.Manifest != img.Manifest {
				t.Errorf("Resolve = %v, %v", got, err)
			}
			fs := s.layerFS(l.ChainID)
			if b, err := os.ReadFile(filepath.Join(fs, "bin/busybox")); err != nil || string(b) != "\x7fELF not really\n" {
				t.Errorf("bin/busybox: %q %v", b, err)
			}
			if target, err := os.Readlink(filepath.Join(fs, "bin/sh")); err != nil || target != "busybox" {
				t.Errorf("bin/sh -> %q %v", target, err)
			}
			if fi, err := os.Stat(filepath.Join(fs, "tmp")); err != nil || fi.Mode()&os.ModeSticky == 0 {
				t.Errorf("tmp: %v %v", fi, err)
			}
		})
	}
}

// TestImportMessageUntagged: a message replaces the default comment, and a
// zero reference leaves the image untagged.
func TestImportMessageUntagged(t *testing.T) {
	ctx := context.Background()
	s := newStores(t)
	img, err := Import(ctx, s.images, s.snaps, bytes.NewReader(busyboxTree(t)), nil, image.Reference{}, "my rootfs")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := s.images.Config(img)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.History[0].Comment != "my rootfs" {
		t.Errorf("history %+v", cfg.History)
	}
	list, err := s.images.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || len(list[0].References) != 0 {
		t.Errorf("list %+v, want one untagged image", list)
	}
}

// TestImportRefused: bad changes and bad input leave no image, reference,
// snapshot or temp file.
func TestImportRefused(t *testing.T) {
	tree := busyboxTree(t)
	for _, c := range []struct {
		name    string
		input   []byte
		changes []string
		want    error
	}{
		{"unknown instruction", tree, []string{"CMD [\"sh\"]", "RUN rm -rf /"}, ErrUnknownInstruction},
		{"bad port", tree, []string{"EXPOSE nope"}, ErrInvalidChange},
		{"traversal entry", makeTar(t, file("ok", "x"), file("../escape", "x")), nil, snapshot.ErrUnsafeEntry},
		{"truncated gzip", gz(t, tree)[:len(gz(t, tree))/2], nil, ErrTruncated},
		{"empty input", nil, nil, ErrInvalidArchive},
		{"xz input", []byte{0xfd, '7', 'z', 'X', 'Z', 0, 1, 2}, nil, ErrUnsupportedMediaType},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newStores(t)
			_, err := Import(context.Background(), s.images, s.snaps, bytes.NewReader(c.input), c.changes, mustRef(t, "x:1"), "")
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if c.want == ErrUnknownInstruction && !strings.Contains(err.Error(), "RUN") {
				t.Errorf("error %q does not name RUN", err)
			}
			s.checkEmpty(t)
		})
	}
}

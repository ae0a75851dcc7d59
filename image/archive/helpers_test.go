package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/snapshot"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (snapshots hold whiteout devices, ownership, trusted xattrs)")
	}
}

// stores is a pair of fresh stores in a temp dir.
type stores struct {
	images   *image.Store
	snaps    *snapshot.Store
	snapRoot string
}

// newStores opens fresh stores and registers a check that the test left the
// image store consistent and no temp files in either store.
func newStores(t testing.TB) *stores {
	t.Helper()
	requireRoot(t)
	base := t.TempDir()
	images, err := image.Open(filepath.Join(base, "images"))
	if err != nil {
		t.Fatal(err)
	}
	snapRoot := filepath.Join(base, "snapshots")
	snaps, err := snapshot.Open(snapRoot)
	if err != nil {
		t.Fatal(err)
	}
	s := &stores{images: images, snaps: snaps, snapRoot: snapRoot}
	t.Cleanup(func() {
		s.checkClean(t)
		images.Close()
	})
	return s
}

// checkClean fails the test if the image store is inconsistent or either
// store holds temp files.
func (s *stores) checkClean(t testing.TB) {
	t.Helper()
	problems, err := s.images.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("store problem: %s", p)
	}
	for _, dir := range []string{filepath.Join(s.images.Root(), "ingest"), filepath.Join(s.snapRoot, "tmp")} {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			t.Errorf("temp file left: %s", filepath.Join(dir, e.Name()))
		}
	}
}

// checkEmpty fails the test unless the stores hold no image, reference or
// snapshot: what a refused load or import must leave.
func (s *stores) checkEmpty(t testing.TB) {
	t.Helper()
	list, err := s.images.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range list {
		t.Errorf("image left: %s %v", img.Image.Config, img.References)
	}
	if err := s.snaps.Walk(func(info snapshot.Info) error {
		t.Errorf("snapshot left: %s", info.ChainID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	s.checkClean(t)
}

// layerFS is the directory holding a committed chain's own files.
func (s *stores) layerFS(chain digest.Digest) string {
	return filepath.Join(s.snapRoot, "committed", chain.Encoded(), "fs")
}

// entry is one tar member for makeTar.
type entry struct {
	name string
	body string
	typ  byte // tar.TypeReg if 0
	link string
	mode int64
}

func file(name, body string) entry { return entry{name: name, body: body} }
func dir(name string) entry        { return entry{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, target string) entry {
	return entry{name: name, typ: tar.TypeSymlink, link: target, mode: 0o777}
}

func makeTar(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode,
			ModTime: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// testLayers are three layers: a base, a gzip-compressed middle one, and a
// top one deleting a base file with a whiteout.
func testLayers(t testing.TB) (blobs [][]byte, diffIDs []digest.Digest) {
	l1 := makeTar(t, dir("bin/"), dir("etc/"), dir("data/"),
		entry{name: "bin/sh", body: "#!fake shell\n", mode: 0o755},
		symlink("bin/ls", "sh"),
		file("etc/hostname", "berth\n"),
		file("data/a", "a"), file("data/b", "b"))
	l2 := makeTar(t, file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"), file("data/c", "c"))
	l3 := makeTar(t, file("data/.wh.a", ""), file("etc/motd", "hello from the top layer\n"))
	return [][]byte{l1, gz(t, l2), l3}, []digest.Digest{digest.FromBytes(l1), digest.FromBytes(l2), digest.FromBytes(l3)}
}

// srcImage is an image built directly in a store.
type srcImage struct {
	img     *image.Image
	diffIDs []digest.Digest
}

// putImage stores an image made of layer blobs (plain or gzip tars) with the
// given diffIDs, labelled to vary its ID, and tags it.
func putImage(t testing.TB, s *stores, manifestType types.MediaType, label string, blobs [][]byte, diffIDs []digest.Digest, tags ...string) srcImage {
	t.Helper()
	ctx := context.Background()
	cfgType, plain, compressed := types.OCIConfigJSON, types.OCIUncompressedLayer, types.OCILayer
	if manifestType == types.DockerManifestSchema2 {
		cfgType, plain, compressed = types.DockerConfigJSON, types.DockerUncompressedLayer, types.DockerLayer
	}
	cfg := v1.ConfigFile{
		Architecture: "amd64", OS: "linux",
		Created: v1.Time{Time: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)},
		Config:  v1.Config{Cmd: []string{"/bin/sh"}, Env: []string{"PATH=/bin"}, Labels: map[string]string{"test": label}},
		RootFS:  v1.RootFS{Type: "layers"},
	}
	m := v1.Manifest{SchemaVersion: 2, MediaType: manifestType}
	for i, b := range blobs {
		d, err := s.images.IngestBytes(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		mt := plain
		if bytes.HasPrefix(b, magicGzip) {
			mt = compressed
		}
		m.Layers = append(m.Layers, v1.Descriptor{MediaType: mt, Size: int64(len(b)), Digest: hashOf(d)})
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, hashOf(diffIDs[i]))
		cfg.History = append(cfg.History, v1.History{CreatedBy: "layer " + string(rune('1'+i))})
	}
	cfgRaw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgDigest, err := s.images.IngestBytes(ctx, cfgRaw)
	if err != nil {
		t.Fatal(err)
	}
	m.Config = v1.Descriptor{MediaType: cfgType, Size: int64(len(cfgRaw)), Digest: hashOf(cfgDigest)}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	md, err := s.images.IngestBytes(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	img, err := s.images.PutImage(ctx, md)
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range tags {
		if err := s.images.Tag(ctx, mustRef(t, tag), md); err != nil {
			t.Fatal(err)
		}
	}
	return srcImage{img: img, diffIDs: diffIDs}
}

func mustRef(t testing.TB, s string) image.Reference {
	t.Helper()
	r, err := image.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// checkTestLayers verifies the snapshots of an image made of testLayers.
func checkTestLayers(t testing.TB, s *stores, img *image.Image) {
	t.Helper()
	if len(img.Layers) != 3 {
		t.Fatalf("image has %d layers, want 3", len(img.Layers))
	}
	for _, l := range img.Layers {
		info, err := s.snaps.Info(l.ChainID)
		if err != nil {
			t.Fatalf("layer %s: %v", l.Digest, err)
		}
		if info.DiffID != l.DiffID {
			t.Errorf("snapshot %s has diffID %s, want %s", l.ChainID, info.DiffID, l.DiffID)
		}
	}
	read := func(layer int, name string) string {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(s.layerFS(img.Layers[layer].ChainID), name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := read(0, "etc/hostname"); got != "berth\n" {
		t.Errorf("etc/hostname = %q", got)
	}
	if got, err := os.Readlink(filepath.Join(s.layerFS(img.Layers[0].ChainID), "bin/ls")); err != nil || got != "sh" {
		t.Errorf("bin/ls -> %q, %v", got, err)
	}
	if got := read(1, "data/c"); got != "c" {
		t.Errorf("data/c = %q", got)
	}
	if got := read(2, "etc/motd"); got != "hello from the top layer\n" {
		t.Errorf("etc/motd = %q", got)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(s.layerFS(img.Layers[2].ChainID), "data/a"), &st); err != nil {
		t.Fatalf("whiteout of data/a: %v", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("data/a in the top layer is mode %o rdev %d, want a 0/0 char device (overlay whiteout)", st.Mode, st.Rdev)
	}
}

// tarNames lists the member names of a tar.
func tarNames(t testing.TB, b []byte) []string {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(b))
	var names []string
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, h.Name)
	}
	return names
}

func refStrings(refs []image.Reference) []string {
	var out []string
	for _, r := range refs {
		out = append(out, r.String())
	}
	return out
}

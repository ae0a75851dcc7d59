package snapshot

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/testutil"
)

func TestWhiteoutsMountDiff(t *testing.T) {
	for _, classic := range []bool{false, true} {
		t.Run(fmt.Sprintf("classic=%v", classic), func(t *testing.T) {
			forceClassicMount = classic
			defer func() { forceClassicMount = false }()
			testWhiteoutsMountDiff(t)
		})
	}
}

func testWhiteoutsMountDiff(t *testing.T) {
	s, scratch := newStore(t)
	ctx := context.Background()
	base := newTar(t).dir("a/").file("a/gone", "1").file("a/stays", "2").
		dir("opq/").file("opq/old", "old").file("keep", "k").file("del", "d").bytes()
	c1, _, err := s.Apply(ctx, "", bytes.NewReader(base), LayerDigests{})
	if err != nil {
		t.Fatal(err)
	}
	top := newTar(t).file("a/.wh.gone", "").dir("opq/").file("opq/.wh..wh..opq", "").
		file("opq/new", "new").bytes()
	c2, _, err := s.Apply(ctx, c1, bytes.NewReader(gz(t, top)), LayerDigests{DiffID: dg(top)})
	if err != nil {
		t.Fatal(err)
	}
	if c2 != ChainID(c1, dg(top)) {
		t.Fatalf("chain %s", c2)
	}
	// The layer dir holds overlay-format whiteouts, not .wh. files.
	l2 := s.layerPath(c2)
	if st := lstat(t, filepath.Join(l2, "a/gone")); !isOverlayWhiteout(&st) {
		t.Errorf("a/gone is not a whiteout: mode %o", st.Mode)
	}
	if !isOpaqueDir(filepath.Join(l2, "opq")) {
		t.Error("opq is not opaque")
	}
	for _, p := range []string{"a/.wh.gone", "opq/.wh..wh..opq"} {
		if _, err := os.Lstat(filepath.Join(l2, p)); err == nil {
			t.Errorf("%s written as a file", p)
		}
	}

	if err := s.Prepare(ctx, "c1", c2); err != nil {
		t.Fatal(err)
	}
	if err := s.Prepare(ctx, "c1", c2); !errors.Is(err, ErrExists) {
		t.Errorf("second Prepare: %v", err)
	}
	target := filepath.Join(scratch, "rootfs")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := s.Mount(ctx, "c1", target); err != nil {
		t.Fatal(err)
	}
	mounted := true
	defer func() {
		if mounted {
			Unmount(target)
		}
	}()
	if _, err := os.Lstat(filepath.Join(target, "a/gone")); !os.IsNotExist(err) {
		t.Errorf("whited-out file visible: %v", err)
	}
	if got := readFile(t, filepath.Join(target, "a/stays")); got != "2" {
		t.Errorf("a/stays = %q", got)
	}
	if names := ls(t, filepath.Join(target, "opq")); fmt.Sprint(names) != "[new]" {
		t.Errorf("opaque dir shows %v", names)
	}
	if err := s.RemoveActive(ctx, "c1"); !errors.Is(err, ErrInUse) {
		t.Errorf("RemoveActive while mounted: %v", err)
	}
	// Change the container's view.
	if err := os.WriteFile(filepath.Join(target, "newfile"), []byte("hello"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(target, "newfile"), filepath.Join(target, "newlink")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(target, "del")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(target, "a")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(target, "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, "a/fresh"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := unix.Setxattr(filepath.Join(target, "newfile"), "user.k", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}

	var out bytes.Buffer
	diffID, size, err := s.Diff(ctx, "c1", &out)
	if err != nil {
		t.Fatal(err)
	}
	if diffID != digest.FromBytes(out.Bytes()) || size != int64(out.Len()) {
		t.Errorf("Diff returned %s/%d for %s/%d", diffID, size, digest.FromBytes(out.Bytes()), out.Len())
	}
	got := map[string]*tar.Header{}
	var order []string
	tr := tar.NewReader(bytes.NewReader(out.Bytes()))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = h
		order = append(order, h.Name)
	}
	if h := got["newfile"]; h == nil || h.Size != 5 || h.Mode != 0o640 || h.PAXRecords["SCHILY.xattr.user.k"] != "v" {
		t.Errorf("newfile header %+v", h)
	}
	if h := got["newlink"]; h == nil || h.Typeflag != tar.TypeLink || h.Linkname != "newfile" {
		t.Errorf("newlink header %+v", h)
	}
	if h := got[".wh.del"]; h == nil || h.Typeflag != tar.TypeReg || h.Size != 0 {
		t.Errorf("no whiteout for del: %v", order)
	}
	// "a" was removed and recreated: overlay made it opaque.
	for _, n := range []string{"a/", "a/.wh..wh..opq", "a/fresh"} {
		if got[n] == nil {
			t.Errorf("diff lacks %s: %v", n, order)
		}
	}
	if fmt.Sprint(order) != "[a/ a/.wh..wh..opq a/fresh .wh.del newfile newlink]" {
		t.Errorf("diff order: %v", order)
	}
	var again bytes.Buffer
	if d2, _, err := s.Diff(ctx, "c1", &again); err != nil || d2 != diffID || !bytes.Equal(again.Bytes(), out.Bytes()) {
		t.Errorf("Diff is not deterministic: %s vs %s, %v", d2, diffID, err)
	}
	// The diff applies as a new layer on top and reproduces the view.
	c3, _, err := s.Apply(ctx, c2, bytes.NewReader(out.Bytes()), LayerDigests{DiffID: diffID})
	if err != nil {
		t.Fatal(err)
	}

	if err := Unmount(target); err != nil {
		t.Fatal(err)
	}
	mounted = false
	if err := s.RemoveActive(ctx, "c1"); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveActive(ctx, "c1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("second RemoveActive: %v", err)
	}

	if err := s.Prepare(ctx, "c2", c3); err != nil {
		t.Fatal(err)
	}
	if err := s.Mount(ctx, "c2", target); err != nil {
		t.Fatal(err)
	}
	names := ls(t, target)
	if fmt.Sprint(names) != "[a keep newfile newlink opq]" {
		t.Errorf("rootfs from diff layer: %v", names)
	}
	if n := ls(t, filepath.Join(target, "a")); fmt.Sprint(n) != "[fresh]" {
		t.Errorf("a/ = %v", n)
	}
	if err := Unmount(target); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveActive(ctx, "c2"); err != nil {
		t.Fatal(err)
	}
	if m := testutil.MountsUnder(filepath.Dir(scratch)); len(m) != 0 {
		t.Errorf("mounts left: %v", m)
	}
}

func ls(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestMountEmptyChain(t *testing.T) {
	s, scratch := newStore(t)
	ctx := context.Background()
	if err := s.Prepare(ctx, "scratch", ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Mount(ctx, "scratch", scratch); err != nil {
		t.Fatal(err)
	}
	err := os.WriteFile(filepath.Join(scratch, "f"), []byte("x"), 0o644)
	if uerr := Unmount(scratch); uerr != nil {
		t.Fatal(uerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	if got := ls(t, filepath.Join(s.activePath("scratch"), "upper")); fmt.Sprint(got) != "[f]" {
		t.Errorf("upper = %v", got)
	}
	if ents := ls(t, filepath.Join(s.root, emptyDir)); len(ents) != 0 {
		t.Errorf("empty lower dir got %v", ents)
	}
	_, active, err := s.Usage()
	if err != nil || active != 1 {
		t.Errorf("Usage active = %d, %v", active, err)
	}
	if err := s.RemoveActive(ctx, "scratch"); err != nil {
		t.Fatal(err)
	}
}

func TestMount200Layers(t *testing.T) {
	s, scratch := newStore(t)
	ctx := context.Background()
	var chain digest.Digest
	for i := range 200 {
		b := newTar(t).file(fmt.Sprintf("f%03d", i), fmt.Sprint(i)).bytes()
		var err error
		chain, _, err = s.Apply(ctx, chain, bytes.NewReader(b), LayerDigests{})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Prepare(ctx, "big", chain); err != nil {
		t.Fatal(err)
	}
	if err := s.Mount(ctx, "big", scratch); err != nil {
		t.Fatal(err)
	}
	names := ls(t, scratch)
	if err := Unmount(scratch); err != nil {
		t.Fatal(err)
	}
	if len(names) != 200 || names[0] != "f000" || names[199] != "f199" {
		t.Errorf("%d files visible (%v...)", len(names), names[:min(3, len(names))])
	}
	// The classic fallback must fail cleanly, not truncate the lower list.
	forceClassicMount = true
	err := s.Mount(ctx, "big", scratch)
	forceClassicMount = false
	if err == nil {
		Unmount(scratch)
		t.Error("classic mount of 200 layers unexpectedly succeeded")
	}
	if err := s.RemoveActive(ctx, "big"); err != nil {
		t.Fatal(err)
	}
}

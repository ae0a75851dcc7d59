package snapshot

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

func TestApplyBaseLayerAllTypes(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	mt := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	dirMT := time.Date(2019, 6, 7, 8, 9, 10, 0, time.UTC)
	longPAX := "deep/" + strings.Repeat("p", 150) + "/file"
	longGNU := "deep/" + strings.Repeat("g", 150)
	capv := "\x01\x00\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
	b := newTar(t).
		add(&tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o750, Uid: 1000, Gid: 1000, ModTime: dirMT}, "").
		add(&tar.Header{Name: "etc/hosts", Mode: 0o640, Uid: 1001, Gid: 1002, ModTime: mt, AccessTime: mt.Add(time.Hour), Format: tar.FormatPAX}, "127.0.0.1 localhost\n").
		add(&tar.Header{Name: "etc/hosts.link", Typeflag: tar.TypeLink, Linkname: "etc/hosts"}, "").
		add(&tar.Header{Name: "etc/abs", Typeflag: tar.TypeSymlink, Linkname: "/etc/hosts", ModTime: mt}, "").
		add(&tar.Header{Name: "etc/rel", Typeflag: tar.TypeSymlink, Linkname: "../etc/hosts", Uid: 7, Gid: 8}, "").
		add(&tar.Header{Name: "bin/su", Mode: 0o4755, Uid: 0, Gid: 0, ModTime: mt}, "#!/bin/sh\n").
		add(&tar.Header{Name: "bin/sg", Mode: 0o2711, Uid: 5, Gid: 6, ModTime: mt}, "x").
		add(&tar.Header{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777, ModTime: mt}, "").
		add(&tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3, ModTime: mt}, "").
		add(&tar.Header{Name: "dev/loop0", Typeflag: tar.TypeBlock, Mode: 0o660, Devmajor: 7, Devminor: 0, Gid: 6}, "").
		add(&tar.Header{Name: "run/fifo", Typeflag: tar.TypeFifo, Mode: 0o600}, "").
		add(&tar.Header{Name: "xattr", Mode: 0o755, Format: tar.FormatPAX, PAXRecords: map[string]string{
			"SCHILY.xattr.user.foo":               "bar",
			"SCHILY.xattr.security.capability":    capv,
			"SCHILY.xattr.trusted.overlay.opaque": "y", // must be dropped
		}}, "cap").
		add(&tar.Header{Name: longPAX, Format: tar.FormatPAX}, "pax").
		add(&tar.Header{Name: longGNU, Format: tar.FormatGNU}, "gnu").
		add(&tar.Header{Name: "/absolute/name"}, "stripped").
		add(&tar.Header{Name: "missing/parent/file"}, "made").
		dir("./").
		file("etc/dup", "first").
		add(&tar.Header{Name: "etc/dup", Typeflag: tar.TypeSymlink, Linkname: "elsewhere"}, "").
		add(&tar.Header{Name: "etc/dup2", Typeflag: tar.TypeSymlink, Linkname: "/etc/shadow"}, "").
		file("etc/dup2", "replaces the symlink, not its target").
		bytes()

	chain, size, err := s.Apply(ctx, "", bytes.NewReader(b), LayerDigests{})
	if err != nil {
		t.Fatal(err)
	}
	if chain != dg(b) {
		t.Errorf("chain ID %s, want the diffID %s", chain, dg(b))
	}
	wantSize := int64(len("127.0.0.1 localhost\n#!/bin/sh\nxcappaxgnustrippedmadefirstreplaces the symlink, not its target"))
	if size != wantSize {
		t.Errorf("size %d, want %d", size, wantSize)
	}
	info, err := s.Info(chain)
	if err != nil || info.DiffID != dg(b) || info.Parent != "" || info.Size != size {
		t.Fatalf("Info = %+v, %v", info, err)
	}
	l := s.layerPath(chain)

	st := lstat(t, filepath.Join(l, "etc/hosts"))
	if st.Mode&0o7777 != 0o640 || st.Uid != 1001 || st.Gid != 1002 {
		t.Errorf("etc/hosts mode %o uid %d gid %d", st.Mode&0o7777, st.Uid, st.Gid)
	}
	if st.Mtim.Sec != mt.Unix() || st.Atim.Sec != mt.Add(time.Hour).Unix() {
		t.Errorf("etc/hosts mtime %d atime %d", st.Mtim.Sec, st.Atim.Sec)
	}
	if st.Nlink != 2 {
		t.Errorf("etc/hosts nlink %d, want 2", st.Nlink)
	}
	if st2 := lstat(t, filepath.Join(l, "etc/hosts.link")); st2.Ino != st.Ino {
		t.Error("hard link does not share the inode")
	}
	// Read after the atime check: relatime would refresh a day-old atime.
	if got := readFile(t, filepath.Join(l, "etc/hosts")); got != "127.0.0.1 localhost\n" {
		t.Errorf("etc/hosts = %q", got)
	}
	dst := lstat(t, filepath.Join(l, "etc"))
	if dst.Mode&0o7777 != 0o750 || dst.Uid != 1000 || dst.Mtim.Sec != dirMT.Unix() {
		t.Errorf("etc/ mode %o uid %d mtime %v", dst.Mode&0o7777, dst.Uid, time.Unix(dst.Mtim.Sec, 0))
	}
	for name, want := range map[string]string{"etc/abs": "/etc/hosts", "etc/rel": "../etc/hosts", "etc/dup": "elsewhere"} {
		if got, err := os.Readlink(filepath.Join(l, name)); err != nil || got != want {
			t.Errorf("readlink %s = %q, %v; want %q", name, got, err, want)
		}
	}
	if st := lstat(t, filepath.Join(l, "etc/rel")); st.Uid != 7 || st.Gid != 8 {
		t.Errorf("symlink owner %d:%d", st.Uid, st.Gid)
	}
	if st := lstat(t, filepath.Join(l, "etc/abs")); st.Mtim.Sec != mt.Unix() {
		t.Errorf("symlink mtime %d", st.Mtim.Sec)
	}
	if st := lstat(t, filepath.Join(l, "etc/dup2")); st.Mode&unix.S_IFMT != unix.S_IFREG {
		t.Error("etc/dup2 is not a regular file")
	}
	if st := lstat(t, filepath.Join(l, "bin/su")); st.Mode&0o7777 != 0o4755 {
		t.Errorf("bin/su mode %o", st.Mode&0o7777)
	}
	if st := lstat(t, filepath.Join(l, "bin/sg")); st.Mode&0o7777 != 0o2711 || st.Uid != 5 || st.Gid != 6 {
		t.Errorf("bin/sg mode %o owner %d:%d", st.Mode&0o7777, st.Uid, st.Gid)
	}
	if st := lstat(t, filepath.Join(l, "bin")); st.Mode&0o7777 != 0o755 {
		t.Errorf("implicit parent bin mode %o", st.Mode&0o7777)
	}
	if st := lstat(t, filepath.Join(l, "tmp")); st.Mode&0o7777 != 0o1777 {
		t.Errorf("tmp mode %o", st.Mode&0o7777)
	}
	if st := lstat(t, filepath.Join(l, "dev/null")); st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) || st.Mode&0o777 != 0o666 {
		t.Errorf("dev/null mode %o rdev %x", st.Mode, st.Rdev)
	}
	if st := lstat(t, filepath.Join(l, "dev/loop0")); st.Mode&unix.S_IFMT != unix.S_IFBLK || st.Rdev != unix.Mkdev(7, 0) || st.Gid != 6 {
		t.Errorf("dev/loop0 mode %o rdev %x gid %d", st.Mode, st.Rdev, st.Gid)
	}
	if st := lstat(t, filepath.Join(l, "run/fifo")); st.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Errorf("run/fifo mode %o", st.Mode)
	}
	buf := make([]byte, 64)
	if n, err := unix.Lgetxattr(filepath.Join(l, "xattr"), "user.foo", buf); err != nil || string(buf[:n]) != "bar" {
		t.Errorf("user.foo = %q, %v", buf[:max(n, 0)], err)
	}
	if n, err := unix.Lgetxattr(filepath.Join(l, "xattr"), "security.capability", buf); err != nil || string(buf[:n]) != capv {
		t.Errorf("security.capability = %q, %v", buf[:max(n, 0)], err)
	}
	if _, err := unix.Lgetxattr(filepath.Join(l, "xattr"), opaqueXattr, buf); err == nil {
		t.Error("trusted.overlay.* xattr from the tar was applied")
	}
	for name, want := range map[string]string{longPAX: "pax", longGNU: "gnu", "absolute/name": "stripped", "missing/parent/file": "made"} {
		if got := readFile(t, filepath.Join(l, name)); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if st := lstat(t, filepath.Join(l, "missing")); st.Mode&0o7777 != 0o755 {
		t.Errorf("implicit dir mode %o", st.Mode&0o7777)
	}
}

func TestApplyCompressedDigests(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	plain := newTar(t).dir("d/").file("d/f", strings.Repeat("hello ", 1000)).bytes()
	diffID := dg(plain)
	for _, tc := range []struct {
		name string
		blob []byte
	}{{"tar", plain}, {"gzip", gz(t, plain)}, {"zstd", zst(t, plain)}} {
		t.Run(tc.name, func(t *testing.T) {
			wrong := digest.FromString("something else")
			_, _, err := s.Apply(ctx, "", bytes.NewReader(tc.blob), LayerDigests{Compressed: wrong, DiffID: diffID})
			if !errors.Is(err, ErrDigestMismatch) {
				t.Fatalf("wrong compressed digest: err = %v", err)
			}
			_, _, err = s.Apply(ctx, "", bytes.NewReader(tc.blob), LayerDigests{Compressed: dg(tc.blob), DiffID: wrong})
			if !errors.Is(err, ErrDigestMismatch) {
				t.Fatalf("wrong diffID: err = %v", err)
			}
			assertNoCommitted(t, s)
			assertNoTmp(t, s)

			chain, size, err := s.Apply(ctx, "", bytes.NewReader(tc.blob), LayerDigests{Compressed: dg(tc.blob)})
			if err != nil {
				t.Fatal(err)
			}
			if chain != diffID || size != 6000 {
				t.Errorf("chain %s size %d", chain, size)
			}
			if got := readFile(t, filepath.Join(s.layerPath(chain), "d/f")); got != strings.Repeat("hello ", 1000) {
				t.Error("content differs")
			}
			if err := s.Remove(ctx, chain); err != nil {
				t.Fatal(err)
			}
		})
	}
	// Truncated and garbage blobs fail cleanly too.
	blob := gz(t, plain)
	if _, _, err := s.Apply(ctx, "", bytes.NewReader(blob[:len(blob)/2]), LayerDigests{}); err == nil {
		t.Error("truncated gzip accepted")
	}
	if _, _, err := s.Apply(ctx, "", bytes.NewReader([]byte("BZh91AY&SY")), LayerDigests{}); !errors.Is(err, ErrUnsupportedCompression) {
		t.Errorf("bzip2: err = %v", err)
	}
	assertNoCommitted(t, s)
	assertNoTmp(t, s)
}

func TestApplyHostile(t *testing.T) {
	s, scratch := newStore(t)
	ctx := context.Background()
	host := filepath.Join(scratch, "host")
	if err := os.Mkdir(host, 0o755); err != nil {
		t.Fatal(err)
	}
	up := strings.Repeat("../", 40)
	cases := []struct {
		name  string
		entry string // the entry the error must name
		tar   func(*tb)
		err   error
	}{
		{"dotdot", "../escape", func(b *tb) { b.file("../escape", "x") }, ErrUnsafeEntry},
		{"inner dotdot", "a/../../escape", func(b *tb) { b.file("a/../../escape", "x") }, ErrUnsafeEntry},
		{"hardlink outside", "h", func(b *tb) {
			b.add(&tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "../../etc/passwd"}, "")
		}, ErrUnsafeEntry},
		{"hardlink missing", "h", func(b *tb) {
			b.add(&tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "nothere"}, "")
		}, ErrUnsafeEntry},
		{"hardlink through symlink", "h", func(b *tb) {
			b.add(&tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "/etc"}, "").
				add(&tar.Header{Name: "h", Typeflag: tar.TypeLink, Linkname: "l/passwd"}, "")
		}, ErrUnsafeEntry},
		{"absolute symlink then write", "evil/pwned", func(b *tb) {
			b.add(&tar.Header{Name: "evil", Typeflag: tar.TypeSymlink, Linkname: host}, "").file("evil/pwned", "x")
		}, ErrUnsafeEntry},
		{"relative symlink chain", "x" + host + "/pwned", func(b *tb) {
			b.add(&tar.Header{Name: "x", Typeflag: tar.TypeSymlink, Linkname: up}, "").file("x"+host+"/pwned", "x")
		}, ErrUnsafeEntry},
		{"symlink then dir", "evil/sub/", func(b *tb) {
			b.add(&tar.Header{Name: "evil", Typeflag: tar.TypeSymlink, Linkname: host}, "").dir("evil/sub/")
		}, ErrUnsafeEntry},
		{"symlink then whiteout", "evil/.wh.x", func(b *tb) {
			b.add(&tar.Header{Name: "evil", Typeflag: tar.TypeSymlink, Linkname: host}, "").file("evil/.wh.x", "")
		}, ErrUnsafeEntry},
		{"unknown type", "weird", func(b *tb) {
			b.add(&tar.Header{Name: "weird", Typeflag: 'Z'}, "")
		}, ErrInvalidLayer},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := newTar(t)
			b.file("ok", "fine")
			tc.tar(b)
			_, _, err := s.Apply(ctx, "", bytes.NewReader(gz(t, b.bytes())), LayerDigests{})
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if !strings.Contains(err.Error(), `"`+tc.entry+`"`) {
				t.Errorf("error %q does not name entry %q", err, tc.entry)
			}
			if ents, _ := os.ReadDir(host); len(ents) != 0 {
				t.Errorf("written outside the layer: %v", ents)
			}
			for _, p := range []string{filepath.Join(scratch, "escape"), "/etc/passwd.h", filepath.Join(s.root, "escape")} {
				if _, err := os.Lstat(p); err == nil {
					t.Errorf("%s exists", p)
				}
			}
			assertNoCommitted(t, s)
			assertNoTmp(t, s)
		})
	}
}

func TestApplyOnceAndConcurrent(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	plain := newTar(t).file("a", "a").bytes()
	blob := gz(t, plain)
	chain, _, err := s.Apply(ctx, "", bytes.NewReader(blob), LayerDigests{Compressed: dg(blob), DiffID: dg(plain)})
	if err != nil {
		t.Fatal(err)
	}
	again, size, err := s.Apply(ctx, "", failReader{t}, LayerDigests{Compressed: dg(blob), DiffID: dg(plain)})
	if err != nil || again != chain || size != 1 {
		t.Fatalf("second Apply = %s, %d, %v", again, size, err)
	}

	// Concurrent applies without a known diffID both unpack; one rename
	// wins and both report the same chain.
	child := newTar(t).file("b", strings.Repeat("b", 1<<20)).bytes()
	var wg sync.WaitGroup
	results := make([]digest.Digest, 4)
	errs := make([]error, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], _, errs[i] = s.Apply(ctx, chain, bytes.NewReader(child), LayerDigests{})
		}()
	}
	wg.Wait()
	for i := range results {
		if errs[i] != nil || results[i] != ChainID(chain, dg(child)) {
			t.Errorf("apply %d: %s, %v", i, results[i], errs[i])
		}
	}
	n := 0
	if err := s.Walk(func(Info) error { n++; return nil }); err != nil || n != 2 {
		t.Errorf("Walk saw %d layers, %v", n, err)
	}
	assertNoTmp(t, s)
}

func TestChainID(t *testing.T) {
	a := digest.FromString("a")
	b := digest.FromString("b")
	if ChainID("", a) != a {
		t.Error("base chain ID must be the diffID")
	}
	if want := digest.FromString(string(a) + " " + string(b)); ChainID(a, b) != want {
		t.Errorf("ChainID = %s, want %s", ChainID(a, b), want)
	}
}

package files

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func ctrTree() tree {
	return tree{
		"file":                          "ctr-file",
		"dir/a":                         "ctr-a",
		"dir/sub/b":                     "ctr-b",
		"existing-dir/old":              "old",
		"existing-file":                 "old-file",
		"link-to-dir -> /existing-dir":  "",
		"link-to-file -> existing-file": "",
	}
}

func hostTree() tree {
	return tree{
		"file":      "host-file",
		"dir/a":     "host-a",
		"dir/sub/b": "host-b",
	}
}

type cpCase struct {
	name    string
	src     string
	dst     string
	follow  bool
	want    map[string]string // path (below the destination root) -> content, "" for a dir, "-> x" for a symlink
	wantErr error
}

var cpCases = []cpCase{
	{name: "file to new", src: "file", dst: "/new", want: map[string]string{"new": "host-file"}},
	{name: "file to new dir path", src: "file", dst: "/new/", wantErr: ErrDirNotExists},
	{name: "file onto file", src: "file", dst: "/existing-file", want: map[string]string{"existing-file": "host-file"}},
	{name: "file into dir", src: "file", dst: "/existing-dir", want: map[string]string{"existing-dir/file": "host-file", "existing-dir/old": "old"}},
	{name: "file into dir/", src: "file", dst: "/existing-dir/", want: map[string]string{"existing-dir/file": "host-file"}},
	{name: "file into dir/.", src: "file", dst: "/existing-dir/.", want: map[string]string{"existing-dir/file": "host-file"}},
	{name: "dir to new", src: "dir", dst: "/new", want: map[string]string{"new/a": "host-a", "new/sub/b": "host-b"}},
	{name: "dir to new/", src: "dir", dst: "/new/", want: map[string]string{"new/a": "host-a"}},
	{name: "dir onto file", src: "dir", dst: "/existing-file", wantErr: ErrCannotCopyDir},
	{name: "dir into dir", src: "dir", dst: "/existing-dir", want: map[string]string{"existing-dir/dir/a": "host-a", "existing-dir/dir/sub/b": "host-b", "existing-dir/old": "old"}},
	{name: "dir content into dir", src: "dir/.", dst: "/existing-dir", want: map[string]string{"existing-dir/a": "host-a", "existing-dir/sub/b": "host-b", "existing-dir/old": "old"}},
	{name: "dir content to new", src: "dir/.", dst: "/new", want: map[string]string{"new/a": "host-a", "new/sub/b": "host-b"}},
	{name: "missing parent", src: "file", dst: "/nodir/new", wantErr: ErrDirNotExists},
	{name: "parent is a file", src: "file", dst: "/existing-file/new", wantErr: ErrNotDirectory},
	{name: "dst symlink to dir", src: "file", dst: "/link-to-dir", want: map[string]string{"existing-dir/file": "host-file", "link-to-dir": "-> /existing-dir"}},
	{name: "dst symlink to file", src: "file", dst: "/link-to-file", want: map[string]string{"existing-file": "host-file", "link-to-file": "-> existing-file"}},
	{name: "missing source", src: "nothere", dst: "/new", wantErr: os.ErrNotExist},
}

func checkWant(t *testing.T, root string, want map[string]string) {
	t.Helper()
	for p, w := range want {
		full := filepath.Join(root, p)
		fi, err := os.Lstat(full)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		switch {
		case strings.HasPrefix(w, "-> "):
			target, _ := os.Readlink(full)
			if fi.Mode()&os.ModeSymlink == 0 || target != w[3:] {
				t.Errorf("%s: want symlink %s, got mode %v target %q", p, w, fi.Mode(), target)
			}
		case w == "":
			if !fi.IsDir() {
				t.Errorf("%s: want a directory, got %v", p, fi.Mode())
			}
		default:
			b, _ := os.ReadFile(full)
			if !fi.Mode().IsRegular() || string(b) != w {
				t.Errorf("%s: want file %q, got mode %v content %q", p, w, fi.Mode(), b)
			}
		}
	}
}

func TestCopyToContainerRules(t *testing.T) {
	for _, tc := range cpCases {
		t.Run(tc.name, func(t *testing.T) {
			rootfs, host := t.TempDir(), t.TempDir()
			mkTree(t, rootfs, ctrTree())
			mkTree(t, host, hostTree())
			before := listTree(t, rootfs)
			src := filepath.Join(host, tc.src)
			if strings.HasSuffix(tc.src, "/.") {
				src += "/."
			}
			err := CopyToContainer(ctx, rootfs, src, tc.dst, CopyOpts{FollowLink: tc.follow})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				sameTree(t, "rootfs after a failed copy", listTree(t, rootfs), before)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkWant(t, rootfs, tc.want)
		})
	}
}

func TestCopyFromContainerRules(t *testing.T) {
	for _, tc := range cpCases {
		t.Run(tc.name, func(t *testing.T) {
			// Mirror image: the container holds the source tree, the
			// host the destination tree.
			rootfs, host := t.TempDir(), t.TempDir()
			mkTree(t, rootfs, hostTree())
			dstTree := ctrTree()
			delete(dstTree, "link-to-dir -> /existing-dir")
			dstTree["link-to-dir -> "+filepath.Join(host, "existing-dir")] = ""
			mkTree(t, host, dstTree)
			before := listTree(t, host)
			want := map[string]string{}
			for k, v := range tc.want {
				if k == "link-to-dir" {
					v = "-> " + filepath.Join(host, "existing-dir")
				}
				want[k] = v
			}
			err := CopyFromContainer(ctx, rootfs, tc.src, host+tc.dst, CopyOpts{FollowLink: tc.follow})
			if tc.wantErr != nil {
				wantErr := tc.wantErr
				if wantErr == os.ErrNotExist {
					wantErr = ErrNotFound
				}
				if !errors.Is(err, wantErr) {
					t.Fatalf("err = %v, want %v", err, wantErr)
				}
				sameTree(t, "host after a failed copy", listTree(t, host), before)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			checkWant(t, host, want)
		})
	}
}

func TestCopySymlinkSource(t *testing.T) {
	rootfs, host := t.TempDir(), t.TempDir()
	mkTree(t, rootfs, tree{"etc/conf": "real", "link -> /etc/conf": "", "dlink -> etc": ""})
	// Without -L: the symlink itself.
	must(t, CopyFromContainer(ctx, rootfs, "/link", filepath.Join(host, "a"), CopyOpts{}))
	checkWant(t, host, map[string]string{"a": "-> /etc/conf"})
	// With -L: the target's content under the link's name.
	must(t, CopyFromContainer(ctx, rootfs, "/link", host, CopyOpts{FollowLink: true}))
	checkWant(t, host, map[string]string{"link": "real"})
	// A trailing slash follows a link to a directory (in-root).
	must(t, CopyFromContainer(ctx, rootfs, "/dlink/", filepath.Join(host, "d"), CopyOpts{}))
	checkWant(t, host, map[string]string{"d/conf": "real"})

	// Host side: -L for a host symlink.
	mkTree(t, host, tree{"hl -> a": ""})
	must(t, CopyToContainer(ctx, rootfs, filepath.Join(host, "hl"), "/", CopyOpts{}))
	checkWant(t, rootfs, map[string]string{"hl": "-> a"})
	must(t, CopyToContainer(ctx, rootfs, filepath.Join(host, "link"), "/x", CopyOpts{FollowLink: true}))
	checkWant(t, rootfs, map[string]string{"x": "real"})
}

func TestCopyOwnership(t *testing.T) {
	rootfs, host := t.TempDir(), t.TempDir()
	mkTree(t, host, tree{"f": "x", "d/g": "y"})
	for _, p := range []string{"f", "d", "d/g"} {
		must(t, os.Lchown(filepath.Join(host, p), 1234, 5678))
	}
	must(t, os.Chmod(filepath.Join(host, "f"), os.ModeSetuid|0o751))
	owner := func(p string) (int, int, os.FileMode) {
		fi, err := os.Lstat(p)
		must(t, err)
		st := fi.Sys().(*syscall.Stat_t)
		return int(st.Uid), int(st.Gid), fi.Mode()
	}
	must(t, CopyToContainer(ctx, rootfs, filepath.Join(host, "f"), "/plain", CopyOpts{}))
	must(t, CopyToContainer(ctx, rootfs, filepath.Join(host, "d"), "/plain-d", CopyOpts{CopyInOpts: CopyInOpts{UID: 100000, GID: 100000}}))
	must(t, CopyToContainer(ctx, rootfs, filepath.Join(host, "f"), "/archive", CopyOpts{CopyInOpts: CopyInOpts{CopyUIDGID: true}}))
	if u, g, m := owner(filepath.Join(rootfs, "plain")); u != 0 || g != 0 || m != 0o751|os.ModeSetuid {
		t.Errorf("without -a: %d:%d %v, want 0:0 -rwsr-x--x", u, g, m)
	}
	if u, g, _ := owner(filepath.Join(rootfs, "plain-d/g")); u != 100000 || g != 100000 {
		t.Errorf("container root 100000: %d:%d", u, g)
	}
	if u, g, m := owner(filepath.Join(rootfs, "archive")); u != 1234 || g != 5678 || m != 0o751|os.ModeSetuid {
		t.Errorf("with -a: %d:%d %v, want 1234:5678 -rwsr-x--x", u, g, m)
	}
}

func TestCopyOutStream(t *testing.T) {
	rootfs := t.TempDir()
	mkTree(t, rootfs, tree{"dir/a": "1", "dir/sub/b": "2", "file": "f", "link -> dir": ""})
	cases := []struct {
		src  string
		opts CopyOutOpts
		want string
	}{
		{"/dir", CopyOutOpts{}, "dir/ dir/a dir/sub/ dir/sub/b"},
		{"dir/", CopyOutOpts{}, "dir/ dir/a dir/sub/ dir/sub/b"},
		{"/dir/.", CopyOutOpts{}, "./ ./a ./sub/ ./sub/b"},
		{"/file", CopyOutOpts{}, "file"},
		{"/link", CopyOutOpts{}, "link"},
		{"/link", CopyOutOpts{FollowLink: true}, "link/ link/a link/sub/ link/sub/b"},
		{"/", CopyOutOpts{}, "./ ./dir/ ./dir/a ./dir/sub/ ./dir/sub/b ./file ./link"},
	}
	for _, tc := range cases {
		var buf bytes.Buffer
		st, err := CopyOut(ctx, rootfs, tc.src, &buf, tc.opts)
		if err != nil {
			t.Fatalf("%s: %v", tc.src, err)
		}
		if got := strings.Join(tarNames(t, buf.Bytes()), " "); got != tc.want {
			t.Errorf("%s: entries %q, want %q", tc.src, got, tc.want)
		}
		if st.Name == "" {
			t.Errorf("%s: empty stat name", tc.src)
		}
	}
	if _, err := CopyOut(ctx, rootfs, "/nothere", &bytes.Buffer{}, CopyOutOpts{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing source: %v", err)
	} else if !strings.Contains(err.Error(), "no such file or directory in container: /nothere") {
		t.Errorf("message: %v", err)
	}
	if _, err := CopyOut(ctx, rootfs, "/file/", &bytes.Buffer{}, CopyOutOpts{}); !errors.Is(err, ErrNotDirectory) {
		t.Errorf("file/: %v", err)
	}
}

func TestCopyInStream(t *testing.T) {
	rootfs := t.TempDir()
	mkTree(t, rootfs, tree{"dst/": "", "file": "x", "ldst -> /dst": ""})
	b := mkTar(t, dir("./"), dir("./d"), reg("./d/f", "hello"), symlink("./l", "d/f"), hardlink("./h", "./d/f"))
	must(t, CopyIn(ctx, rootfs, "/ldst", bytes.NewReader(b), CopyInOpts{}))
	checkWant(t, rootfs, map[string]string{"dst/d": "", "dst/d/f": "hello", "dst/l": "-> d/f", "dst/h": "hello"})
	a, _ := os.Stat(filepath.Join(rootfs, "dst/d/f"))
	h, _ := os.Stat(filepath.Join(rootfs, "dst/h"))
	if !os.SameFile(a, h) {
		t.Error("hard link not kept")
	}
	if err := CopyIn(ctx, rootfs, "/file", bytes.NewReader(b), CopyInOpts{}); !errors.Is(err, ErrExtractPointNotDirectory) {
		t.Errorf("onto a file: %v", err)
	}
	if err := CopyIn(ctx, rootfs, "/nothere", bytes.NewReader(b), CopyInOpts{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing: %v", err)
	}
	// Directory vs non-directory conflicts.
	conflict := mkTar(t, reg("d", "file over dir"))
	if err := CopyIn(ctx, rootfs, "/dst", bytes.NewReader(conflict), CopyInOpts{}); !errors.Is(err, ErrTypeConflict) {
		t.Errorf("file over dir: %v", err)
	}
	must(t, CopyIn(ctx, rootfs, "/dst", bytes.NewReader(conflict), CopyInOpts{AllowOverwriteDirWithFile: true}))
	checkWant(t, rootfs, map[string]string{"dst/d": "file over dir"})
	if err := CopyIn(ctx, rootfs, "/dst", bytes.NewReader(mkTar(t, dir("h"))), CopyInOpts{}); !errors.Is(err, ErrTypeConflict) {
		t.Errorf("dir over file: %v", err)
	}
}

func TestStatPath(t *testing.T) {
	rootfs := t.TempDir()
	mkTree(t, rootfs, tree{"etc/passwd": "root", "abs -> /etc/passwd": "", "rel -> ../../etc": "", "out -> /nonexistent/x": ""})
	st, err := StatPath(rootfs, "/etc/passwd")
	must(t, err)
	if st.Name != "passwd" || st.Size != 4 || !st.Mode.IsRegular() || st.LinkTarget != "" {
		t.Errorf("passwd: %+v", st)
	}
	for p, want := range map[string]string{"/abs": "/etc/passwd", "rel": "/etc", "/out": "/nonexistent/x"} {
		st, err := StatPath(rootfs, p)
		must(t, err)
		if st.Mode&os.ModeSymlink == 0 || st.LinkTarget != want {
			t.Errorf("%s: %+v, want link target %s", p, st, want)
		}
	}
	st, err = StatPath(rootfs, "/rel/")
	must(t, err)
	if !st.Mode.IsDir() || st.Name != "rel" {
		t.Errorf("rel/: %+v", st)
	}
	if _, err := StatPath(rootfs, "/nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("nope: %v", err)
	}
}

package volume

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// describe lists what a copy must keep of a tree.
func describe(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	inodes := map[uint64]string{}
	err := filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		st := info.Sys().(*syscall.Stat_t)
		line := fmt.Sprintf("%s %v %d:%d", rel, info.Mode(), st.Uid, st.Gid)
		switch {
		case info.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			line += " -> " + target
		case info.Mode()&os.ModeDevice != 0:
			line += fmt.Sprintf(" dev %d,%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
		case info.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			line += fmt.Sprintf(" %q", b)
			if first, ok := inodes[st.Ino]; ok {
				line += " link of " + first
			} else {
				inodes[st.Ino] = rel
			}
		}
		if info.Mode()&os.ModeSymlink == 0 && rel != "." {
			line += " " + info.ModTime().UTC().Format(time.RFC3339Nano)
		}
		buf := make([]byte, 64)
		if n, err := unix.Lgetxattr(p, "user.test", buf); err == nil {
			line += " user.test=" + string(buf[:n])
		}
		out = append(out, line)
		return nil
	})
	must(t, err)
	slices.Sort(out)
	return out
}

func write(t *testing.T, p, content string) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, []byte(content), 0o644))
}

func TestCopyUp(t *testing.T) {
	rootfs := t.TempDir()
	src := filepath.Join(rootfs, "var/lib/app")
	write(t, filepath.Join(src, "conf"), "setting=1")
	write(t, filepath.Join(src, "sub/deep/file"), "deep")
	must(t, os.Link(filepath.Join(src, "conf"), filepath.Join(src, "sub/conf-link")))
	must(t, os.Symlink("/etc/shadow", filepath.Join(src, "abs-link")))
	must(t, os.Symlink("../conf", filepath.Join(src, "sub/rel-link")))
	must(t, unix.Mkfifo(filepath.Join(src, "fifo"), 0o620))
	must(t, unix.Mknod(filepath.Join(src, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(t, os.Chown(filepath.Join(src, "sub"), 999, 998))
	must(t, os.Chown(filepath.Join(src, "conf"), 1000, 1001))
	must(t, os.Lchown(filepath.Join(src, "abs-link"), 5, 6))
	must(t, os.Chmod(filepath.Join(src, "conf"), 0o640|os.ModeSetgid))
	must(t, os.Chmod(filepath.Join(src, "sub"), 0o2770|os.ModeSetgid))
	must(t, os.Chown(src, 33, 33))
	must(t, os.Chmod(src, 0o750))
	must(t, unix.Setxattr(filepath.Join(src, "conf"), "user.test", []byte("x"), 0))
	old := time.Unix(1_234_567_890, 123456789)
	filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode()&os.ModeSymlink == 0 {
			os.Chtimes(p, old, old)
		}
		return nil
	})

	s, _ := newStore(t)
	v, err := s.Create(ctx, "app", nil, nil, false)
	must(t, err)
	must(t, CopyUp(ctx, rootfs, "/var/lib/app", v.Mountpoint))
	got, want := describe(t, v.Mountpoint), describe(t, src)
	if !slices.Equal(got, want) {
		t.Errorf("copy-up:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}

	// dst not empty: nothing happens.
	write(t, filepath.Join(src, "later"), "x")
	must(t, CopyUp(ctx, rootfs, "/var/lib/app", v.Mountpoint))
	if _, err := os.Lstat(filepath.Join(v.Mountpoint, "later")); err == nil {
		t.Error("copied into a non-empty volume")
	}
	// Missing path or a file: nothing happens.
	v2, err := s.Create(ctx, "other", nil, nil, false)
	must(t, err)
	must(t, CopyUp(ctx, rootfs, "/nothere", v2.Mountpoint))
	must(t, CopyUp(ctx, rootfs, "/var/lib/app/conf", v2.Mountpoint))
	if names, _ := os.ReadDir(v2.Mountpoint); len(names) != 0 {
		t.Errorf("copied: %v", names)
	}
}

// An image whose volume path is a symlink to /etc (or climbs with ..) gets
// its own /etc copied, never the host's.
func TestCopyUpSymlinkAttack(t *testing.T) {
	rootfs := t.TempDir()
	write(t, filepath.Join(rootfs, "etc/image-marker"), "image etc")
	must(t, os.Symlink("/etc", filepath.Join(rootfs, "data")))
	must(t, os.Symlink("../../../../../../../../etc", filepath.Join(rootfs, "rel")))
	must(t, os.MkdirAll(filepath.Join(rootfs, "a/b"), 0o755))
	s, _ := newStore(t)
	for i, p := range []string{"/data", "/rel", "/../../../../etc", "/a/b/../../../../../etc", "data/", "/a/../data/."} {
		v, err := s.Create(ctx, fmt.Sprintf("v%d", i), nil, nil, false)
		must(t, err)
		must(t, CopyUp(ctx, rootfs, p, v.Mountpoint))
		names, err := os.ReadDir(v.Mountpoint)
		must(t, err)
		if len(names) != 1 || names[0].Name() != "image-marker" {
			var ns []string
			for _, n := range names {
				ns = append(ns, n.Name())
			}
			t.Errorf("%s: copied %v, want the image's own /etc", p, ns)
		}
	}
	// Symlinks inside the copied tree stay symlinks.
	must(t, os.Symlink("/etc/shadow", filepath.Join(rootfs, "etc/sh")))
	v, err := s.Create(ctx, "links", nil, nil, false)
	must(t, err)
	must(t, CopyUp(ctx, rootfs, "/data", v.Mountpoint))
	if target, err := os.Readlink(filepath.Join(v.Mountpoint, "sh")); err != nil || target != "/etc/shadow" {
		t.Errorf("symlink: %q %v", target, err)
	}
}

package files

import (
	"bytes"
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

// describe lists everything about a tree that an archive must keep.
func describe(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	inodes := map[uint64]string{}
	err := filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
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
		if info.Mode()&os.ModeSymlink == 0 {
			line += " " + info.ModTime().UTC().Format(time.RFC3339)
		}
		if v, err := getxattr(p, "user.test"); err == nil {
			line += " user.test=" + v
		}
		out = append(out, line)
		return nil
	})
	must(t, err)
	slices.Sort(out)
	return out
}

func getxattr(p, name string) (string, error) {
	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(p, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

func TestExportRoundTrip(t *testing.T) {
	rootfs := t.TempDir()
	mkTree(t, rootfs, tree{
		"bin/sh":            "#!shell",
		"etc/passwd":        "root:x:0:0",
		"etc/empty/":        "",
		"home/user/.bashrc": "alias",
		"lib -> usr/lib":    "",
		"usr/lib/libc.so":   "elf",
	})
	must(t, os.Link(filepath.Join(rootfs, "bin/sh"), filepath.Join(rootfs, "bin/bash")))
	must(t, unix.Mkfifo(filepath.Join(rootfs, "etc/fifo"), 0o640))
	must(t, os.MkdirAll(filepath.Join(rootfs, "dev"), 0o755))
	must(t, unix.Mknod(filepath.Join(rootfs, "dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(t, unix.Mknod(filepath.Join(rootfs, "dev/loop9"), unix.S_IFBLK|0o660, int(unix.Mkdev(7, 9))))
	must(t, os.Chown(filepath.Join(rootfs, "home/user"), 1000, 1000))
	must(t, os.Chown(filepath.Join(rootfs, "home/user/.bashrc"), 1000, 100))
	must(t, os.Chmod(filepath.Join(rootfs, "home/user"), 0o750))
	must(t, os.Chmod(filepath.Join(rootfs, "bin/sh"), 0o755|os.ModeSetuid))
	must(t, os.Chmod(filepath.Join(rootfs, "etc/empty"), 0o1777|os.ModeSticky))
	must(t, unix.Setxattr(filepath.Join(rootfs, "etc/passwd"), "user.test", []byte("kept"), 0))
	must(t, unix.Setxattr(filepath.Join(rootfs, "etc/passwd"), "trusted.other", []byte("dropped"), 0))
	sock, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	must(t, err)
	defer unix.Close(sock)
	must(t, unix.Bind(sock, &unix.SockaddrUnix{Name: filepath.Join(rootfs, "etc/sock")}))
	old := time.Unix(1_500_000_000, 0)
	filepath.Walk(rootfs, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode()&os.ModeSymlink == 0 {
			os.Chtimes(p, old, old)
		}
		return nil
	})

	var a, b bytes.Buffer
	must(t, Export(ctx, rootfs, &a))
	must(t, Export(ctx, rootfs, &b))
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("export is not deterministic")
	}
	names := tarNames(t, a.Bytes())
	if !slices.IsSorted(names) || names[0] != "bin/" || slices.Contains(names, "etc/sock") {
		t.Errorf("entries: %v", names)
	}

	out := t.TempDir()
	must(t, CopyIn(ctx, out, "/", bytes.NewReader(a.Bytes()), CopyInOpts{CopyUIDGID: true}))
	want := describe(t, rootfs)
	want = slices.DeleteFunc(want, func(s string) bool { return strings.HasPrefix(s, "etc/sock ") })
	got := describe(t, out)
	if !slices.Equal(got, want) {
		t.Errorf("round trip:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
	if _, err := getxattr(filepath.Join(out, "etc/passwd"), "trusted.other"); err == nil {
		t.Error("trusted.* xattr was carried")
	}
}

package files

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"
)

func whiteout(t *testing.T, p string) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, unix.Mknod(p, unix.S_IFCHR, 0))
}

func opaque(t *testing.T, p string) {
	t.Helper()
	must(t, os.MkdirAll(p, 0o755))
	must(t, unix.Setxattr(p, "trusted.overlay.opaque", []byte("y"), 0))
}

// sameMeta gives upper directory p the mode and times of lower directory
// src, as overlay's copy-up does.
func sameMeta(t *testing.T, p, src string) {
	t.Helper()
	fi, err := os.Stat(src)
	must(t, err)
	must(t, os.Chmod(p, fi.Mode().Perm()))
	must(t, os.Chtimes(p, fi.ModTime(), fi.ModTime()))
}

func TestChanges(t *testing.T) {
	base := t.TempDir()
	lower2, lower1, upper := filepath.Join(base, "l2"), filepath.Join(base, "l1"), filepath.Join(base, "upper")
	mkTree(t, lower2, tree{
		"etc/passwd": "root", "etc/hosts": "h", "etc/gone": "g",
		"var/lib/x": "x", "opt/a/b": "b", "usr/bin/sh": "sh",
	})
	mkTree(t, lower1, tree{"etc/shadow": "s", "var/lib/y": "y"})
	opaque(t, filepath.Join(lower1, "var/lib"))
	whiteout(t, filepath.Join(lower1, "usr/bin/sh"))

	mkTree(t, upper, tree{
		"etc/passwd": "root2", "etc/new": "n",
		"var/lib/x": "new x", "opt/n": "n", "usr/bin/sh": "new sh",
		"home/u": "u",
	})
	whiteout(t, filepath.Join(upper, "etc/gone"))
	opaque(t, filepath.Join(upper, "opt"))
	old := time.Unix(1_000_000_000, 0)
	for _, d := range []string{"etc", "var", "var/lib", "usr", "usr/bin", "opt"} {
		for _, l := range []string{lower1, lower2} {
			if _, err := os.Stat(filepath.Join(l, d)); err == nil {
				must(t, os.Chtimes(filepath.Join(l, d), old, old))
			}
		}
	}
	for _, d := range []string{"var", "usr"} {
		sameMeta(t, filepath.Join(upper, d), filepath.Join(lower2, d))
	}
	sameMeta(t, filepath.Join(upper, "var/lib"), filepath.Join(lower1, "var/lib"))
	sameMeta(t, filepath.Join(upper, "usr/bin"), filepath.Join(lower2, "usr/bin"))

	got, err := Changes(ctx, upper, []string{lower1, lower2})
	must(t, err)
	want := []string{
		"C /etc",
		"D /etc/gone",
		"A /etc/new",
		"C /etc/passwd",
		"A /home",
		"A /home/u",
		"C /opt",
		"D /opt/a",
		"A /opt/n",
		"C /usr/bin",
		"A /usr/bin/sh",
		"C /var/lib",
		"A /var/lib/x",
	}
	if g := describeChanges(got); g != strings.Join(want, "\n") {
		t.Errorf("changes:\n%s\nwant:\n%s", g, strings.Join(want, "\n"))
	}

	// Without lowers everything is new.
	got, err = Changes(ctx, upper, nil)
	must(t, err)
	for _, c := range got {
		if c.Kind == container.ChangeModify && c.Path != "/etc" && c.Path != "/opt" {
			// Only parents of whiteouts may be reported modified.
			t.Errorf("no lowers: %s reported modified", c.Path)
		}
	}
	if _, err := Changes(ctx, filepath.Join(base, "nothere"), nil); err == nil {
		t.Error("missing upper: no error")
	}
}

func describeChanges(cs []container.FilesystemChange) string {
	var lines []string
	for _, c := range cs {
		lines = append(lines, fmt.Sprintf("%s %s", c.Kind, c.Path))
	}
	return strings.Join(lines, "\n")
}

package images_test

// A full disk fails cleanly: berth's root on a 24 MB tmpfs, a ~40 MB image
// pulled (and loaded) into it fails with one clear ENOSPC error, leaves a
// consistent, empty store and no temp files; after the tmpfs is grown the
// same command succeeds.

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/testutil"
)

// tmpfsRoot mounts a tmpfs of the given size on a new dir under dir and
// returns it; the mount is removed in the test's cleanup.
func tmpfsRoot(t *testing.T, dir, size string) string {
	t.Helper()
	mnt := filepath.Join(dir, "root")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("berth-fulldisk", mnt, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, 0); err != nil {
			if err2 := unix.Unmount(mnt, unix.MNT_DETACH); err2 != nil && !errors.Is(err2, unix.EINVAL) {
				t.Errorf("unmount %s: %v (detach: %v)", mnt, err, err2)
			}
		}
	})
	return mnt
}

func TestFullDiskFailsCleanly(t *testing.T) {
	reg := testutil.StartRegistry(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	img := makeBigImage(t, reg, "full/big", seed)

	for _, c := range []struct {
		name string
		args []string
	}{
		{"pull", []string{"pull", "-q", img.Ref}},
		{"load", []string{"load", "-q", "-i", img.Archive}},
	} {
		// 24m: the blobs do not fit (ENOSPC while downloading or reading the
		// archive); 60m: the blobs fit, unpacking them does not.
		for _, size := range []string{"24m", "60m"} {
			t.Run(c.name+"-"+size, func(t *testing.T) {
				dir := t.TempDir()
				noLeftovers(t, dir) // registered first: runs after the unmount
				root := tmpfsRoot(t, dir, size)
				e := &env{t: t, root: root, dir: dir}

				out, errOut, code := e.berth(c.args...)
				t.Logf("on a %s tmpfs: exit %d, stderr %q", size, code, errOut)
				if code == 0 {
					t.Fatalf("berth %v on a %s tmpfs succeeded: %s", c.args, size, out)
				}
				lower := strings.ToLower(errOut)
				if n := strings.Count(lower, "no space left on device"); n != 1 {
					t.Errorf("want one error mentioning %q, stderr has it %d times: %q", "no space left on device", n, errOut)
				}
				if lines := strings.Split(strings.TrimSpace(errOut), "\n"); len(lines) != 1 {
					t.Errorf("want one error line, got %d: %q", len(lines), errOut)
				}
				checkStore(e, "after ENOSPC on "+size)
				if ids := e.must("images", "-q"); ids != "" {
					t.Errorf("images after ENOSPC: %q", ids)
				}
				dirEmpty(t, filepath.Join(root, "image", "ingest"))
				dirEmpty(t, filepath.Join(root, "snapshots", "tmp"))

				// Grow the filesystem in place and run the same command again.
				if err := unix.Mount("berth-fulldisk", root, "tmpfs", unix.MS_REMOUNT, "size=200m"); err != nil {
					t.Fatalf("remount the tmpfs bigger: %v", err)
				}
				e.must(c.args...)
				checkStore(e, "after the rerun on 200m")
				checkComplete(e, "after the rerun on 200m", img.ID, img.Layers, false)
				dirEmpty(t, filepath.Join(root, "image", "ingest"))
				dirEmpty(t, filepath.Join(root, "snapshots", "tmp"))
			})
		}
	}
}

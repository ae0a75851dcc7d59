package files

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// hostSecret makes a host directory the container must never reach.
func hostSecret(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "secret"), []byte("HOST-SECRET"), 0o600))
	return dir
}

func checkHostUntouched(t *testing.T, dir string) {
	t.Helper()
	sameTree(t, "host directory", listTree(t, dir), tree{"secret": "HOST-SECRET"})
}

func noSecret(t *testing.T, what string, b []byte) {
	t.Helper()
	if bytes.Contains(b, []byte("HOST-SECRET")) {
		t.Fatalf("%s: read the host's secret", what)
	}
}

// Symlinks planted in the rootfs pointing at the host, used as a cp source,
// destination and path component: everything resolves inside the rootfs.
func TestSymlinkAttacks(t *testing.T) {
	secret := hostSecret(t)
	rootfs := t.TempDir()
	depth := strings.Repeat("../", 20)
	mkTree(t, rootfs, tree{
		"abs -> " + secret:                  "",
		"rel -> " + depth + secret[1:]:      "",
		"root -> /":                         "",
		"dotdot -> ../../../../../../../..": "",
		"etc/passwd":                        "container passwd",
		secret[1:] + "/":                    "", // what /abs and /rel mean in the container
	})
	links := []string{"/abs", "/rel", "/root", "/dotdot"}

	// As a source.
	for _, l := range links {
		for _, src := range []string{l, l + "/", l + "/.", l + "/secret"} {
			for _, follow := range []bool{false, true} {
				var buf bytes.Buffer
				_, err := CopyOut(ctx, rootfs, src, &buf, CopyOutOpts{FollowLink: follow})
				noSecret(t, src, buf.Bytes())
				if err == nil && strings.HasSuffix(src, "secret") {
					t.Errorf("%s: copied something", src)
				}
				host := t.TempDir()
				CopyFromContainer(ctx, rootfs, src, filepath.Join(host, "out"), CopyOpts{FollowLink: follow})
				filepath.Walk(host, func(p string, info os.FileInfo, err error) error {
					if err == nil && info.Mode().IsRegular() {
						b, _ := os.ReadFile(p)
						noSecret(t, src+" to host", b)
					}
					return nil
				})
			}
		}
	}
	// "/root/etc/passwd" and "/dotdot/etc/passwd" are the rootfs's own.
	var buf bytes.Buffer
	_, err := CopyOut(ctx, rootfs, "/dotdot/etc/passwd", &buf, CopyOutOpts{})
	must(t, err)
	if !bytes.Contains(buf.Bytes(), []byte("container passwd")) {
		t.Error("/dotdot/etc/passwd is not the container's")
	}

	// As a destination directory and as a path component.
	hostFile := filepath.Join(t.TempDir(), "payload")
	must(t, os.WriteFile(hostFile, []byte("payload"), 0o644))
	for _, l := range links {
		for _, dst := range []string{l, l + "/", l + "/secret", l + "/sub/x"} {
			CopyToContainer(ctx, rootfs, hostFile, dst, CopyOpts{})
			CopyIn(ctx, rootfs, dst, bytes.NewReader(mkTar(t, reg("secret", "overwritten"))), CopyInOpts{})
		}
		name := strings.TrimPrefix(l, "/")
		CopyIn(ctx, rootfs, "/", bytes.NewReader(mkTar(t, reg(name+"/secret", "overwritten"), reg(name+"/new", "x"))), CopyInOpts{})
	}
	checkHostUntouched(t, secret)
	// What went through /abs landed inside the rootfs, where the container
	// itself would have put it.
	if b, err := os.ReadFile(filepath.Join(rootfs, secret, "secret")); err != nil || string(b) != "overwritten" {
		t.Errorf("in-root copy through /abs: %q %v", b, err)
	}
}

// Hostile archives: nothing may be written outside the destination.
func TestHostileArchives(t *testing.T) {
	secret := hostSecret(t)
	rootfs := t.TempDir()
	mkTree(t, rootfs, tree{"dst/": ""})
	cases := []struct {
		name    string
		tar     []byte
		wantErr error
	}{
		{"dotdot", mkTar(t, reg("../x", "bad")), ErrUnsafeEntry},
		{"dotdot deep", mkTar(t, reg("a/../../../x", "bad")), ErrUnsafeEntry},
		{"through own symlink", mkTar(t, symlink("l", secret), reg("l/secret", "bad")), ErrUnsafeEntry},
		{"through own relative symlink", mkTar(t, symlink("l", "../../../../../../.."+secret), reg("l/secret", "bad")), ErrUnsafeEntry},
		{"through own symlink, deeper", mkTar(t, dir("d"), symlink("d/l", "/"), reg("d/l/tmp/x", "bad")), ErrUnsafeEntry},
		{"hard link out", mkTar(t, hardlink("h", "../../../../../.."+secret+"/secret")), ErrUnsafeEntry},
		{"hard link through own symlink", mkTar(t, symlink("l", secret), hardlink("h", "l/secret")), ErrUnsafeEntry},
		{"hard link to missing", mkTar(t, hardlink("h", "nothere")), ErrUnsafeEntry},
	}
	for _, tc := range cases {
		err := CopyIn(ctx, rootfs, "/dst", bytes.NewReader(tc.tar), CopyInOpts{})
		if !errors.Is(err, tc.wantErr) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.wantErr)
		}
	}
	// Absolute names are relative to the destination (docker, GNU tar).
	must(t, CopyIn(ctx, rootfs, "/dst", bytes.NewReader(mkTar(t, reg(secret+"/secret", "inside"), reg("/abs", "inside"))), CopyInOpts{}))
	checkWant(t, rootfs, map[string]string{"dst" + secret + "/secret": "inside", "dst/abs": "inside"})
	// A symlink pointing out is created as a symlink (the container
	// resolves it against its own root) and an entry replacing it replaces
	// the link, never its target.
	must(t, CopyIn(ctx, rootfs, "/dst", bytes.NewReader(mkTar(t, symlink("out", secret+"/secret"), reg("out", "replaced"))), CopyInOpts{}))
	checkWant(t, rootfs, map[string]string{"dst/out": "replaced"})
	must(t, CopyIn(ctx, rootfs, "/dst", bytes.NewReader(mkTar(t, symlink("out2", secret+"/secret"))), CopyInOpts{}))
	checkWant(t, rootfs, map[string]string{"dst/out2": "-> " + secret + "/secret"})
	// A pre-existing symlink to the host is replaced, not followed.
	must(t, os.Symlink(secret+"/secret", filepath.Join(rootfs, "dst/pre")))
	must(t, CopyIn(ctx, rootfs, "/dst", bytes.NewReader(mkTar(t, reg("pre", "replaced"))), CopyInOpts{}))
	checkHostUntouched(t, secret)
	// Host side: a container symlink pointing at the host secret, copied
	// out together with a file "through" it, never writes the host.
	ctr := t.TempDir()
	mkTree(t, ctr, tree{"d/l -> " + secret: ""})
	out := t.TempDir()
	must(t, CopyFromContainer(ctx, ctr, "/d", out, CopyOpts{}))
	checkWant(t, out, map[string]string{"d/l": "-> " + secret})
	checkHostUntouched(t, secret)
}

// A container flips a directory with a symlink to a host directory while
// cp runs: nothing is ever read from or written to the host directory.
func TestSymlinkRace(t *testing.T) {
	secret := hostSecret(t)
	rootfs := t.TempDir()
	mkTree(t, rootfs, tree{
		"flip/f":             "container file",
		"flip/secret":        "container secret",
		"alt -> " + secret:   "",
		"d/flip/f":           "container file",
		"d/alt -> " + secret: "",
		"d/other":            "x",
	})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var flips atomic.Int64
	flipper := func(dir string) {
		defer wg.Done()
		dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY, 0)
		if err != nil {
			t.Error(err)
			return
		}
		defer unix.Close(dfd)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := unix.Renameat2(dfd, "flip", dfd, "alt", unix.RENAME_EXCHANGE); err != nil {
				t.Error(err)
				return
			}
			flips.Add(1)
		}
	}
	wg.Add(2)
	go flipper(rootfs)
	go flipper(filepath.Join(rootfs, "d"))

	payload := filepath.Join(t.TempDir(), "secret")
	must(t, os.WriteFile(payload, []byte("PAYLOAD"), 0o644))
	for i := range 300 {
		var buf bytes.Buffer
		CopyOut(ctx, rootfs, "/flip/secret", &buf, CopyOutOpts{})
		noSecret(t, "CopyOut /flip/secret", buf.Bytes())
		buf.Reset()
		CopyOut(ctx, rootfs, "/flip", &buf, CopyOutOpts{FollowLink: true})
		noSecret(t, "CopyOut -L /flip", buf.Bytes())
		buf.Reset()
		CopyOut(ctx, rootfs, "/d", &buf, CopyOutOpts{})
		noSecret(t, "CopyOut /d", buf.Bytes())
		buf.Reset()
		if i%10 == 0 {
			must(t, Export(ctx, rootfs, &buf))
			noSecret(t, "Export", buf.Bytes())
		}
		CopyIn(ctx, rootfs, "/flip", bytes.NewReader(mkTar(t, reg("secret", "overwritten"), reg("new", "x"))), CopyInOpts{})
		CopyIn(ctx, rootfs, "/", bytes.NewReader(mkTar(t, reg("flip/secret", "overwritten"), reg("d/flip/secret", "overwritten"))), CopyInOpts{})
		CopyToContainer(ctx, rootfs, payload, "/flip", CopyOpts{})
		CopyToContainer(ctx, rootfs, payload, "/d/flip/secret", CopyOpts{})
		host := t.TempDir()
		CopyFromContainer(ctx, rootfs, "/flip/secret", filepath.Join(host, "x"), CopyOpts{})
		CopyFromContainer(ctx, rootfs, "/d", filepath.Join(host, "y"), CopyOpts{})
		filepath.Walk(host, func(p string, info os.FileInfo, err error) error {
			if err == nil && info.Mode().IsRegular() {
				b, _ := os.ReadFile(p)
				noSecret(t, "CopyFromContainer", b)
			}
			return nil
		})
	}
	close(stop)
	wg.Wait()
	if flips.Load() < 100 {
		t.Errorf("only %d flips: the race was not exercised", flips.Load())
	}
	checkHostUntouched(t, secret)
}

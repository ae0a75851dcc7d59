package snapshot

// Mounting an active snapshot.
//
// The rootfs of active snapshot K on chain C = L_n (child of L_n-1 ... of
// L_1) is
//
//	overlay lowerdir = committed/<C>/fs : committed/<L_n-1>/fs : ... : committed/<L_1>/fs
//	        upperdir = active/K/upper, workdir = active/K/work
//
// (top layer first). A chain of no layers uses <root>/empty as its lower.
// The mount options of the classic mount(2) live in one page, which caps
// the number of layers; so we prefer the new mount API (fsopen/fsconfig/
// fsmount/move_mount), where each layer is its own fsconfig "lowerdir+"
// call (kernel >= 6.8) and nothing is capped but overlay's own stack limit
// (500). The fallback uses mount(2) from a thread whose cwd is
// <root>/committed, so each layer costs only "<hex>/fs:" (68 bytes): about
// 55 layers fit in the page.
//
// Options: index=off, redirect_dir=off and metacopy=off keep the upper dir
// self-contained (full copies, no redirects into lower layers) so Diff can
// read it naively, and let many overlays share the same lower dirs.

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// forceClassicMount makes Mount skip the new mount API (tests use it to
// exercise the fallback).
var forceClassicMount = false

var overlayFlags = [][2]string{{"index", "off"}, {"redirect_dir", "off"}, {"metacopy", "off"}}

// lowerChain returns the chain's layer IDs, top first.
func (s *Store) lowerChain(chain digest.Digest) ([]digest.Digest, error) {
	var ids []digest.Digest
	for c := chain; c != ""; {
		info, err := s.Info(c)
		if err != nil {
			return nil, err
		}
		ids = append(ids, c)
		c = info.Parent
		if len(ids) > 10000 {
			return nil, fmt.Errorf("snapshot: chain %s: parent loop", chain)
		}
	}
	return ids, nil
}

// Mount mounts key's overlay (lower layers = the chain, top first;
// upper/work) on target.
func (s *Store) Mount(ctx context.Context, key, target string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	m, err := s.readActive(key)
	if err != nil {
		return fmt.Errorf("snapshot: mount: %w", err)
	}
	ids, err := s.lowerChain(m.Parent)
	if err != nil {
		return fmt.Errorf("snapshot: mount %s: %w", key, err)
	}
	upper := filepath.Join(s.activePath(key), "upper")
	work := filepath.Join(s.activePath(key), "work")
	if !forceClassicMount {
		err = s.mountNewAPI(ids, upper, work, target)
		if err == nil {
			return nil
		}
		if !errors.Is(err, errNoNewAPI) {
			return fmt.Errorf("snapshot: mount %s on %s: %w", key, target, err)
		}
	}
	if err := s.mountClassic(ids, upper, work, target); err != nil {
		return fmt.Errorf("snapshot: mount %s on %s: %w", key, target, err)
	}
	return nil
}

var errNoNewAPI = errors.New("new mount API or lowerdir+ unavailable")

func (s *Store) mountNewAPI(ids []digest.Digest, upper, work, target string) error {
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		if err == unix.ENOSYS || err == unix.EPERM {
			return errNoNewAPI
		}
		return fmt.Errorf("fsopen: %w", err)
	}
	defer unix.Close(fsfd)
	lowers := []string{filepath.Join(s.root, emptyDir)}
	if len(ids) > 0 {
		lowers = lowers[:0]
		for _, id := range ids {
			lowers = append(lowers, s.layerPath(id))
		}
	}
	for i, l := range lowers {
		if err := unix.FsconfigSetString(fsfd, "lowerdir+", l); err != nil {
			if i == 0 && err == unix.EINVAL {
				return errNoNewAPI // kernel < 6.8: no lowerdir+
			}
			return fmt.Errorf("lowerdir+ %s: %w", l, err)
		}
	}
	for _, kv := range [][2]string{{"upperdir", upper}, {"workdir", work}} {
		if err := unix.FsconfigSetString(fsfd, kv[0], kv[1]); err != nil {
			return fmt.Errorf("%s %s: %w", kv[0], kv[1], err)
		}
	}
	for _, kv := range overlayFlags {
		if err := unix.FsconfigSetString(fsfd, kv[0], kv[1]); err != nil {
			return fmt.Errorf("%s=%s: %w", kv[0], kv[1], err)
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return fmt.Errorf("create overlay superblock: %w", err)
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("fsmount: %w", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount: %w", err)
	}
	return nil
}

// mountClassic mounts with mount(2) and relative lower paths. chdir is
// per-process, so it runs on a locked OS thread that first unshares its
// fs_struct (CLONE_FS): the thread gets a private cwd, and because the
// goroutine exits without unlocking, Go retires the thread afterwards
// instead of reusing it with the odd cwd.
func (s *Store) mountClassic(ids []digest.Digest, upper, work, target string) error {
	absTarget, err := filepath.Abs(target)
	if err != nil {
		return err
	}
	dir := filepath.Join(s.root, committedDir)
	var lowers []string
	for _, id := range ids {
		lowers = append(lowers, id.Encoded()+"/"+layerFSDir)
	}
	if len(lowers) == 0 {
		lowers = []string{"../" + emptyDir}
	}
	data := "lowerdir=" + strings.Join(lowers, ":") + ",upperdir=" + upper + ",workdir=" + work
	for _, kv := range overlayFlags {
		data += "," + kv[0] + "=" + kv[1]
	}
	if len(data) >= unix.Getpagesize() {
		return fmt.Errorf("%d layers do not fit in mount(2) options and the new mount API is unavailable", len(ids))
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: the thread dies with the goroutine.
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- fmt.Errorf("unshare(CLONE_FS): %w", err)
			return
		}
		if err := unix.Chdir(dir); err != nil {
			errc <- err
			return
		}
		if err := unix.Mount("overlay", absTarget, "overlay", 0, data); err != nil {
			errc <- fmt.Errorf("mount(overlay, %s): %w", data, err)
			return
		}
		errc <- nil
	}()
	return <-errc
}

// Unmount unmounts target synchronously; if it is busy it is detached
// (MNT_DETACH) so the caller is never stuck.
func Unmount(target string) error {
	for {
		err := unix.Unmount(target, 0)
		switch err {
		case nil:
			return nil
		case unix.EINTR:
			continue
		case unix.EBUSY:
			if err := unix.Unmount(target, unix.MNT_DETACH); err != nil {
				return fmt.Errorf("snapshot: unmount %s: %w", target, err)
			}
			return nil
		default:
			return fmt.Errorf("snapshot: unmount %s: %w", target, err)
		}
	}
}

// UpperDir is the writable directory of active snapshot key (a container's changes).
func (s *Store) UpperDir(key string) string {
	return filepath.Join(s.activePath(key), "upper")
}

// LowerDirs returns the unpacked layer directories under active snapshot key, top first.
func (s *Store) LowerDirs(key string) ([]string, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	m, err := s.readActive(key)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	ids, err := s.lowerChain(m.Parent)
	if err != nil {
		return nil, err
	}
	dirs := make([]string, len(ids))
	for i, id := range ids {
		dirs[i] = s.layerPath(id)
	}
	return dirs, nil
}

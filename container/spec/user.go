package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/moby/sys/user"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// maxUserFile bounds what is read of the image's /etc/passwd and /etc/group.
const maxUserFile = 32 << 20

// readInRoot reads a regular file of the image, resolving the path (and every symlink on it)
// inside root: a symlink to /etc/passwd or ../../etc/passwd names the image's file, never the
// host's. A missing file gives nil, nil.
func readInRoot(root, path string) ([]byte, error) {
	if root == "" {
		return nil, nil
	}
	h, err := pathrs.OpenInRoot(root, path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
			return nil, nil
		}
		return nil, fmt.Errorf("open %s in the container's root: %w", path, err)
	}
	defer h.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(h.Fd()), &st); err != nil {
		return nil, fmt.Errorf("stat %s in the container's root: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("%s in the container's root is not a regular file", path)
	}
	f, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOCTTY|unix.O_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("open %s in the container's root: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxUserFile))
	if err != nil {
		return nil, fmt.Errorf("read %s in the container's root: %w", path, err)
	}
	return data, nil
}

// ResolveUser resolves a docker --user value ("", "name", "uid", "name:group", "uid:gid",
// ...) with the image's /etc/passwd and /etc/group, read inside rootfs, as dockerd does: the
// additional groups are the primary gid, then every group of /etc/group that lists the user
// (when the spec names no group), then groupAdd (names or ids). It also returns the user's
// home directory ("/" when the user has no passwd entry).
func ResolveUser(rootfs, userSpec string, groupAdd []string) (specs.User, string, error) {
	passwd, err := readInRoot(rootfs, "/etc/passwd")
	if err != nil {
		return specs.User{}, "", err
	}
	group, err := readInRoot(rootfs, "/etc/group")
	if err != nil {
		return specs.User{}, "", err
	}
	reader := func(b []byte) io.Reader {
		if b == nil {
			return nil // an untyped nil: the library treats a missing file specially
		}
		return bytes.NewReader(b)
	}
	eu, err := user.GetExecUser(userSpec, &user.ExecUser{Home: "/"}, reader(passwd), reader(group))
	if err != nil {
		return specs.User{}, "", err
	}
	u := specs.User{UID: uint32(eu.Uid), GID: uint32(eu.Gid)}
	gids := append([]int{eu.Gid}, eu.Sgids...)
	if len(groupAdd) > 0 {
		add, err := user.GetAdditionalGroups(groupAdd, reader(group))
		if err != nil {
			return specs.User{}, "", err
		}
		slices.Sort(add) // the library's order follows a map's
		gids = append(gids, add...)
	}
	seen := map[int]bool{}
	for _, g := range gids {
		if !seen[g] {
			seen[g] = true
			u.AdditionalGids = append(u.AdditionalGids, uint32(g))
		}
	}
	return u, eu.Home, nil
}

package snapshot

// Whiteouts: the two formats and how they map.
//
// OCI layer tar (image-spec layer.md)        overlay layer directory (overlayfs.rst)
//   DIR/.wh.NAME    (an empty regular file)  DIR/NAME: char device 0/0  ("NAME is deleted")
//   DIR/.wh..wh..opq                         DIR with xattr trusted.overlay.opaque="y"
//                                            ("hide everything below DIR in lower layers")
//
// Other ".wh..wh." names are aufs bookkeeping (.wh..wh.plnk, .wh..wh.aufs):
// like docker we ignore them. trusted.overlay.* xattrs found in a tar are
// dropped: they are overlay's private metadata (redirects, metacopy,
// origin) and a layer must only be able to express opacity through the OCI
// marker above.

import (
	"strings"

	"golang.org/x/sys/unix"
)

const (
	whiteoutPrefix     = ".wh."
	whiteoutMetaPrefix = ".wh..wh."
	whiteoutOpaque     = ".wh..wh..opq"
	overlayXattrPrefix = "trusted.overlay."
	opaqueXattr        = "trusted.overlay.opaque"
)

// isWhiteoutName reports whether a tar base name is an OCI whiteout marker.
func isWhiteoutName(base string) bool {
	return strings.HasPrefix(base, whiteoutPrefix)
}

// mkWhiteout creates an overlay whiteout for name in directory dirfd,
// replacing whatever the layer itself put there earlier.
func mkWhiteout(dirfd int, name string) error {
	err := unix.Mknodat(dirfd, name, unix.S_IFCHR, 0)
	if err == unix.EEXIST {
		if _, err := removeAt(dirfd, name); err != nil {
			return err
		}
		err = unix.Mknodat(dirfd, name, unix.S_IFCHR, 0)
	}
	return err
}

// setOpaque marks directory dirfd (may be an O_PATH fd) opaque.
func setOpaque(dirfd int) error {
	fd, err := unix.Openat(dirfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Fsetxattr(fd, opaqueXattr, []byte("y"), 0)
}

// isOverlayWhiteout reports whether st is an overlay whiteout (char 0/0).
func isOverlayWhiteout(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

// isOpaqueDir reports whether the directory at path is overlay-opaque.
func isOpaqueDir(path string) bool {
	buf := make([]byte, 4)
	n, err := unix.Lgetxattr(path, opaqueXattr, buf)
	return err == nil && n == 1 && buf[0] == 'y'
}

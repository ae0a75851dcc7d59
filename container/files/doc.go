// Package files moves files into and out of a container's root file system
// (docker cp), lists the changes of a container against its image (docker
// diff) and exports the merged root file system as a tar (docker export).
//
// # Threat model
//
// Every function here is given the host path of a container's mounted rootfs
// (its overlay mount). The container may be running and may rewrite that tree
// at any moment: any component of any path can become a symlink pointing
// anywhere (CVE-2018-15664). So, on the container side:
//
//   - Paths named by the user are resolved in-root: openat2(RESOLVE_IN_ROOT)
//     (through pathrs-lite, which emulates it on old kernels) treats the rootfs
//     as "/" for every ".." and absolute symlink. A symlink as the last
//     component is followed only where docker follows it (a destination
//     directory, a trailing "/", docker cp -L), and then also in-root.
//   - Trees are walked fd-relative: each entry is opened with
//     O_PATH|O_NOFOLLOW relative to its parent's fd and its type is taken from
//     fstat of that fd, so a swapped entry is archived as what it has become,
//     never followed. Regular files are opened for reading only after fstat
//     proved them regular (reopening the O_PATH fd through /proc/self/fd), so a
//     device node planted in a race is never opened.
//   - Archive entries are created relative to a parent directory fd resolved
//     in-root, with O_CREAT|O_EXCL|O_NOFOLLOW, mknodat, symlinkat: never
//     through a symlink in the last component. A symlink created by the same
//     archive is never traversed by a later entry (refused, entry named);
//     names climbing out with ".." are refused; absolute names are taken
//     relative to the destination, as docker and GNU tar do.
//
// The host side of docker cp is trusted (it is the user's own file system),
// but the content coming out of a container is not: CopyFromContainer
// extracts it with the same extractor, rooted at the host destination
// directory, so a symlink in the container becomes a symlink on the host and
// is never followed while writing.
//
// # docker cp rules (moby's archive.PrepareArchiveCopy)
//
//	SRC is a file:
//	  DEST does not exist           the file is saved as DEST (its parent must exist)
//	  DEST does not exist, ends "/" error: no such directory
//	  DEST is a file                DEST is overwritten
//	  DEST is a directory           the file is copied into it as DEST/basename(SRC)
//	SRC is a directory:
//	  DEST does not exist           DEST is created with SRC's content
//	  DEST is a file                error: cannot copy directory
//	  DEST is a directory, SRC does not end "/."   SRC is copied into it as DEST/basename(SRC)
//	  DEST is a directory, SRC ends "/."           SRC's content is copied into DEST
//
// A symlink given as SRC is copied as a symlink unless FollowLink (docker cp
// -L); a symlink given as DEST is followed (in-root on the container side).
// Archive entry names are relative to the base name of SRC ("." for its
// content), as in the tar stream of `docker cp CONTAINER:SRC -`.
//
// # Diff
//
// Changes reads an overlay upper dir (fd-relative, O_NOFOLLOW) and decides
// added versus modified by looking the path up in the merged view of the
// lower dirs (whiteouts and opaque dirs of the lower layers honoured).
package files

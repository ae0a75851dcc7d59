package archive

import "errors"

// Sentinel errors. Callers test them with errors.Is; every error the package
// returns wraps one of these (or an error of the image or snapshot store, or
// an OS error) together with the operation and the archive member, image or
// instruction it concerns.
var (
	// ErrUnknownFormat: the stream is a tar but neither a docker-archive (no
	// manifest.json) nor an OCI image layout (no oci-layout and index.json).
	ErrUnknownFormat = errors.New("unknown archive format")
	// ErrInvalidArchive: the stream is not a tar, or a metadata file in it
	// (manifest.json, index.json, a manifest or config) is malformed or
	// inconsistent.
	ErrInvalidArchive = errors.New("invalid archive")
	// ErrTruncated: the stream ends in the middle of a tar member or of its
	// compression.
	ErrTruncated = errors.New("archive truncated")
	// ErrUnsafePath: a member name, link target or manifest path that is
	// absolute or climbs out of the archive with "..".
	ErrUnsafePath = errors.New("unsafe path in archive")
	// ErrMissingFile: a manifest names a member the archive does not hold.
	ErrMissingFile = errors.New("file missing from archive")
	// ErrDigestMismatch: a blob does not hash to the digest it is named or
	// described by, or a layer's diffID differs from the config's
	// rootfs.diff_ids.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrUnsupportedMediaType: an OCI layout names a manifest, config or
	// layer media type berth does not handle.
	ErrUnsupportedMediaType = errors.New("unsupported media type")
	// ErrUnsupportedFormat: Save was asked for a format other than "docker"
	// or "oci".
	ErrUnsupportedFormat = errors.New("unsupported archive format")
	// ErrNoImages: Save was given no image to write.
	ErrNoImages = errors.New("no images to save")
	// ErrUnknownInstruction: an Import change names an instruction that
	// docker import does not accept either (RUN, COPY, FROM, ...).
	ErrUnknownInstruction = errors.New("unknown or unsupported instruction")
	// ErrInvalidChange: an Import change with missing or malformed arguments
	// (a bad port, signal or key=value pair).
	ErrInvalidChange = errors.New("invalid change")
)

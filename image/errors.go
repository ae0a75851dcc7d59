package image

import "errors"

// Sentinel errors. Callers test them with errors.Is; every error the package
// returns wraps one of these (or an OS/bbolt error) together with the
// operation and the object it concerns, and the CLI maps them to exit codes.
var (
	// ErrNotFound: no blob, image record or reference by that name.
	ErrNotFound = errors.New("not found")
	// ErrDigestMismatch: ingested content does not hash to the expected digest,
	// or a stored blob no longer does (corruption).
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrSizeMismatch: ingested content is not the announced size.
	ErrSizeMismatch = errors.New("size mismatch")
	// ErrInvalidDigest: the digest is malformed or not sha256 (the only
	// algorithm the blob layout holds).
	ErrInvalidDigest = errors.New("invalid digest")
	// ErrInvalidReference: the string is not a valid image reference.
	ErrInvalidReference = errors.New("invalid reference format")
	// ErrUnsupportedMediaType: a manifest, config or layer media type the
	// store does not understand (schema 1, artifacts, an index given where an
	// image manifest is needed).
	ErrUnsupportedMediaType = errors.New("unsupported media type")
	// ErrInvalidManifest: a manifest or config that parses but is inconsistent
	// (layer count differs from rootfs.diff_ids, sizes disagree, ...).
	ErrInvalidManifest = errors.New("invalid manifest")
	// ErrBlobTooLarge: ReadBlob refused a blob above its size cap.
	ErrBlobTooLarge = errors.New("blob too large")
	// ErrAmbiguous: a short image ID matches more than one image.
	ErrAmbiguous = errors.New("ambiguous image ID")
	// ErrNoMatchingPlatform: an index has no manifest for the wanted platform.
	ErrNoMatchingPlatform = errors.New("no matching manifest")
	// ErrClosed: the Store was used after Close.
	ErrClosed = errors.New("image store is closed")
)

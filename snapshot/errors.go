package snapshot

import "errors"

// Sentinel errors. Callers test them with errors.Is; every error returned by
// this package wraps one of these (or a syscall error) together with the
// operation and the object it concerns.
var (
	// ErrNotFound: the chain ID or active key does not exist.
	ErrNotFound = errors.New("snapshot: not found")
	// ErrExists: an active snapshot with this key already exists.
	ErrExists = errors.New("snapshot: already exists")
	// ErrInUse: a committed chain is the parent of another chain or of an
	// active snapshot, or an active snapshot is still mounted.
	ErrInUse = errors.New("snapshot: in use")
	// ErrDigestMismatch: the layer's compressed digest or diffID differs from
	// the one the caller expected.
	ErrDigestMismatch = errors.New("snapshot: digest mismatch")
	// ErrUnsafeEntry: a tar entry would write outside the layer directory
	// (".." or a path through a symlink), or a hard link points outside the
	// layer or to a missing file.
	ErrUnsafeEntry = errors.New("snapshot: unsafe layer entry")
	// ErrInvalidLayer: the tar stream is malformed or has an entry type we do
	// not know.
	ErrInvalidLayer = errors.New("snapshot: invalid layer")
	// ErrUnsupportedCompression: bzip2, xz or another format we do not unpack.
	ErrUnsupportedCompression = errors.New("snapshot: unsupported layer compression")
	// ErrInvalidArgument: a malformed digest or key.
	ErrInvalidArgument = errors.New("snapshot: invalid argument")
)

package files

import "errors"

var (
	// ErrNotFound: the path does not exist in the container.
	ErrNotFound = errors.New("no such file or directory in container")
	// ErrNotDirectory: a path that must be a directory (trailing "/", an
	// extraction point's parent) is something else.
	ErrNotDirectory = errors.New("not a directory")
	// ErrDirNotExists: the destination's directory does not exist, or a
	// destination ending in "/" does not exist and the source is a file.
	ErrDirNotExists = errors.New("no such directory")
	// ErrCannotCopyDir: a directory cannot be copied onto an existing file.
	ErrCannotCopyDir = errors.New("cannot copy directory")
	// ErrExtractPointNotDirectory: CopyIn's destination is not a directory.
	ErrExtractPointNotDirectory = errors.New("extraction point is not a directory")
	// ErrInvalidDestination: the destination exists and is neither a
	// directory nor a regular file.
	ErrInvalidDestination = errors.New("destination must be a directory or a regular file")
	// ErrTypeConflict: an archive entry would replace a directory with a
	// non-directory or the reverse, and that is not allowed.
	ErrTypeConflict = errors.New("cannot overwrite")
	// ErrUnsafeEntry: an archive entry would escape the destination.
	ErrUnsafeEntry = errors.New("unsafe archive entry")
	// ErrInvalidArchive: the archive cannot be read or has an entry of an
	// unknown type.
	ErrInvalidArchive = errors.New("invalid archive")
)

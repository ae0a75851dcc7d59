package volume

import "errors"

var (
	// ErrNotFound: no volume of that name.
	ErrNotFound = errors.New("no such volume")
	// ErrInUse: the volume is used by containers.
	ErrInUse = errors.New("volume is in use")
	// ErrBadName: the name does not match [a-zA-Z0-9][a-zA-Z0-9_.-]+.
	ErrBadName = errors.New("invalid volume name")
	// ErrBadOption: a driver option the local driver does not know.
	ErrBadOption = errors.New("invalid volume option")
)

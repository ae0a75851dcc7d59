package runtime

import "errors"

// Sentinel errors; the CLI turns them into one-line messages and exit codes.
var (
	ErrBadConfig  = errors.New("invalid config.json")
	ErrNoRootfs   = errors.New("rootfs does not exist")
	ErrNotRunning = errors.New("container is not running")
	ErrRunning    = errors.New("container is running")
	ErrNotCreated = errors.New("container is not in the created state")
	ErrPaused     = errors.New("container is paused")
)

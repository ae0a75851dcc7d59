package container

import "errors"

// Sentinel errors; the CLI maps them to docker's messages and exit codes.
var (
	ErrNotFound   = errors.New("no such container")
	ErrAmbiguous  = errors.New("multiple containers match")
	ErrNameInUse  = errors.New("container name already in use")
	ErrBadName    = errors.New("invalid container name")
	ErrRunning    = errors.New("container is running")
	ErrNotRunning = errors.New("container is not running")
	ErrPaused     = errors.New("container is paused")
	ErrStart      = errors.New("cannot start container")
	// ErrCommand: the container's command could not be run (exit 127 not found, 126 not
	// executable), as docker reports it.
	ErrCommand = errors.New("failed to create task for container")
)

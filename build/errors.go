package build

import (
	"errors"
	"strconv"
)

// Sentinel errors of the builder; the CLI maps them to messages and exit codes.
var (
	// ErrDockerfile: the Dockerfile cannot be read or parsed (the error names the line).
	ErrDockerfile = errors.New("dockerfile")
	// ErrNoStage: --target or COPY --from names a stage that does not exist.
	ErrNoStage = errors.New("no such build stage")
	// ErrSource: a COPY/ADD source is missing, outside the context or excluded by .dockerignore.
	ErrSource = errors.New("copy source")
	// ErrRun: a RUN command exited non-zero (see RunError).
	ErrRun = errors.New("run step failed")
	// ErrUnsupported: an instruction form berth does not execute (ADD of a URL, RUN --mount).
	ErrUnsupported = errors.New("not supported")
)

// RunError is a RUN step that returned a non-zero exit code.
type RunError struct {
	Command string // as docker prints it: "/bin/sh -c ..." or the exec form's words
	Code    int
}

func (e *RunError) Error() string {
	return "The command '" + e.Command + "' returned a non-zero code: " + strconv.Itoa(e.Code)
}

func (e *RunError) Unwrap() error { return ErrRun }

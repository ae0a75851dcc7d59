package seccomp

import "errors"

var (
	// ErrNoProfile is returned when a nil profile is handed to Compile; a
	// container without seccomp must skip this package rather than compile
	// an empty filter.
	ErrNoProfile = errors.New("seccomp: no profile")

	// ErrUnknownAction is the runtime's "bad seccomp action" error. It is
	// wrapped as `seccomp: unknown action "X"` and always returned by Compile,
	// before anything could be loaded.
	ErrUnknownAction = errors.New("seccomp: unknown action")

	// ErrUnknownOperator is returned for an args[].op outside SCMP_CMP_*.
	ErrUnknownOperator = errors.New("seccomp: unknown operator")

	// ErrUnknownArch is returned for an architectures[] entry that is not a
	// SCMP_ARCH_* name known to runc.
	ErrUnknownArch = errors.New("seccomp: unknown architecture")

	// ErrUnknownFlag is returned by Flags for a flags[] entry this runtime
	// cannot translate to a SECCOMP_FILTER_FLAG_* bit.
	ErrUnknownFlag = errors.New("seccomp: unknown flag")

	// ErrErrnoRetNotAllowed is returned when errnoRet is set on an action
	// that has no return value (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE do).
	ErrErrnoRetNotAllowed = errors.New("seccomp: errnoRet is only valid with SCMP_ACT_ERRNO and SCMP_ACT_TRACE")

	// ErrBadProgram is returned when a BPF program is empty, too long for the
	// kernel, or not a whole number of instructions.
	ErrBadProgram = errors.New("seccomp: invalid BPF program")
)

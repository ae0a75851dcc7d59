package seccomp

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// flagTSYNC is not among runtime-spec's named constants but is a valid
// seccomp(2) flag name, and callers that cannot lock the init thread need it.
const flagTSYNC specs.LinuxSeccompFlag = "SECCOMP_FILTER_FLAG_TSYNC"

var flagBits = map[specs.LinuxSeccompFlag]uint{
	flagTSYNC:                              unix.SECCOMP_FILTER_FLAG_TSYNC,
	specs.LinuxSeccompFlagLog:              unix.SECCOMP_FILTER_FLAG_LOG,
	specs.LinuxSeccompFlagSpecAllow:        unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW,
	specs.LinuxSeccompFlagWaitKillableRecv: unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
}

// Flags converts cfg.Flags to the seccomp(2) flag mask. When the profile uses
// SCMP_ACT_NOTIFY it also sets SECCOMP_FILTER_FLAG_NEW_LISTENER, because a
// notify filter loaded without a listener makes every notifying syscall fail
// with ENOSYS and nobody could ever attach one later.
func Flags(cfg *specs.LinuxSeccomp) (uint, error) {
	if cfg == nil {
		return 0, ErrNoProfile
	}
	var mask uint
	for _, f := range cfg.Flags {
		bit, ok := flagBits[f]
		if !ok {
			return 0, fmt.Errorf("%w %q", ErrUnknownFlag, string(f))
		}
		mask |= bit
	}
	if UsesNotify(cfg) {
		mask |= unix.SECCOMP_FILTER_FLAG_NEW_LISTENER
	}
	return mask, nil
}

// UsesNotify reports whether any rule or the default action is SCMP_ACT_NOTIFY.
func UsesNotify(cfg *specs.LinuxSeccomp) bool {
	if cfg == nil {
		return false
	}
	if cfg.DefaultAction == specs.ActNotify {
		return true
	}
	for _, s := range cfg.Syscalls {
		if s.Action == specs.ActNotify {
			return true
		}
	}
	return false
}

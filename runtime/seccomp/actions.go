package seccomp

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// defaultErrno is what runc returns for SCMP_ACT_ERRNO/SCMP_ACT_TRACE without
// an explicit errnoRet; EPERM is what programs already expect from a denial.
const defaultErrno = uint(unix.EPERM)

// parseAction maps an OCI action plus its optional errnoRet to a libseccomp
// action carrying the return code.
func parseAction(act specs.LinuxSeccompAction, errnoRet *uint) (libseccomp.ScmpAction, error) {
	ret := defaultErrno
	if errnoRet != nil {
		ret = *errnoRet
	}
	var a libseccomp.ScmpAction
	switch act {
	case specs.ActKill, specs.ActKillThread:
		a = libseccomp.ActKillThread
	case specs.ActKillProcess:
		a = libseccomp.ActKillProcess
	case specs.ActTrap:
		a = libseccomp.ActTrap
	case specs.ActAllow:
		a = libseccomp.ActAllow
	case specs.ActLog:
		a = libseccomp.ActLog
	case specs.ActNotify:
		a = libseccomp.ActNotify
	case specs.ActErrno:
		return libseccomp.ActErrno.SetReturnCode(int16(ret)), checkErrno(ret)
	case specs.ActTrace:
		return libseccomp.ActTrace.SetReturnCode(int16(ret)), checkErrno(ret)
	default:
		return libseccomp.ActInvalid, fmt.Errorf("%w %q", ErrUnknownAction, string(act))
	}
	if errnoRet != nil {
		return libseccomp.ActInvalid, fmt.Errorf("%w (action %q)", ErrErrnoRetNotAllowed, string(act))
	}
	return a, nil
}

// checkErrno rejects return codes that would not survive the 16-bit
// SECCOMP_RET_DATA field intact; silently truncating 65537 to 1 would turn
// a profile's intent into something else.
func checkErrno(ret uint) error {
	if ret > 0x7fff {
		return fmt.Errorf("seccomp: errnoRet %d out of range", ret)
	}
	return nil
}

func parseOperator(op specs.LinuxSeccompOperator) (libseccomp.ScmpCompareOp, error) {
	switch op {
	case specs.OpNotEqual:
		return libseccomp.CompareNotEqual, nil
	case specs.OpLessThan:
		return libseccomp.CompareLess, nil
	case specs.OpLessEqual:
		return libseccomp.CompareLessOrEqual, nil
	case specs.OpEqualTo:
		return libseccomp.CompareEqual, nil
	case specs.OpGreaterEqual:
		return libseccomp.CompareGreaterEqual, nil
	case specs.OpGreaterThan:
		return libseccomp.CompareGreater, nil
	case specs.OpMaskedEqual:
		return libseccomp.CompareMaskedEqual, nil
	}
	return libseccomp.CompareInvalid, fmt.Errorf("%w %q", ErrUnknownOperator, string(op))
}

// archNames is runc's table of SCMP_ARCH_* names. Entries newer than the
// linked libseccomp still parse here and fail later in AddArch with a clear
// error, as with runc.
var archNames = map[specs.Arch]libseccomp.ScmpArch{
	specs.ArchX86:         libseccomp.ArchX86,
	specs.ArchX86_64:      libseccomp.ArchAMD64,
	specs.ArchX32:         libseccomp.ArchX32,
	specs.ArchARM:         libseccomp.ArchARM,
	specs.ArchAARCH64:     libseccomp.ArchARM64,
	specs.ArchMIPS:        libseccomp.ArchMIPS,
	specs.ArchMIPS64:      libseccomp.ArchMIPS64,
	specs.ArchMIPS64N32:   libseccomp.ArchMIPS64N32,
	specs.ArchMIPSEL:      libseccomp.ArchMIPSEL,
	specs.ArchMIPSEL64:    libseccomp.ArchMIPSEL64,
	specs.ArchMIPSEL64N32: libseccomp.ArchMIPSEL64N32,
	specs.ArchPPC:         libseccomp.ArchPPC,
	specs.ArchPPC64:       libseccomp.ArchPPC64,
	specs.ArchPPC64LE:     libseccomp.ArchPPC64LE,
	specs.ArchS390:        libseccomp.ArchS390,
	specs.ArchS390X:       libseccomp.ArchS390X,
	specs.ArchPARISC:      libseccomp.ArchPARISC,
	specs.ArchPARISC64:    libseccomp.ArchPARISC64,
	specs.ArchRISCV64:     libseccomp.ArchRISCV64,
	specs.ArchLOONGARCH64: libseccomp.ArchLOONGARCH64,
	specs.ArchM68K:        libseccomp.ArchM68K,
	specs.ArchSH:          libseccomp.ArchSH,
	specs.ArchSHEB:        libseccomp.ArchSHEB,
}

func parseArch(a specs.Arch) (libseccomp.ScmpArch, error) {
	if arch, ok := archNames[a]; ok {
		return arch, nil
	}
	return libseccomp.ArchInvalid, fmt.Errorf("%w %q", ErrUnknownArch, string(a))
}

package seccomp

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// The ENOSYS stub.
//
// A profile written before a syscall existed denies it with the default
// errno (usually EPERM). Programs probe new syscalls (clone3, openat2,
// faccessat2, ...) and fall back only on ENOSYS; EPERM makes them fail hard.
// runc therefore prefixes the filter with a check: on the native
// architecture, a syscall number above the highest one the profile names
// cannot match any rule, so it gets ENOSYS instead of the default errno. The
// default action being an errno, this changes only which errno a denied call
// sees, never whether it is denied.
//
// Layout prepended to libseccomp's program (offsets into struct
// seccomp_data: nr at 0, arch at 4):
//
//	   ld   [4]                  arch
//	   jeq  #NATIVE, 0, orig     foreign arch: libseccomp decides
//	   ld   [0]                  nr
//	   jset #X32_BIT, orig, 0    x86_64 only: x32 calls share the audit arch
//	   jgt  #max, 0, orig
//	   ret  #ERRNO|ENOSYS
//	orig:
//	   (libseccomp's program, which reloads what it needs)
//
// Only the native architecture gets the stub: compat architectures would need
// their own maximum, and runc's extra per-arch work buys nothing for the
// x86_64-only hosts berth targets today.

// x32SyscallBit is __X32_SYSCALL_BIT.
const x32SyscallBit = 0x40000000

// nativeAuditArch is the AUDIT_ARCH_* the kernel reports in seccomp_data.arch
// for this binary's architecture; 0 means "no stub".
func nativeAuditArch() uint32 {
	switch runtime.GOARCH {
	case "amd64":
		return unix.AUDIT_ARCH_X86_64
	case "386":
		return unix.AUDIT_ARCH_I386
	case "arm64":
		return unix.AUDIT_ARCH_AARCH64
	case "arm":
		return unix.AUDIT_ARCH_ARM
	case "ppc64le":
		return unix.AUDIT_ARCH_PPC64LE
	case "s390x":
		return unix.AUDIT_ARCH_S390X
	case "riscv64":
		return unix.AUDIT_ARCH_RISCV64
	}
	return 0
}

func bpfStmt(code uint16, k uint32) unix.SockFilter {
	return unix.SockFilter{Code: code, K: k}
}

func bpfJump(code uint16, k uint32, jt, jf uint8) unix.SockFilter {
	return unix.SockFilter{Code: code, Jt: jt, Jf: jf, K: k}
}

// prependENOSYSStub returns prog behind a stub answering ENOSYS for native
// syscall numbers above maxNr.
func prependENOSYSStub(prog []unix.SockFilter, maxNr uint32) []unix.SockFilter {
	arch := nativeAuditArch()
	if arch == 0 {
		return prog
	}
	const (
		ldAbs = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jset  = unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K
		jgt   = unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K
		ret   = unix.BPF_RET | unix.BPF_K
	)
	// Built back to front so every jump to "orig" is just the count of
	// instructions already emitted after it.
	tail := []unix.SockFilter{bpfStmt(ret, unix.SECCOMP_RET_ERRNO|uint32(unix.ENOSYS))}
	tail = append([]unix.SockFilter{bpfJump(jgt, maxNr, 0, uint8(len(tail)))}, tail...)
	if arch == unix.AUDIT_ARCH_X86_64 {
		tail = append([]unix.SockFilter{bpfJump(jset, x32SyscallBit, uint8(len(tail)), 0)}, tail...)
	}
	tail = append([]unix.SockFilter{bpfStmt(ldAbs, 0)}, tail...)
	stub := append([]unix.SockFilter{
		bpfStmt(ldAbs, 4),
		bpfJump(jeq, arch, 0, uint8(len(tail))),
	}, tail...)
	return append(stub, prog...)
}

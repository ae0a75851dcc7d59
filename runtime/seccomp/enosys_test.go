package seccomp

import (
	"runtime"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const retENOSYS = unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)

func hasENOSYSReturn(prog []unix.SockFilter) bool {
	for _, ins := range prog {
		if ins.Code == unix.BPF_RET|unix.BPF_K && ins.K == retENOSYS {
			return true
		}
	}
	return false
}

func TestENOSYSStubShape(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("stub layout checked for amd64 only")
	}
	cfg := &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read", "write", "socketcall"}, Action: specs.ActAllow},
		},
	}
	prog, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// write is 1 on x86_64; socketcall resolves to a negative pseudo-syscall
	// and must not raise the maximum.
	want := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 4},
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: unix.AUDIT_ARCH_X86_64, Jf: 4},
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0},
		{Code: unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K, K: x32SyscallBit, Jt: 2},
		{Code: unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K, K: 1, Jf: 1},
		{Code: unix.BPF_RET | unix.BPF_K, K: retENOSYS},
	}
	if len(prog) < len(want) {
		t.Fatalf("program too short: %d", len(prog))
	}
	for i := range want {
		if prog[i] != want[i] {
			t.Errorf("insn %d = %+v, want %+v", i, prog[i], want[i])
		}
	}

	// A kill or allow default is not an errno, so it gets no stub.
	for _, def := range []specs.LinuxSeccompAction{specs.ActKillProcess, specs.ActAllow} {
		cfg := &specs.LinuxSeccomp{DefaultAction: def, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"read"}, Action: specs.ActErrno, ErrnoRet: uptr(5)},
		}}
		prog, err := Compile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if hasENOSYSReturn(prog) {
			t.Errorf("default %s: unexpected ENOSYS stub", def)
		}
	}
}

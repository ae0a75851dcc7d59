package seccomp

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"sync"

	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

const (
	// sockFilterSize is sizeof(struct sock_filter): u16 code, u8 jt, u8 jf, u32 k.
	sockFilterSize = 8
	// bpfMaxInsns is the kernel's BPF_MAXINSNS; seccomp(2) refuses longer programs.
	bpfMaxInsns = 4096
)

// hasExportBPFMem is decided once: seccomp_export_bpf_mem exists only from
// libseccomp 2.6, and the bindings stub it with EOPNOTSUPP on older ones
// (Debian 12 ships 2.5.4).
var hasExportBPFMem = sync.OnceValue(func() bool {
	major, minor, _ := libseccomp.GetLibraryVersion()
	return major > 2 || (major == 2 && minor >= 6)
})

// exportBPF returns the filter's program without loading it.
func exportBPF(f *libseccomp.ScmpFilter) ([]unix.SockFilter, error) {
	var raw []byte
	var err error
	if hasExportBPFMem() {
		raw, err = f.ExportBPFMem()
	} else {
		raw, err = exportBPFMemfd(f)
	}
	if err != nil {
		return nil, fmt.Errorf("seccomp: export BPF: %w", err)
	}
	return decodeProgram(raw)
}

// exportBPFMemfd goes through a memfd because ExportBPF only writes to a file
// descriptor; a memfd needs no filesystem and, unlike a pipe, no reader
// goroutine racing the writer.
func exportBPFMemfd(f *libseccomp.ScmpFilter) ([]byte, error) {
	fd, err := unix.MemfdCreate("berth-seccomp-bpf", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	file := os.NewFile(uintptr(fd), "berth-seccomp-bpf")
	defer file.Close()
	if err := f.ExportBPF(file); err != nil {
		return nil, err
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return io.ReadAll(file)
}

// decodeProgram splits native-endian struct sock_filter records, the layout
// libseccomp exports and the kernel reads.
func decodeProgram(raw []byte) ([]unix.SockFilter, error) {
	if len(raw) == 0 || len(raw)%sockFilterSize != 0 {
		return nil, fmt.Errorf("%w: %d bytes is not a whole number of instructions", ErrBadProgram, len(raw))
	}
	prog := make([]unix.SockFilter, len(raw)/sockFilterSize)
	for i := range prog {
		b := raw[i*sockFilterSize:]
		prog[i] = unix.SockFilter{
			Code: binary.NativeEndian.Uint16(b[0:2]),
			Jt:   b[2],
			Jf:   b[3],
			K:    binary.NativeEndian.Uint32(b[4:8]),
		}
	}
	return prog, nil
}

// encodeProgram is decodeProgram's inverse, used for the cache file.
func encodeProgram(prog []unix.SockFilter) []byte {
	raw := make([]byte, len(prog)*sockFilterSize)
	for i, ins := range prog {
		b := raw[i*sockFilterSize:]
		binary.NativeEndian.PutUint16(b[0:2], ins.Code)
		b[2] = ins.Jt
		b[3] = ins.Jf
		binary.NativeEndian.PutUint32(b[4:8], ins.K)
	}
	return raw
}

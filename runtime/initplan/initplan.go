// Package initplan encodes the plan that runtime/nsenter/plan.c executes in the container's
// first process: a flat list of operations with every decision already made by the runtime,
// so that process can set the container up and exec its program without starting Go. The
// wire format and the reasons are at the top of plan.c; the operation codes are plan.h's.
package initplan

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Operation codes (plan.h).
const (
	OpCloseInherited uint16 = iota + 1
	OpUnshare
	OpMount
	OpOpenRoot
	OpMountFS
	OpBind
	OpCgroupTmpfs
	OpCgroupHier
	OpCgroupDone
	OpMknod
	OpSymlink
	OpHooks
	OpPivot
	OpWrite
	OpReadonly
	OpMask
	OpRoRoot
	OpChdirRoot
	OpHostname
	OpDomainname
	OpKeyring
	OpRlimit
	OpIOPrio
	OpLookPath
	OpCwd
	OpSeccomp
	OpCaps
	OpNNP
	OpCloseExtra
	OpReady
	OpWaitFifo
	OpExec
	OpMore
)

// names are the C names of the operations, in order (the test compares them with plan.h).
var names = []string{"", "CLOSE_INHERITED", "UNSHARE", "MOUNT", "OPEN_ROOT", "MOUNT_FS", "BIND",
	"CGROUP_TMPFS", "CGROUP_HIER", "CGROUP_DONE", "MKNOD", "SYMLINK", "HOOKS", "PIVOT", "WRITE",
	"READONLY", "MASK", "RO_ROOT", "CHDIR_ROOT", "HOSTNAME", "DOMAINNAME", "KEYRING", "RLIMIT",
	"IOPRIO", "LOOKPATH", "CWD", "SECCOMP", "CAPS", "NNP", "CLOSE_EXTRA", "READY", "WAIT_FIFO", "EXEC", "MORE"}

// maxArgs is plan.c's MAX_ARGS.
const maxArgs = 16

// Plan is a plan being written.
type Plan struct {
	buf []byte
	ops []uint16
}

// List is a NUL-separated list argument (argv, envp, filesystem options).
type List []string

// Props is a list of (propagation flag, recursive) pairs.
type Props [][2]uint64

// Add appends one operation. Arguments are string, []byte, List, Props, bool, int, uint32 or
// uint64; numbers travel as 8-byte native-endian values.
func (p *Plan) Add(op uint16, args ...any) {
	if len(args) > maxArgs {
		panic(fmt.Sprintf("initplan: %d arguments", len(args)))
	}
	p.ops = append(p.ops, op)
	p.buf = binary.NativeEndian.AppendUint16(p.buf, op)
	p.buf = binary.NativeEndian.AppendUint16(p.buf, uint16(len(args)))
	for _, a := range args {
		var b []byte
		switch v := a.(type) {
		case string:
			b = []byte(v)
		case []byte:
			b = v
		case List:
			var sb strings.Builder
			for _, s := range v {
				sb.WriteString(s)
				sb.WriteByte(0)
			}
			b = []byte(sb.String())
		case Props:
			for _, pr := range v {
				b = binary.NativeEndian.AppendUint64(b, pr[0])
				b = binary.NativeEndian.AppendUint64(b, pr[1])
			}
		case bool:
			n := uint64(0)
			if v {
				n = 1
			}
			b = binary.NativeEndian.AppendUint64(nil, n)
		case int:
			b = binary.NativeEndian.AppendUint64(nil, uint64(v))
		case uint32:
			b = binary.NativeEndian.AppendUint64(nil, uint64(v))
		case uint64:
			b = binary.NativeEndian.AppendUint64(nil, v)
		default:
			panic(fmt.Sprintf("initplan: argument of type %T", a))
		}
		p.buf = binary.NativeEndian.AppendUint32(p.buf, uint32(len(b)))
		p.buf = append(p.buf, b...)
	}
}

// Ops lists the operations added so far (for tests and debugging).
func (p *Plan) Ops() []string {
	out := make([]string, len(p.ops))
	for i, op := range p.ops {
		out[i] = names[op]
	}
	return out
}

// Bytes is the plan (or its last part) as sent: "BPL1", the length, the operations.
func (p *Plan) Bytes() []byte {
	out := append([]byte("BPL1"), binary.NativeEndian.AppendUint32(nil, uint32(len(p.buf)))...)
	return append(out, p.buf...)
}

// Flush ends the part written so far with OpMore and returns it as sent; what is added next
// forms the next part. The process starts on a part while the runtime is still writing the
// next one (the runtime moves it into its cgroups meanwhile).
func (p *Plan) Flush() []byte {
	p.Add(OpMore)
	out := p.Bytes()
	p.buf = nil
	return out
}

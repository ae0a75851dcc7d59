package seccomp

// On-disk cache of compiled programs.
//
// Compiling a Docker-sized profile with libseccomp costs milliseconds on every
// container start; the result depends only on the profile, the libseccomp
// version and the architecture, so it is cached per host.
//
// File name: <cacheDir>/<key>.bpf, key = lowercase hex sha256 of
//
//	"berth-seccomp-cache/v1\n" GOARCH "\n" libseccomp "major.minor.micro" "\n" json.Marshal(cfg)
//
// (cacheFormat below is the version prefix; bump it whenever Compile's output
// for the same inputs changes, e.g. a different ENOSYS stub.)
//
// File contents, integers little-endian except the instructions:
//
//	offset  size  field
//	0       8     magic "BERTHBPF"
//	8       4     format version, uint32 = 1
//	12      4     instruction count n, uint32, 1..4096
//	16      32    sha256 of the 8n instruction bytes
//	48      8n    struct sock_filter {u16 code; u8 jt; u8 jf; u32 k} in host
//	              byte order, exactly what seccomp(2) reads
//
// Files are written to a temp file in cacheDir, fsynced, renamed over the
// final name and the directory fsynced, so readers see either no file or a
// whole one. Any file that fails the checks (short, bad magic/version/count,
// checksum mismatch) is treated as a miss: the profile is compiled again and
// the entry rewritten. The checksum catches torn or bit-rotted files, not an
// attacker: the cache directory must be writable by root only, since whoever
// writes it chooses every container's filter.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

const (
	cacheFormat    = "berth-seccomp-cache/v1"
	cacheMagic     = "BERTHBPF"
	cacheVersion   = 1
	cacheHeaderLen = 8 + 4 + 4 + sha256.Size
)

// CompileCached is Compile with an on-disk cache in cacheDir ("" disables it).
// A miss or a corrupt entry falls back to Compile. Failing to write the cache
// is not an error: the program returned is correct either way, and refusing
// to start a container because a cache directory is full would be worse.
func CompileCached(cfg *specs.LinuxSeccomp, cacheDir string) ([]unix.SockFilter, error) {
	if cacheDir == "" || cfg == nil {
		return Compile(cfg)
	}
	key, err := cacheKey(cfg)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(cacheDir, key+".bpf")
	if raw, err := os.ReadFile(path); err == nil {
		if prog, ok := decodeCacheFile(raw); ok {
			return prog, nil
		}
	}
	prog, err := Compile(cfg)
	if err != nil {
		return nil, err
	}
	_ = writeCacheFile(cacheDir, path, prog)
	return prog, nil
}

func cacheKey(cfg *specs.LinuxSeccomp) (string, error) {
	js, err := json.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("seccomp: encode profile for cache key: %w", err)
	}
	major, minor, micro := libseccomp.GetLibraryVersion()
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%d.%d.%d\n", cacheFormat, runtime.GOARCH, major, minor, micro)
	h.Write(js)
	return hex.EncodeToString(h.Sum(nil)), nil
}

func encodeCacheFile(prog []unix.SockFilter) []byte {
	body := encodeProgram(prog)
	sum := sha256.Sum256(body)
	buf := make([]byte, 0, cacheHeaderLen+len(body))
	buf = append(buf, cacheMagic...)
	buf = binary.LittleEndian.AppendUint32(buf, cacheVersion)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(prog)))
	buf = append(buf, sum[:]...)
	return append(buf, body...)
}

func decodeCacheFile(raw []byte) ([]unix.SockFilter, bool) {
	if len(raw) < cacheHeaderLen || string(raw[:8]) != cacheMagic {
		return nil, false
	}
	if binary.LittleEndian.Uint32(raw[8:12]) != cacheVersion {
		return nil, false
	}
	n := binary.LittleEndian.Uint32(raw[12:16])
	body := raw[cacheHeaderLen:]
	if n == 0 || n > bpfMaxInsns || uint64(len(body)) != uint64(n)*sockFilterSize {
		return nil, false
	}
	sum := sha256.Sum256(body)
	if !bytes.Equal(sum[:], raw[16:cacheHeaderLen]) {
		return nil, false
	}
	prog, err := decodeProgram(body)
	if err != nil {
		return nil, false
	}
	return prog, true
}

// writeCacheFile replaces path atomically; see the file header.
func writeCacheFile(dir, path string, prog []unix.SockFilter) (retErr error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*.bpf")
	if err != nil {
		return err
	}
	defer func() {
		if retErr != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(encodeCacheFile(prog)); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

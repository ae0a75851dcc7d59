package seccomp

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func uptr(v uint) *uint { return &v }

func loadProfile(t testing.TB, name string) *specs.LinuxSeccomp {
	t.Helper()
	js, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var cfg specs.LinuxSeccomp
	if err := json.Unmarshal(js, &cfg); err != nil {
		t.Fatal(err)
	}
	return &cfg
}

func TestErrnoRetOnMkdirat(t *testing.T) {
	cfg := specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdirat", "mkdir"}, Action: specs.ActErrno, ErrnoRet: uptr(42)},
		},
	}
	r := runChild(t, cfg, true, "getpid", "mkdirat")
	r.requireSuccess(t)
	if got := r.errno(t, "getpid"); got != 0 {
		t.Errorf("getpid: errno %d, want 0", got)
	}
	if got := r.errno(t, "mkdirat"); got != 42 {
		t.Errorf("mkdirat: errno %d, want 42", got)
	}
}

// The Docker-like allowlist: default EPERM, allowed calls work, and the ENOSYS
// stub answers syscall numbers beyond the profile with ENOSYS.
func TestDefaultErrnoAllowlist(t *testing.T) {
	cfg := loadProfile(t, "docker-default.json")
	r := runChild(t, *cfg, true, "getpid", "mkdirat", "unshare0", "nr1000", "socket_unix_dgram")
	r.requireSuccess(t)
	for probe, want := range map[string]int{
		"getpid":            0,
		"mkdirat":           0,
		"socket_unix_dgram": 0,
		"unshare0":          int(unix.EPERM),  // below the profile's highest syscall: default errno
		"nr1000":            int(unix.ENOSYS), // above it: the stub, where libseccomp alone says EPERM
	} {
		if got := r.errno(t, probe); got != want {
			t.Errorf("%s: errno %d (%v), want %d (%v)", probe, got, syscall.Errno(got), want, syscall.Errno(want))
		}
	}
}

func TestArgsConditions(t *testing.T) {
	cfg := specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{
			// Two conditions on different arguments: one rule, ANDed.
			{Names: []string{"socket"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.EACCES)), Args: []specs.LinuxSeccompArg{
				{Index: 0, Op: specs.OpEqualTo, Value: unix.AF_INET},
				{Index: 1, Op: specs.OpMaskedEqual, Value: 0xf, ValueTwo: unix.SOCK_DGRAM},
			}},
			// Two conditions on the same argument: split into rules, ORed.
			{Names: []string{"personality"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(unix.EACCES)), Args: []specs.LinuxSeccompArg{
				{Index: 0, Op: specs.OpEqualTo, Value: 0x0040000},
				{Index: 0, Op: specs.OpEqualTo, Value: 0x0200000},
			}},
		},
	}
	r := runChild(t, cfg, true, "socket_inet_dgram", "socket_inet_stream", "socket_unix_dgram",
		"personality_query", "personality_a", "personality_b")
	r.requireSuccess(t)
	for probe, want := range map[string]int{
		"socket_inet_dgram":  int(unix.EACCES),
		"socket_inet_stream": 0,
		"socket_unix_dgram":  0,
		"personality_query":  0,
		"personality_a":      int(unix.EACCES),
		"personality_b":      int(unix.EACCES),
	} {
		if got := r.errno(t, probe); got != want {
			t.Errorf("%s: errno %d (%v), want %d (%v)", probe, got, syscall.Errno(got), want, syscall.Errno(want))
		}
	}
}

func TestKillProcess(t *testing.T) {
	cfg := specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"getpgid"}, Action: specs.ActKillProcess}},
	}
	r := runChild(t, cfg, true, "getpid", "getpgid")
	ws, ok := r.state.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGSYS {
		t.Fatalf("child ended with %v, want killed by SIGSYS; stdout %v, stderr %q", r.state, r.vals, r.stderr)
	}
	if r.errno(t, "getpid") != 0 {
		t.Error("getpid failed before the kill")
	}
	if _, ok := r.vals["getpgid"]; ok {
		t.Error("child survived getpgid")
	}
}

func TestNotifyListener(t *testing.T) {
	cfg := specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"getpgid"}, Action: specs.ActNotify}},
	}
	if !UsesNotify(&cfg) {
		t.Fatal("UsesNotify = false")
	}
	// With TSYNC too, to exercise Load adding TSYNC_ESRCH.
	r := runChild(t, cfg, true, "getpid")
	r.requireSuccess(t)
	if fd := r.vals["notifyfd"]; fd == "" || fd == "-1" {
		t.Fatalf("notify fd = %q, want a descriptor", fd)
	}
	if link := r.vals["notifylink"]; !strings.Contains(link, "seccomp notify") {
		t.Errorf("notify fd is %q, want a seccomp notify anon inode", link)
	}
}

func TestUnknownAction(t *testing.T) {
	for name, cfg := range map[string]*specs.LinuxSeccomp{
		"default": {DefaultAction: "SCMP_ACT_BOGUS"},
		"rule": {DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"getpid"}, Action: "SCMP_ACT_BOGUS"},
		}},
	} {
		_, err := Compile(cfg)
		if !errors.Is(err, ErrUnknownAction) {
			t.Errorf("%s: err %v, want ErrUnknownAction", name, err)
			continue
		}
		if !strings.HasPrefix(err.Error(), `seccomp: unknown action "SCMP_ACT_BOGUS"`) {
			t.Errorf("%s: message %q", name, err)
		}
		if _, err := CompileCached(cfg, t.TempDir()); !errors.Is(err, ErrUnknownAction) {
			t.Errorf("%s: CompileCached err %v, want ErrUnknownAction", name, err)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg  *specs.LinuxSeccomp
		want error
	}{
		"nil":      {nil, ErrNoProfile},
		"operator": {&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Op: "SCMP_CMP_ALMOST"}}}}}, ErrUnknownOperator},
		"arch":     {&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{"SCMP_ARCH_Z80"}}, ErrUnknownArch},
		"errnoRet": {&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActKill, ErrnoRet: uptr(1)}}}, ErrErrnoRetNotAllowed},
	} {
		if _, err := Compile(tc.cfg); !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", name, err, tc.want)
		}
	}
}

func TestUnknownSyscallSkipped(t *testing.T) {
	base := specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"read", "write"}, Action: specs.ActAllow}},
	}
	want, err := Compile(&base)
	if err != nil {
		t.Fatal(err)
	}
	with := base
	with.Syscalls = []specs.LinuxSyscall{
		{Names: []string{"read", "no_such_syscall_berth", "write"}, Action: specs.ActAllow},
		{Names: []string{"another_missing_one"}, Action: specs.ActKillProcess},
	}
	got, err := Compile(&with)
	if err != nil {
		t.Fatalf("unknown syscall names must be skipped: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Error("unknown names changed the program")
	}
}

// A rule repeating the default action is dropped rather than failing.
func TestRuleEqualToDefaultSkipped(t *testing.T) {
	cfg := specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}},
	}
	if _, err := Compile(&cfg); err != nil {
		t.Fatal(err)
	}
}

func TestFlags(t *testing.T) {
	cfg := &specs.LinuxSeccomp{Flags: []specs.LinuxSeccompFlag{
		"SECCOMP_FILTER_FLAG_TSYNC", specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagWaitKillableRecv,
	}}
	got, err := Flags(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := uint(unix.SECCOMP_FILTER_FLAG_TSYNC | unix.SECCOMP_FILTER_FLAG_LOG | unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW | unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)
	if got != want {
		t.Errorf("Flags = %#x, want %#x", got, want)
	}
	cfg.Flags = []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_BOGUS"}
	if _, err := Flags(cfg); !errors.Is(err, ErrUnknownFlag) || !strings.Contains(err.Error(), "SECCOMP_FILTER_FLAG_BOGUS") {
		t.Errorf("unknown flag: err %v", err)
	}
	cfg = &specs.LinuxSeccomp{DefaultAction: specs.ActNotify}
	if got, _ := Flags(cfg); got != unix.SECCOMP_FILTER_FLAG_NEW_LISTENER {
		t.Errorf("notify profile: Flags = %#x, want NEW_LISTENER", got)
	}
}

func TestCompileCached(t *testing.T) {
	cfg := loadProfile(t, "docker-default.json")
	dir := filepath.Join(t.TempDir(), "cache")
	want, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	got, err := CompileCached(cfg, dir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatal("CompileCached (miss) differs from Compile")
	}
	key, err := cacheKey(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, key+".bpf")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("cache file not written: %v", err)
	}
	if fromFile, ok := decodeCacheFile(raw); !ok || !reflect.DeepEqual(fromFile, want) {
		t.Fatal("cache file does not hold the compiled program")
	}
	if got, err = CompileCached(cfg, dir); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("CompileCached (hit) = err %v, same program %v", err, reflect.DeepEqual(got, want))
	}

	// Prove the hit is served from the file: plant a different, well-formed
	// entry under the key and expect it back.
	planted := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW}}
	if err := os.WriteFile(path, encodeCacheFile(planted), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _ := CompileCached(cfg, dir); !reflect.DeepEqual(got, planted) {
		t.Fatal("cache hit did not read the cache file")
	}

	// The cache key follows the profile.
	other := *cfg
	other.DefaultErrnoRet = uptr(uint(unix.EACCES))
	if k2, _ := cacheKey(&other); k2 == key {
		t.Error("different profiles share a cache key")
	}

	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			t.Errorf("temp file left behind: %s", e.Name())
		}
	}
}

func TestCompileCachedCorruptEntry(t *testing.T) {
	cfg := loadProfile(t, "docker-default.json")
	want, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := cacheKey(cfg)
	good := encodeCacheFile(want)
	flipped := append([]byte(nil), good...)
	flipped[len(flipped)-3] ^= 0xff
	for name, content := range map[string][]byte{
		"garbage":   []byte("not a bpf program"),
		"empty":     {},
		"truncated": good[:len(good)-5],
		"bitflip":   flipped,
		"version":   append(append([]byte(cacheMagic), 9, 0, 0, 0), good[12:]...),
	} {
		dir := t.TempDir()
		path := filepath.Join(dir, key+".bpf")
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := CompileCached(cfg, dir)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: corrupt entry was used", name)
		}
		if raw, _ := os.ReadFile(path); !reflect.DeepEqual(raw, good) {
			t.Errorf("%s: entry not rewritten", name)
		}
	}
}

func TestCompileCachedNoDir(t *testing.T) {
	cfg := loadProfile(t, "docker-default.json")
	if _, err := CompileCached(cfg, ""); err != nil {
		t.Fatal(err)
	}
}

func TestLoadRejectsBadProgram(t *testing.T) {
	if _, err := Load(nil, 0); !errors.Is(err, ErrBadProgram) {
		t.Errorf("empty program: err %v", err)
	}
}

func BenchmarkCompile(b *testing.B) {
	cfg := loadProfile(b, "docker-default.json")
	for b.Loop() {
		if _, err := Compile(cfg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCompileCached(b *testing.B) {
	cfg := loadProfile(b, "docker-default.json")
	dir := b.TempDir()
	if _, err := CompileCached(cfg, dir); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := CompileCached(cfg, dir); err != nil {
			b.Fatal(err)
		}
	}
}

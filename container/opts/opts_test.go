package opts

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
)

func errContains(err error, want string) bool {
	return err != nil && strings.Contains(err.Error(), want)
}

func TestParseUlimit(t *testing.T) {
	for _, tc := range []struct {
		in         string
		soft, hard int64
		err        string
	}{
		{in: "nofile=1024", soft: 1024, hard: 1024},
		{in: "nofile=1024:2048", soft: 1024, hard: 2048},
		{in: "core=-1", soft: -1, hard: -1},
		{in: "nproc=10:-1", soft: 10, hard: -1},
		{in: "nofile", err: "want NAME=SOFT[:HARD]"},
		{in: "bogus=1", err: "invalid ulimit type: bogus"},
		{in: "nofile=x", err: `"x" is not an integer`},
		{in: "nofile=2:1", err: "soft limit must be less than or equal to hard limit"},
		{in: "nofile=1:2:3", err: "too many limit value arguments"},
	} {
		u, err := ParseUlimit(tc.in)
		if tc.err != "" {
			if !errContains(err, tc.err) {
				t.Errorf("ParseUlimit(%q) = %v, %v; want error %q", tc.in, u, err, tc.err)
			}
			continue
		}
		if err != nil || u.Soft != tc.soft || u.Hard != tc.hard {
			t.Errorf("ParseUlimit(%q) = %v, %v", tc.in, u, err)
		}
	}
}

func TestParseDevice(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want container.DeviceMapping
		err  string
	}{
		{in: "/dev/fuse", want: container.DeviceMapping{PathOnHost: "/dev/fuse", PathInContainer: "/dev/fuse", CgroupPermissions: "rwm"}},
		{in: "/dev/sda:/dev/xvda", want: container.DeviceMapping{PathOnHost: "/dev/sda", PathInContainer: "/dev/xvda", CgroupPermissions: "rwm"}},
		{in: "/dev/sda:r", want: container.DeviceMapping{PathOnHost: "/dev/sda", PathInContainer: "/dev/sda", CgroupPermissions: "r"}},
		{in: "/dev/sda:/dev/xvda:rw", want: container.DeviceMapping{PathOnHost: "/dev/sda", PathInContainer: "/dev/xvda", CgroupPermissions: "rw"}},
		{in: "", err: "want /dev/HOST"},
		{in: "/a:/b:/c:d", err: "want /dev/HOST"},
		{in: "/dev/sda:/dev/xvda:rx", err: `bad mode "rx"`},
		{in: "/dev/sda:/dev/xvda:rr", err: `bad mode "rr"`},
		{in: "/dev/sda:xvda", err: "xvda is not an absolute path"},
		{in: "sda", err: "sda is not an absolute path"},
	} {
		got, err := ParseDevice(tc.in)
		if tc.err != "" {
			if !errContains(err, tc.err) {
				t.Errorf("ParseDevice(%q) = %+v, %v; want error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseDevice(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseDeviceCgroupRule(t *testing.T) {
	for _, ok := range []string{"c 1:3 rwm", "b *:* m", "a 7:* r"} {
		if _, err := ParseDeviceCgroupRule(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"c 1:3", "x 1:3 r", "c 1:3 rwmm", "c a:3 r", "c 1:3 rr"} {
		if _, err := ParseDeviceCgroupRule(bad); !errContains(err, "invalid device cgroup rule") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestParseRestartPolicy(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want container.RestartPolicy
		err  string
	}{
		{in: "", want: container.RestartPolicy{}},
		{in: "no", want: container.RestartPolicy{Name: "no"}},
		{in: "always", want: container.RestartPolicy{Name: "always"}},
		{in: "unless-stopped", want: container.RestartPolicy{Name: "unless-stopped"}},
		{in: "on-failure", want: container.RestartPolicy{Name: "on-failure"}},
		{in: "on-failure:3", want: container.RestartPolicy{Name: "on-failure", MaximumRetryCount: 3}},
		{in: ":3", err: "invalid restart policy format: no policy provided before colon"},
		{in: "on-failure:x", err: "invalid restart policy format: maximum retry count must be an integer"},
		{in: "on-failure:-1", err: "maximum retry count cannot be negative"},
		{in: "always:3", err: "maximum retry count can only be used with 'on-failure'"},
		{in: "no:0", err: "maximum retry count can only be used with 'on-failure'"},
		{in: "sometimes", err: "invalid restart policy: unknown policy 'sometimes'"},
	} {
		got, err := ParseRestartPolicy(tc.in)
		if tc.err != "" {
			if !errContains(err, tc.err) {
				t.Errorf("ParseRestartPolicy(%q) = %+v, %v; want error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseRestartPolicy(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseCPUs(t *testing.T) {
	for in, want := range map[string]int64{"1.5": 1_500_000_000, "0.01": 10_000_000, "2": 2_000_000_000, "0": 0, "1/4": 250_000_000} {
		if got, err := ParseCPUs(in); err != nil || got != want {
			t.Errorf("ParseCPUs(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for in, want := range map[string]string{"abc": "want a number", "-1": "must not be negative", "0.0000000001": "too precise", "": "want a number"} {
		if _, err := ParseCPUs(in); !errContains(err, want) {
			t.Errorf("ParseCPUs(%q): %v; want %q", in, err, want)
		}
	}
}

func TestParseMemory(t *testing.T) {
	for in, want := range map[string]int64{"12": 12, "12b": 12, "64m": 64 << 20, "1g": 1 << 30, "1.5GiB": 3 << 29, "512k": 512 << 10} {
		if got, err := ParseMemory(in); err != nil || got != want {
			t.Errorf("ParseMemory(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"12xyz", "", "m", "-5m"} {
		_, err := ParseMemory(in)
		if !errContains(err, "invalid size: '"+in+"'") {
			t.Errorf("ParseMemory(%q): %v", in, err)
		}
	}
	if n, err := ParseMemorySwap("-1"); err != nil || n != -1 {
		t.Errorf("ParseMemorySwap(-1) = %d, %v", n, err)
	}
	if n, err := ParseMemorySwap("1g"); err != nil || n != 1<<30 {
		t.Errorf("ParseMemorySwap(1g) = %d, %v", n, err)
	}
}

func TestParseEnv(t *testing.T) {
	t.Setenv("BERTH_OPTS_SET", "from-env")
	os.Unsetenv("BERTH_OPTS_UNSET")
	got, err := ParseEnv([]string{"A=1", "B=", "BERTH_OPTS_SET", "BERTH_OPTS_UNSET", "C=x=y"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"A=1", "B=", "BERTH_OPTS_SET=from-env", "BERTH_OPTS_UNSET", "C=x=y"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if _, err := ParseEnv([]string{"=x"}); !errContains(err, `invalid environment variable "=x"`) {
		t.Fatalf("=x: %v", err)
	}
}

func TestParseEnvFile(t *testing.T) {
	t.Setenv("BERTH_OPTS_SET", "from-env")
	os.Unsetenv("BERTH_OPTS_UNSET")
	dir := t.TempDir()
	f := filepath.Join(dir, "env")
	content := "\xEF\xBB\xBF# comment\n\nA=1\n   B=two words  \nBERTH_OPTS_SET\nBERTH_OPTS_UNSET\n  # indented comment\nC=\"quoted\"\nD=\n"
	if err := os.WriteFile(f, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ParseEnvFile(f)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"A=1", "B=two words  ", "BERTH_OPTS_SET=from-env", `C="quoted"`, "D="}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	labels, err := ParseLabelFile(f)
	if err != nil || !reflect.DeepEqual(labels, []string{"A=1", "B=two words  ", "BERTH_OPTS_SET", "BERTH_OPTS_UNSET", `C="quoted"`, "D="}) {
		t.Fatalf("label file: %q %v", labels, err)
	}
	for content, want := range map[string]string{
		"=x\n":         "no variable name on line '=x'",
		"A B=1\n":      "variable 'A B' contains whitespaces",
		"A=\xff\xfe\n": "invalid utf8 bytes at line 1",
	} {
		os.WriteFile(f, []byte(content), 0o644)
		if _, err := ParseEnvFile(f); !errContains(err, want) || !errContains(err, "invalid env file ("+f+")") {
			t.Errorf("%q: %v; want %q", content, err, want)
		}
	}
	if _, err := ParseEnvFile(filepath.Join(dir, "missing")); !errContains(err, "no such file") {
		t.Errorf("missing: %v", err)
	}
}

func TestParseLabels(t *testing.T) {
	got, err := ParseLabels([]string{"a=1", "b", "c=x=y", "a=2"})
	if err != nil || !reflect.DeepEqual(got, map[string]string{"a": "2", "b": "", "c": "x=y"}) {
		t.Fatalf("got %v, %v", got, err)
	}
	if _, err := ParseLabels([]string{"=x"}); !errContains(err, "empty name") {
		t.Fatal(err)
	}
	if _, err := ParseLabels([]string{"a b=x"}); !errContains(err, "contains whitespaces") {
		t.Fatal(err)
	}
}

func TestParseSysctls(t *testing.T) {
	got, err := ParseSysctls([]string{"net.ipv4.ip_forward=1", "kernel.shmmax=1024", "fs.mqueue.msg_max=20"})
	if err != nil || !reflect.DeepEqual(got, map[string]string{"net.ipv4.ip_forward": "1", "kernel.shmmax": "1024", "fs.mqueue.msg_max": "20"}) {
		t.Fatalf("got %v, %v", got, err)
	}
	if _, err := ParseSysctls([]string{"kernel.hostname=x"}); !errContains(err, "sysctl 'kernel.hostname=x' is not allowed") {
		t.Fatal(err)
	}
	if _, err := ParseSysctls([]string{"net.x"}); !errContains(err, "want KEY=VALUE") {
		t.Fatal(err)
	}
}

func TestParseSecurityOpts(t *testing.T) {
	dir := t.TempDir()
	prof := filepath.Join(dir, "p.json")
	os.WriteFile(prof, []byte("{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\"\n}\n"), 0o644)
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte("{nope"), 0o644)

	got, err := ParseSecurityOpts([]string{"seccomp=unconfined", "seccomp=" + prof, "no-new-privileges", "no-new-privileges=true",
		"no-new-privileges:false", "apparmor=myprof", "label=disable", "label=type:svirt_t", "systempaths=unconfined"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"seccomp=unconfined", `seccomp={"defaultAction":"SCMP_ACT_ALLOW"}`, "no-new-privileges", "no-new-privileges=true",
		"no-new-privileges:false", "apparmor=myprof", "label=disable", "label=type:svirt_t", "systempaths=unconfined"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	for in, want := range map[string]string{
		"seccomp=" + filepath.Join(dir, "none"): "opening seccomp profile",
		"seccomp=" + bad:                        "compacting json for seccomp profile",
		"no-new-privileges=maybe":               "no-new-privileges wants true or false",
		"foo=bar":                               `invalid --security-opt: "foo=bar"`,
		"apparmor":                              `invalid --security-opt: "apparmor"`,
		"label=bogus:x":                         "bad label option",
		"systempaths=confined":                  "systempaths only takes unconfined",
	} {
		if _, err := ParseSecurityOpts([]string{in}); !errContains(err, want) {
			t.Errorf("%q: %v; want %q", in, err, want)
		}
	}

	filtered, masked, ro := SplitSystemPaths(got)
	if len(filtered) != len(got)-1 || masked == nil || len(masked) != 0 || ro == nil || len(ro) != 0 {
		t.Fatalf("SplitSystemPaths: %q %v %v", filtered, masked, ro)
	}
	if _, masked, ro := SplitSystemPaths([]string{"no-new-privileges"}); masked != nil || ro != nil {
		t.Fatal("SplitSystemPaths without the option must leave the defaults (nil)")
	}

	sec, err := ParseSecurity(filtered)
	if err != nil {
		t.Fatal(err)
	}
	// the last no-new-privileges wins, as in docker
	if sec.NoNewPrivileges || sec.Seccomp != `{"defaultAction":"SCMP_ACT_ALLOW"}` || sec.AppArmorProfile != "myprof" ||
		!reflect.DeepEqual(sec.Labels, []string{"disable", "type:svirt_t"}) {
		t.Fatalf("ParseSecurity: %+v", sec)
	}
	if sec, err := ParseSecurity([]string{"no-new-privileges:true"}); err != nil || !sec.NoNewPrivileges {
		t.Fatalf("no-new-privileges:true: %+v %v", sec, err)
	}
	if _, err := ParseSecurity([]string{"systempaths=unconfined"}); err == nil {
		t.Fatal("systempaths must be split off before the daemon side")
	}
}

func TestParseNamespaceMode(t *testing.T) {
	for _, tc := range []struct{ flag, v, err string }{
		{"pid", "", ""}, {"--pid", "host", ""}, {"pid", "container:web", ""},
		{"pid", "container:", "--pid: invalid PID mode"}, {"pid", "private", "--pid: invalid PID mode"},
		{"ipc", "", ""}, {"ipc", "host", ""}, {"ipc", "private", ""}, {"ipc", "shareable", ""}, {"ipc", "none", ""},
		{"ipc", "container:db", ""}, {"ipc", "bogus", "--ipc: invalid IPC mode"},
		{"uts", "", ""}, {"uts", "host", ""}, {"uts", "container:x", "--uts: invalid UTS mode"},
		{"cgroupns", "private", ""}, {"cgroupns", "x", "--cgroupns: invalid CGROUP mode"},
		{"net", "host", "unknown namespace flag"},
	} {
		got, err := ParseNamespaceMode(tc.flag, tc.v)
		if tc.err == "" {
			if err != nil || got != tc.v {
				t.Errorf("ParseNamespaceMode(%q, %q) = %q, %v", tc.flag, tc.v, got, err)
			}
		} else if !errContains(err, tc.err) {
			t.Errorf("ParseNamespaceMode(%q, %q): %v; want %q", tc.flag, tc.v, err, tc.err)
		}
	}
}

func TestParseHealth(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    HealthFlags
		want *container.HealthConfig
		err  string
	}{
		{name: "nothing", f: HealthFlags{}, want: nil},
		{name: "none", f: HealthFlags{None: true}, want: &container.HealthConfig{Test: []string{"NONE"}}},
		{name: "cmd", f: HealthFlags{Cmd: "curl -f localhost", Interval: "5s", Timeout: "1s", StartPeriod: "1m", StartInterval: "2s", Retries: 3},
			want: &container.HealthConfig{Test: []string{"CMD-SHELL", "curl -f localhost"}, Interval: 5 * time.Second, Timeout: time.Second,
				StartPeriod: time.Minute, StartInterval: 2 * time.Second, Retries: 3}},
		{name: "timings only", f: HealthFlags{Interval: "10s"}, want: &container.HealthConfig{Interval: 10 * time.Second}},
		{name: "conflict", f: HealthFlags{None: true, Cmd: "x"}, err: "--no-healthcheck conflicts with --health-* options"},
		{name: "bad duration", f: HealthFlags{Interval: "5x"}, err: `invalid --health-interval "5x"`},
		{name: "negative", f: HealthFlags{Timeout: "-1s"}, err: "--health-timeout cannot be negative"},
		{name: "too small", f: HealthFlags{Interval: "10us"}, err: "--health-interval cannot be less than 1ms"},
		{name: "negative retries", f: HealthFlags{Cmd: "x", Retries: -1}, err: "--health-retries cannot be negative"},
	} {
		got, err := ParseHealth(tc.f)
		if tc.err != "" {
			if !errContains(err, tc.err) {
				t.Errorf("%s: %+v, %v; want %q", tc.name, got, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %+v, %v; want %+v", tc.name, got, err, tc.want)
		}
	}
}

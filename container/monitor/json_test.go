package monitor

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/container/jsonlite"
)

func sameJSON(t *testing.T, what string, got []byte, v any) {
	t.Helper()
	want, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("%s:\n got %s\nwant %s", what, got, want)
	}
}

func TestMarshalMatchesEncodingJSON(t *testing.T) {
	now := time.Date(2026, 11, 24, 4, 15, 55, 123456789, time.UTC)
	states := []State{
		{},
		{Status: "running", Pid: 42, PidStart: 12345, MonitorPid: 7, MonitorStart: 99, StartedAt: now, RestartCount: 1},
		{Status: "exited", ExitCode: 137, OOMKilled: true, Error: "exec \"x\": <not> found & \"quoted\"\n\t\x01 \u2028 é", StartedAt: now, FinishedAt: now.Add(time.Second)},
		{Status: "running", Health: &HealthState{Status: "starting", Log: []HealthProbe{}}},
		{Status: "running", Health: &HealthState{Status: "unhealthy", FailingStreak: 3, Log: []HealthProbe{
			{Start: now, End: now.Add(time.Millisecond), ExitCode: 1, Output: "bad\n"},
			{Start: now, End: now, ExitCode: -1, Output: "Health check exceeded timeout (1s)"},
		}}},
		{Status: "running", Health: &HealthState{Status: "healthy"}},
	}
	for i, s := range states {
		sameJSON(t, "state "+string(rune('0'+i)), s.marshal(), &s)
	}
	for _, m := range []SyncMsg{{}, {Pid: 3}, {Start: true}, {Started: true}, {Error: "boom \"x\""}} {
		sameJSON(t, "sync", m.marshal(), &m)
	}
	for _, m := range []ExitMsg{{}, {ExitCode: 3}, {ExitCode: 137, OOMKilled: true}} {
		sameJSON(t, "exit", m.marshal(), &m)
	}
	for _, e := range []Event{
		{Time: 1, Type: "container", Action: "start", ID: "abc"},
		{Time: now.UnixNano(), Type: "container", Action: "health_status: healthy", ID: "abc", Attributes: map[string]string{"name": "n", "image": "busybox:latest", "exitCode": "0", "a<b": "x"}},
	} {
		sameJSON(t, "event", e.marshal(), &e)
	}
	w := &jsonlite.Writer{}
	w.Raw("{")
	w.Strs("a", nil)
	w.Strs("b", []string{})
	w.Strs("c", []string{"x", "y\""})
	w.Raw("}")
	sameJSON(t, "strs", w.B, struct {
		A []string `json:"a"`
		B []string `json:"b"`
		C []string `json:"c"`
	}{nil, []string{}, []string{"x", "y\""}})
}

func TestUnmarshalConfig(t *testing.T) {
	in := Config{
		ID: "abc", Runtime: "/bin/rt", RuntimeRoot: "/run/rt", Bundle: "/b", Dir: "/d", Terminal: true,
		OpenStdin: true, StdinOnce: true, LogPath: "/d/abc-json.log", LogMaxSize: 10 << 20, LogMaxFile: 3,
		Restart:  Restart{Name: "on-failure", MaxRetries: 5},
		Health:   &Health{Test: []string{"/bin/sh", "-c", "curl -f http://localhost/ || exit 1"}, Interval: 30 * time.Second, Timeout: time.Second, StartPeriod: 5 * time.Second, Retries: 3},
		OOMFiles: []string{"/sys/fs/cgroup/memory/x/memory.oom_control"}, ExitCommand: []string{"/usr/bin/berth", "cleanup", "abc"},
		EventsLog: "/var/lib/berth/events.log", Name: "web", Image: "nginx:latest",
	}
	b, _ := json.MarshalIndent(in, "", "  ")
	var out Config
	if err := out.unmarshal(b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("got %+v\nwant %+v", out, in)
	}
	// Unknown keys (of any shape) are skipped; escapes are decoded.
	var c Config
	err := c.unmarshal([]byte(`{"x":{"y":[1,2.5e3,{"z":null}]},"id":"a\u00e9\n\"b\ud83d\ude00","health":null,"restart":{"name":"always","other":true},"terminal":false}`))
	if err != nil || c.ID != "aé\n\"b😀" || c.Health != nil || c.Restart.Name != "always" {
		t.Fatalf("%+v %v", c, err)
	}
	if err := c.unmarshal([]byte(`{"a":-0.5e+3,"b":[0,1E2,-7,true,false,null]}`)); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{`{"a":01}`, `{"a":1.}`, `{"a":-}`, `{"a":.5}`, `{"a":1e}`, `{"a":tru}`, `{"a":nul}`, `{"a":truex}`, ``, `{`, `{"id":}`, `{"id":"x",}`, `{"id":1}`, `{"terminal":"yes"}`, `{"id":"x"} trailing`, `["id"]`, `{"log_max_size":1.5}`, `{"id":"\x01"}`} {
		var c Config
		if err := c.unmarshal([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	var h Hello
	if err := h.unmarshal([]byte(`{"stdin":true,"stdout":true,"stderr":false,"cleanup":true}`)); err != nil || h != (Hello{Stdin: true, Stdout: true, Cleanup: true}) {
		t.Fatalf("hello %+v %v", h, err)
	}
	var r Resize
	if err := r.unmarshal([]byte(`{"rows":30,"cols":100}`)); err != nil || r != (Resize{30, 100}) {
		t.Fatalf("resize %+v %v", r, err)
	}
	if err := r.unmarshal([]byte(`{"rows":70000}`)); err == nil {
		t.Fatal("resize out of range accepted")
	}
	var m SyncMsg
	if err := m.unmarshal([]byte(` {"start": true} `)); err != nil || !m.Start {
		t.Fatalf("sync %+v %v", m, err)
	}
}

func TestProbeProcess(t *testing.T) {
	cfg := `{"ociVersion":"1.2.0","process":{"terminal":true,"consoleSize":{"height":1,"width":2},"user":{"uid":1000,"gid":1000},
		"args":["sh"],"env":["PATH=/bin","A=b"],"cwd":"/srv","capabilities":{"bounding":["CAP_KILL"]},"noNewPrivileges":true},"root":{"path":"rootfs"}}`
	b, err := probeProcess([]byte(cfg), []string{"/bin/sh", "-c", "exit 0"})
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if p["terminal"] != false || p["cwd"] != "/srv" || p["consoleSize"] != nil || p["noNewPrivileges"] != true ||
		strings.Join(toStrings(p["args"]), " ") != "/bin/sh -c exit 0" || strings.Join(toStrings(p["env"]), " ") != "PATH=/bin A=b" ||
		p["user"].(map[string]any)["uid"] != 1000.0 {
		t.Fatalf("%s", b)
	}
	if _, err := probeProcess([]byte(`{"root":{}}`), []string{"x"}); err == nil {
		t.Fatal("no process: no error")
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

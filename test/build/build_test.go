package build_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const fullDockerfile = `FROM busybox
ARG GREETING=hi
ENV APP=/app GREETING2="$GREETING there"
WORKDIR $APP
RUN echo "$GREETING built" > /built.txt && echo run-output-here
COPY file.txt .
COPY dir /app/d/
COPY --chown=app:appgrp --chmod=0600 file.txt /owned
LABEL a=b "with space"="x y"
EXPOSE 8080 53/udp
VOLUME /data
USER app
STOPSIGNAL SIGINT
ENTRYPOINT ["/bin/sh","-c"]
CMD ["cat /built.txt /app/file.txt /app/d/sub/b; id -u; echo $GREETING2; stat -c '%u:%g %a' /owned"]
`

func TestBuildFullDockerfile(t *testing.T) {
	e := newEnv(t)
	e.write(map[string]string{"file.txt": "hello\n", "dir/a": "x\n", "dir/sub/b": "y\n", "secret": "no\n", ".dockerignore": "secret\n"})
	out := e.mustBuild(fullDockerfile, "-t", "test:1", "--build-arg", "GREETING=hey")
	for _, want := range []string{"Step 1/15 : FROM busybox", "Step 15/15 : CMD", "run-output-here", "Successfully built ", "Successfully tagged test:1"} {
		if !strings.Contains(out, want) {
			t.Errorf("build output lacks %q:\n%s", want, out)
		}
	}
	var cfg []struct {
		Config struct {
			Env          []string
			Cmd          []string
			Entrypoint   []string
			WorkingDir   string
			User         string
			ExposedPorts map[string]any
			Volumes      map[string]any
			Labels       map[string]string
			StopSignal   string
		}
	}
	if err := json.Unmarshal([]byte(e.must("image", "inspect", "test:1")), &cfg); err != nil || len(cfg) != 1 {
		t.Fatalf("inspect: %v", err)
	}
	c := cfg[0].Config
	if c.WorkingDir != "/app" || c.User != "app" || c.StopSignal != "SIGINT" || c.Labels["a"] != "b" || c.Labels["with space"] != "x y" {
		t.Errorf("config: %+v", c)
	}
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("ExposedPorts %v", c.ExposedPorts)
	}
	if _, ok := c.ExposedPorts["53/udp"]; !ok {
		t.Errorf("ExposedPorts %v", c.ExposedPorts)
	}
	if _, ok := c.Volumes["/data"]; !ok {
		t.Errorf("Volumes %v", c.Volumes)
	}
	if strings.Join(c.Entrypoint, " ") != "/bin/sh -c" || len(c.Cmd) != 1 {
		t.Errorf("Entrypoint %q Cmd %q", c.Entrypoint, c.Cmd)
	}
	if !strings.Contains(strings.Join(c.Env, ","), "GREETING2=hey there") {
		t.Errorf("Env %q", c.Env)
	}
	run := e.must("run", "--rm", "--network", "none", "test:1")
	if want := "hey built\nhello\ny\n1000\nhey there\n1000:1001 600\n"; run != want {
		t.Errorf("run printed %q, want %q", run, want)
	}
	// .dockerignore: the secret is not in the context.
	r := e.build("FROM busybox\nCOPY secret /\n")
	if r.code == 0 || !strings.Contains(r.err, "excluded by .dockerignore") {
		t.Errorf("COPY of an ignored file: %s", r)
	}
	hist := e.must("history", "--no-trunc", "test:1")
	if !strings.Contains(hist, "|1 GREETING=hey /bin/sh -c echo") {
		t.Errorf("history lacks the RUN with its build arg:\n%s", hist)
	}
}

func TestBuildMultiStage(t *testing.T) {
	e := newEnv(t)
	e.write(map[string]string{"src.txt": "source\n"})
	df := `ARG BASE=busybox
FROM $BASE AS builder
COPY src.txt /work/
RUN cat /work/src.txt > /work/out.txt && echo built >> /work/out.txt
FROM scratch AS unused
COPY nope /
FROM ${BASE}
COPY --from=builder /work/out.txt /result.txt
CMD ["cat", "/result.txt"]
`
	out := e.mustBuild(df, "-t", "multi")
	if strings.Contains(out, "COPY nope") {
		t.Errorf("the unused stage was built:\n%s", out)
	}
	if got := e.must("run", "--rm", "--network", "none", "multi"); got != "source\nbuilt\n" {
		t.Errorf("run printed %q", got)
	}
	// --target stops at the named stage.
	e.mustBuild(df, "-t", "stage1", "--target", "builder")
	if got := e.must("run", "--rm", "--network", "none", "stage1", "cat", "/work/out.txt"); got != "source\nbuilt\n" {
		t.Errorf("target run printed %q", got)
	}
}

var stepRe = regexp.MustCompile(`(?m)^Step (\d+)/\d+ : (.*)$`)

// cachedSteps returns the step numbers whose output says "Using cache".
func cachedSteps(out string) map[string]bool {
	m := map[string]bool{}
	parts := stepRe.FindAllStringSubmatchIndex(out, -1)
	for i, p := range parts {
		end := len(out)
		if i+1 < len(parts) {
			end = parts[i+1][0]
		}
		if strings.Contains(out[p[0]:end], "---> Using cache") {
			m[out[p[2]:p[3]]] = true
		}
	}
	return m
}

func TestBuildCache(t *testing.T) {
	e := newEnv(t)
	e.write(map[string]string{"a.txt": "a1\n", "b.txt": "b1\n"})
	df := "FROM busybox\nRUN echo one > /one\nCOPY a.txt /a.txt\nRUN cat /a.txt > /copy\nCOPY b.txt /b.txt\nCMD [\"cat\", \"/copy\", \"/b.txt\"]\n"
	first := e.mustBuild(df, "-t", "cached")
	if len(cachedSteps(first)) != 0 {
		t.Fatalf("first build used the cache:\n%s", first)
	}
	second := e.mustBuild(df, "-t", "cached")
	if c := cachedSteps(second); len(c) != 5 {
		t.Errorf("second build: cached steps %v, want 2..6:\n%s", c, second)
	}
	if strings.Contains(second, "Running in") {
		t.Errorf("a cached build ran a container:\n%s", second)
	}
	idOf := func(out string) string {
		m := regexp.MustCompile(`Successfully built ([0-9a-f]{12})`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no id in %s", out)
		}
		return m[1]
	}
	if idOf(first) != idOf(second) {
		t.Errorf("cached build made another image: %s vs %s", idOf(first), idOf(second))
	}
	e.write(map[string]string{"a.txt": "a2\n"})
	third := e.mustBuild(df, "-t", "cached")
	c := cachedSteps(third)
	if !c["2"] || c["3"] || c["4"] || c["5"] || c["6"] {
		t.Errorf("after editing a.txt: cached steps %v, want only 2:\n%s", c, third)
	}
	if got := e.must("run", "--rm", "--network", "none", "cached"); got != "a2\nb1\n" {
		t.Errorf("run printed %q", got)
	}
	if fourth := e.mustBuild(df, "--no-cache"); len(cachedSteps(fourth)) != 0 {
		t.Errorf("--no-cache used the cache:\n%s", fourth)
	}
}

func TestBuildFailingRun(t *testing.T) {
	e := newEnv(t)
	r := e.build("FROM busybox\nRUN echo before\nRUN echo failing; exit 3\nRUN echo never\n", "-t", "fail")
	if r.code != 1 {
		t.Errorf("exit code %d, want 1: %s", r.code, r)
	}
	if !strings.Contains(r.err, "The command '/bin/sh -c echo failing; exit 3' returned a non-zero code: 3") {
		t.Errorf("message: %s", r)
	}
	if strings.Contains(r.out, "never") || !strings.Contains(r.out, "failing") {
		t.Errorf("output: %s", r)
	}
	if ps := e.must("ps", "-a", "-q"); strings.TrimSpace(ps) != "" {
		t.Errorf("containers left: %q", ps)
	}
	if r := e.berth("image", "inspect", "fail"); r.code == 0 {
		t.Errorf("a failed build tagged its image")
	}
	// cleanup checks mounts and active snapshots
}

func TestBuildBadInput(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct {
		name, df  string
		flags     []string
		wantInErr string
	}{
		{"unknown instruction", "FROM busybox\nFOO bar\n", nil, "unknown instruction: FOO"},
		{"syntax error", "FROM busybox\nRUN true\nENV\n", nil, "line 3"},
		{"missing file", "FROM busybox\nCOPY missing.txt /\n", nil, "missing.txt"},
		{"missing target", "FROM busybox AS a\nRUN true\n", []string{"--target", "nosuch"}, "nosuch"},
		{"missing image", "FROM nosuchimage:1\n", []string{"--pull"}, "nosuchimage"},
		{"no FROM", "RUN true\n", nil, "no build stage"},
	} {
		if c.name == "missing image" {
			continue // would reach for a registry
		}
		r := e.build(c.df, c.flags...)
		lines := strings.Split(strings.TrimSpace(r.err), "\n")
		if r.code == 0 || !strings.Contains(r.err, c.wantInErr) || len(lines) != 1 {
			t.Errorf("%s: want one error line with %q, got %s", c.name, c.wantInErr, r)
		}
	}
	if ps := e.must("ps", "-a", "-q"); strings.TrimSpace(ps) != "" {
		t.Errorf("containers left: %q", ps)
	}
}

func TestBuildIidfileQuietAndImageBuild(t *testing.T) {
	e := newEnv(t)
	e.write(map[string]string{"Dockerfile": "FROM busybox\nLABEL x=y\n"})
	iid := filepath.Join(e.dir, "iid")
	out := e.must("image", "build", "-q", "--iidfile", iid, "--label", "extra=1", e.contextDir)
	b, err := os.ReadFile(iid)
	if err != nil || strings.TrimSpace(out) != string(b) || !strings.HasPrefix(string(b), "sha256:") {
		t.Errorf("quiet output %q, iidfile %q (%v)", out, b, err)
	}
	if lbl := e.must("image", "inspect", "--format", "{{.Config.Labels.extra}}", string(b)); strings.TrimSpace(lbl) != "1" {
		t.Errorf("--label: %q", lbl)
	}
}

// rmi of a built image deletes the untagged intermediate images it was built on, as docker's,
// but not those another image still builds on; --no-prune keeps them.
func TestBuildRmiPrunesParents(t *testing.T) {
	e := newEnv(t)
	count := func() int { return len(strings.Fields(e.must("images", "-aq"))) }
	base := count()
	e.mustBuild("FROM busybox\nRUN echo one > /one\nENV A=1\nRUN echo two > /two\n", "-t", "a")
	e.mustBuild("FROM busybox\nRUN echo one > /one\nENV B=1\n", "-t", "b")
	if n := count(); n != base+4 {
		t.Fatalf("images -a after two builds: %d, want %d", n, base+4)
	}
	out := e.must("rmi", "a")
	if strings.Count(out, "Deleted: sha256:") < 3 {
		t.Errorf("rmi a deleted too little:\n%s", out)
	}
	// a and its own two steps went; b and the step it shares remain.
	if n := count(); n != base+2 {
		t.Errorf("images -a after rmi a: %d, want %d\n%s", n, base+2, e.must("images", "-a"))
	}
	if out := e.mustBuild("FROM busybox\nRUN echo one > /one\nENV B=1\n", "-t", "b"); strings.Count(out, "Using cache") != 2 {
		t.Errorf("b's steps are no longer cached:\n%s", out)
	}
	e.mustBuild("FROM busybox\nRUN echo three > /three\nENV C=1\n", "-t", "c")
	e.must("rmi", "--no-prune", "c")
	if n := count(); n != base+3 {
		t.Errorf("images -a after rmi --no-prune c: %d, want %d", n, base+3)
	}
	e.must("rmi", "b")
	e.must("image", "prune", "-f")
	if n := count(); n != base {
		t.Errorf("images -a at the end: %d, want %d\n%s", n, base, e.must("images", "-a"))
	}
	e.must("system", "check")
}

// Independent stages build at the same time (their RUNs overlap in time, read from
// /proc/uptime inside each), and the output still reads stage after stage, steps in order.
func TestBuildParallelStages(t *testing.T) {
	e := newEnv(t)
	df := `FROM busybox AS a
RUN cut -d' ' -f1 /proc/uptime > /start && sleep 1.5 && cut -d' ' -f1 /proc/uptime > /end
FROM busybox AS b
RUN cut -d' ' -f1 /proc/uptime > /start && sleep 1.5 && cut -d' ' -f1 /proc/uptime > /end
FROM busybox
COPY --from=a /start /a-start
COPY --from=a /end /a-end
COPY --from=b /start /b-start
COPY --from=b /end /b-end
CMD cat /a-start /a-end /b-start /b-end
`
	out := e.mustBuild(df, "-t", "par")
	steps := regexp.MustCompile(`(?m)^Step (\d+)/10 : `).FindAllStringSubmatch(out, -1)
	if len(steps) != 10 {
		t.Fatalf("want 10 steps:\n%s", out)
	}
	for i, m := range steps {
		if m[1] != strconv.Itoa(i+1) {
			t.Fatalf("steps out of order:\n%s", out)
		}
	}
	var v [4]float64
	for i, f := range strings.Fields(e.must("run", "--rm", "--network", "none", "par")) {
		v[i], _ = strconv.ParseFloat(f, 64)
	}
	if !(v[0] < v[3] && v[2] < v[1]) {
		t.Errorf("stage RUNs did not overlap: a %.2f-%.2f, b %.2f-%.2f", v[0], v[1], v[2], v[3])
	}
	// A failing stage stops the build with its own error, not the cancellation of the other.
	r := e.build("FROM busybox AS a\nRUN sleep 1\nFROM busybox AS b\nRUN exit 3\nFROM busybox\nCOPY --from=a / /a\nCOPY --from=b / /b\n")
	if r.code == 0 || !strings.Contains(r.err, "returned a non-zero code: 3") {
		t.Errorf("failing stage: %s", r)
	}
}

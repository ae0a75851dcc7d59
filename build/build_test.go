package build

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for n, c := range files {
		p := filepath.Join(dir, n)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func tarNames(t *testing.T, b []byte) []string {
	t.Helper()
	var out []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, h.Name)
	}
}

func TestDockerignore(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{".dockerignore": "*.log\nlogs\n!logs/keep.log\n# comment\n", "a.log": "", "logs/x.log": "", "logs/keep.log": "", "b.txt": ""})
	c, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{"a.log": true, "b.txt": false, "logs/x.log": true, "logs/keep.log": false, "./b.txt": false} {
		if got := c.Excluded(p); got != want {
			t.Errorf("Excluded(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestCopyRules(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"f": "1", "g.txt": "2", "h.txt": "3", "d/a": "4", "d/s/b": "5"})
	c, _ := OpenDir(dir)
	root := srcRoot{dir: dir, ctx: c}
	for _, tc := range []struct {
		src     []string
		dest    string
		destDir bool
		want    []string
		fail    bool
	}{
		{[]string{"f"}, "/x", false, []string{"x"}, false},
		{[]string{"f"}, "/x/", false, []string{"x/f"}, false},
		{[]string{"f"}, "/x", true, []string{"x/f"}, false},
		{[]string{"f"}, "rel", false, []string{"wd/rel"}, false},
		{[]string{"f"}, ".", false, []string{"wd/f"}, false},
		{[]string{"d"}, "/app", false, []string{"app/", "app/a", "app/s/", "app/s/b"}, false},
		{[]string{"*.txt"}, "/t/", false, []string{"t/g.txt", "t/h.txt"}, false},
		{[]string{"*.txt"}, "/t", false, nil, true},
		{[]string{"f", "g.txt"}, "/t", false, nil, true},
		{[]string{"missing"}, "/t", false, nil, true},
		{[]string{"../../etc/passwd"}, "/t", false, nil, true},
	} {
		var buf bytes.Buffer
		_, err := writeCopy(root, &copySpec{Sources: tc.src, Dest: tc.dest, DestIsDir: tc.destDir, Workdir: "/wd"}, &buf)
		if tc.fail {
			if err == nil {
				t.Errorf("%v -> %s: no error", tc.src, tc.dest)
			}
			continue
		}
		if err != nil {
			t.Errorf("%v -> %s: %v", tc.src, tc.dest, err)
			continue
		}
		if got := tarNames(t, buf.Bytes()); !slices.Equal(got, tc.want) {
			t.Errorf("%v -> %s: %v, want %v", tc.src, tc.dest, got, tc.want)
		}
	}
}

func TestCopyHashIgnoresMtime(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"f": "1"})
	c, _ := OpenDir(dir)
	spec := &copySpec{Sources: []string{"f"}, Dest: "/f"}
	h1, _ := writeCopy(srcRoot{dir: dir, ctx: c}, spec, io.Discard)
	os.Chtimes(filepath.Join(dir, "f"), time.Unix(1, 0), time.Unix(1, 0))
	h2, _ := writeCopy(srcRoot{dir: dir, ctx: c}, spec, io.Discard)
	writeFiles(t, dir, map[string]string{"f": "2"})
	h3, _ := writeCopy(srcRoot{dir: dir, ctx: c}, spec, io.Discard)
	if h1 != h2 || h1 == h3 {
		t.Errorf("hashes %s %s %s", h1, h2, h3)
	}
	if cacheKey("a", "x") == cacheKey("a", "y") || cacheKey("a", "x", "y") == cacheKey("a", "xy") {
		t.Error("cache keys collide")
	}
}

func TestExposeAndWorkdir(t *testing.T) {
	p, err := exposePorts("8000-8002/UDP")
	if err != nil || !slices.Equal(p, []string{"8000/udp", "8001/udp", "8002/udp"}) {
		t.Errorf("%v %v", p, err)
	}
	if _, err := exposePorts("x"); err == nil {
		t.Error("bad port accepted")
	}
	if got := workdirPath("/a", "b/../c"); got != "/a/c" {
		t.Error(got)
	}
}

func TestArgExpansion(t *testing.T) {
	b := &builder{o: Options{BuildArgs: map[string]string{"V": "2"}}, meta: map[string]string{}, used: map[string]bool{}}
	if err := b.parse([]byte("ARG V=1\nARG IMG=base:$V\nFROM $IMG\n")); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.expandMeta(b.stages[0].BaseName); got != "base:2" {
		t.Errorf("FROM expanded to %q", got)
	}
	st := &stageState{args: map[string]string{"A": "x"}}
	st.config.Env = []string{"A=env"}
	if v := st.env()["A"]; v != "env" {
		t.Errorf("ENV should win over ARG: %q", v)
	}
}

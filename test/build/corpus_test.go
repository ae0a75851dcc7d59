package build_test

// The build corpus (issue 6, acceptance): one directory per case under testdata/, a Dockerfile
// and its context. Every case is built on the busybox image, a representative subset also on
// the Debian minbase image (BERTH_MINBASE), and checked by running the result and by reading
// its config (`berth image inspect`) and history (`berth history`, and the config's
// empty_layer flags from `berth save`). peer_test.go builds the same cases with podman and
// compares configs and file trees.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// corpusCase is one testdata directory and what its image must show.
type corpusCase struct {
	name      string
	buildArgs []string // --build-arg K=V
	parent    string   // a Dockerfile of the context built first and tagged <parentTag>
	debian    bool     // also built on the Debian image (FROM busybox -> FROM debian)
	wantErr   string   // the build must fail with this in its error
	prep      func(t *testing.T, ctx string)
	// runs: `berth run --rm IMAGE sh -c SCRIPT` must print the value; "" key: the image's
	// own command with no arguments.
	runs  map[string]string
	check func(t *testing.T, c *v1.Config, author string)
	// added: history entries the Dockerfile adds to the base image's.
	added       int
	fromScratch bool // the final stage starts from scratch: no base history
	// noPeer says why podman cannot build the case (it is then left out of the cross-check).
	noPeer string
}

const parentTag = "onbuild-parent"

var corpus = []corpusCase{
	{
		name: "copy-rules", debian: true, added: 13,
		runs: map[string]string{
			"cd / && find dst-dirslash dst-noslash asfile intodir multi globbed globdir existing w -print | sort": `asfile
dst-dirslash
dst-dirslash/a.txt
dst-dirslash/sub
dst-dirslash/sub/b.txt
dst-noslash
dst-noslash/a.txt
dst-noslash/sub
dst-noslash/sub/b.txt
existing
existing/file.txt
globbed
globbed/one.md
globbed/two.md
globdir
globdir/a.txt
globdir/sub
globdir/sub/b.txt
intodir
intodir/file.txt
multi
multi/file.txt
multi/one.md
w
w/a.txt
w/rel
w/sub
w/sub/b.txt
w/sub/one.md
`,
			"test -f /asfile && cat /asfile /w/rel": "file\nfile\n",
		},
		check: func(t *testing.T, c *v1.Config, _ string) { eq(t, "WorkingDir", c.WorkingDir, "/w") },
	},
	{name: "copy-multi-nodir", wantErr: "when using COPY with more than one source file, the destination must be a directory and end with a /"},
	{
		name: "arg-scope", buildArgs: []string{"OVERRIDE=cli", "VERSION=2.0"}, added: 8,
		runs: map[string]string{
			"cat /first.txt /second.txt /shadow.txt; echo \"env: $FROMARG $OVERRIDE.\"": "v=2.0 meta= stage=default derived=default-derived\n" +
				"v= stage= override=cli nodefault=\nshadow=env\nenv: cli .\n",
		},
		check: func(t *testing.T, c *v1.Config, _ string) {
			eq(t, "Env", c.Env, []string{"FROMARG=cli", "SHADOW=env"})
		},
	},
	{
		name: "env-expansion", debian: true, added: 9,
		runs: map[string]string{
			"cat /env.txt; pwd": "new|b c|alpha-x|alpha|def|alpha|set||$A|alpha_b c|alpha|new|old style value\n/new\n",
		},
		check: func(t *testing.T, c *v1.Config, _ string) {
			eq(t, "Env", c.Env, []string{"A=new", "B=b c", "C=alpha-x", "D=alpha", "E=def", "F=alpha", "G=set", "H=",
				"I=$A", "J=alpha_b c", "K=alpha", "L=new", "OLD=old style value"})
			eq(t, "WorkingDir", c.WorkingDir, "/new")
			eq(t, "Labels", c.Labels, map[string]string{"l": "new", "l2": "b c", "l3": "$A"})
			eq(t, "ExposedPorts", c.ExposedPorts, map[string]struct{}{"8080/tcp": {}})
		},
	},
	{
		name: "workdir", debian: true, added: 10,
		runs: map[string]string{"cat /pwd1 /pwd2 /pwd3; pwd": "/a/b\n/envdir/sub\n/tmp\n/envdir/sub\n"},
		check: func(t *testing.T, c *v1.Config, _ string) {
			eq(t, "WorkingDir", c.WorkingDir, "/envdir/sub")
			eq(t, "Env", c.Env, []string{"DIR=/envdir"})
		},
	},
	{
		name: "user", debian: true, added: 8,
		runs: map[string]string{
			"cat /user.txt; id -u; id -g; whoami; stat -c '%u:%g' /out/made-by-builder": "2000\nbuilder\n2000\n2001\n2000\n2001\nbuilder\n2000:2001\n",
		},
		check: func(t *testing.T, c *v1.Config, _ string) { eq(t, "User", c.User, "builder:bgroup") },
	},
	{
		name: "basics", debian: true, added: 9,
		runs: map[string]string{
			"": "hello as builder in /srv/app\n",
			"pwd; whoami; echo $GREETING; cat built.txt greeting.txt config.txt lib/lib.txt; stat -c '%U %n' * | sort": "/srv/app\nbuilder\nhello from build\n" +
				"hello as root in /srv/app\nhello from build\napp-config\nlib\n" +
				"builder built.txt\nbuilder config.txt\nbuilder greeting.txt\nbuilder lib\n",
		},
		check: func(t *testing.T, c *v1.Config, _ string) {
			eq(t, "Env", c.Env, []string{"APP_HOME=/srv/app", "GREETING=hello from build"})
			eq(t, "WorkingDir", c.WorkingDir, "/srv/app")
			eq(t, "User", c.User, "builder")
			eq(t, "Cmd", c.Cmd, []string{"/usr/local/bin/hello"})
		},
	},
	{
		name: "dockerignore", added: 1,
		runs: map[string]string{"cd /ctx && find . | sort": `.
./.dockerignore
./Dockerfile
./app.txt
./docs
./docs/x
./docs/x/y.md
./keep.log
./sub
./sub/c.log
`},
	},
	{
		name: "multistage", added: 4,
		runs: map[string]string{
			"cat /from-name.txt /from-index.txt; cd /outdir && find . | sort; cmp /bin/busybox /bb && echo same": "one\ntwo\n.\n./deep\n./deep/d.txt\n./one.txt\n./three.txt\nsame\n",
		},
	},
	{
		name: "onbuild", parent: "Dockerfile.parent", added: 4 + 4,
		runs: map[string]string{"cat /both.txt; echo $FROM_TRIGGER": "trigger\ntriggered\nyes\n"},
		check: func(t *testing.T, c *v1.Config, _ string) {
			eq(t, "OnBuild", len(c.OnBuild), 0)
			eq(t, "Env", c.Env, []string{"FROM_TRIGGER=yes"})
			eq(t, "Labels", c.Labels, map[string]string{"role": "parent"})
		},
	},
	{
		name: "metadata", added: 11,
		runs: map[string]string{"case $(cat /shell.txt) in *e*) echo errexit;; esac": "errexit\n", "": "hello from cmd\n"},
		check: func(t *testing.T, c *v1.Config, author string) {
			eq(t, "Author", author, "Jane Doe <jane@example.com>")
			eq(t, "Labels", c.Labels, map[string]string{"org.example.a": "1", "b": "two", "c d": "e f", "multi": "x y"})
			eq(t, "ExposedPorts", c.ExposedPorts, map[string]struct{}{"80/tcp": {}, "443/tcp": {}, "53/udp": {},
				"8000/tcp": {}, "8001/tcp": {}, "8002/tcp": {}})
			eq(t, "Volumes", c.Volumes, map[string]struct{}{"/data": {}, "/logs": {}, "/cache": {}})
			eq(t, "StopSignal", c.StopSignal, "SIGQUIT")
			eq(t, "Healthcheck", c.Healthcheck, &v1.HealthConfig{Test: []string{"CMD-SHELL", "wget -q -O- http://localhost/ || exit 1"},
				Interval: 5 * time.Second, Timeout: 3 * time.Second, StartPeriod: time.Second, Retries: 4})
			eq(t, "Shell", c.Shell, []string{"/bin/sh", "-ec"})
			eq(t, "Cmd", c.Cmd, []string{"/bin/sh", "-ec", "echo hello from cmd"})
		},
	},
	{
		name: "entrypoint-reset", added: 1,
		runs: map[string]string{"": "ep\n"},
		check: func(t *testing.T, c *v1.Config, _ string) {
			eq(t, "Entrypoint", c.Entrypoint, []string{"/bin/echo", "ep"})
			eq(t, "Cmd", len(c.Cmd), 0)
		},
	},
	{
		name: "cmd-forms", added: 2,
		runs: map[string]string{"": "shell-form-ignores-cmd\n"},
		check: func(t *testing.T, c *v1.Config, _ string) {
			eq(t, "Entrypoint", c.Entrypoint, []string{"/bin/sh", "-c", "echo shell-form-ignores-cmd"})
			eq(t, "Cmd", c.Cmd, []string{"echo", "exec-form"})
		},
	},
	{
		name: "add-archive", added: 5, prep: writeArchives,
		runs: map[string]string{
			"cd / && find unpacked unpacked-gz added.txt adddir copied.tar | sort; stat -c '%n %u:%g %a' /unpacked/x/1.txt /unpacked/x/2.txt /unpacked-gz/x/1.txt; cat /added.txt /adddir/plain.txt": `adddir
adddir/plain.txt
added.txt
copied.tar
unpacked
unpacked-gz
unpacked-gz/x
unpacked-gz/x/1.txt
unpacked-gz/x/2.txt
unpacked/x
unpacked/x/1.txt
unpacked/x/2.txt
/unpacked/x/1.txt 0:0 644
/unpacked/x/2.txt 1234:5678 600
/unpacked-gz/x/1.txt 0:0 644
plain
plain
`,
		},
	},
	{
		name: "chown-chmod", added: 9,
		prep: func(t *testing.T, ctx string) {
			for _, d := range []string{"private", "private/inner"} {
				if err := os.Chmod(filepath.Join(ctx, d), 0o700); err != nil {
					t.Fatal(err)
				}
			}
		},
		runs: map[string]string{
			"cd / && stat -c '%n %u:%g %a' private-copy private-copy/inner private-copy/inner/p.txt newparent newparent/sub newparent/sub/f.txt": `private-copy 0:0 755
private-copy/inner 0:0 700
private-copy/inner/p.txt 0:0 644
newparent 1234:5678 755
newparent/sub 1234:5678 755
newparent/sub/f.txt 1234:5678 644
`,
			"cd / && stat -c '%n %u:%g %a' owned-name owned-num owned-uid-only mode-file mode-dir mode-dir/x.txt mode-dir/sub mode-dir/sub/y.txt add-owned add-owned/x.txt add-owned/sub/y.txt owned-dir owned-dir/sub/y.txt": `owned-name 1000:1001 644
owned-num 1234:5678 644
owned-uid-only 1234:1234 644
mode-file 0:0 640
mode-dir 0:0 755
mode-dir/x.txt 0:0 750
mode-dir/sub 0:0 750
mode-dir/sub/y.txt 0:0 750
add-owned 1234:5678 755
add-owned/x.txt 1234:5678 644
add-owned/sub/y.txt 1234:5678 644
owned-dir 1000:1001 755
owned-dir/sub/y.txt 1000:1001 644
`,
		},
	},
	{
		name: "heredoc", debian: true, added: 9,
		noPeer: "Debian's podman 4.3 (buildah 1.28) has no heredoc support: it reads each heredoc line as an instruction",
		runs: map[string]string{
			"cd /hd && for f in run-simple run-chomp run-shebang multi-a multi-b copy-expanded copy-literal dir/one dir/two; do cat $f; done; stat -c '%a %n' copy-literal dir/one; test -e /dev/pipes && echo leaked || echo clean": "hello world\ntabs-stripped\nscript /dev/pipes/EOT\nfirst\nsecond\nhello from world\n$GREETING stays\n1\n2\n644 copy-literal\n755 dir/one\nclean\n",
		},
	},
	{
		name: "scratch", added: 4, fromScratch: true,
		check: func(t *testing.T, c *v1.Config, _ string) {
			eq(t, "Env", c.Env, []string{"K=v"})
			eq(t, "Cmd", c.Cmd, []string{"/nothing"})
		},
	},
}

func eq(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: got %#v, want %#v", what, got, want)
	}
}

// writeArchives makes add-archive's archive.tar and archive.tar.gz: x/1.txt (0:0 0644) and
// x/2.txt (1234:5678 0600).
func writeArchives(t *testing.T, dir string) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mt := time.Unix(1700000000, 0)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "x/", Mode: 0o755, ModTime: mt})
	for _, f := range []struct {
		name     string
		mode     int64
		uid, gid int
	}{{"x/1.txt", 0o644, 0, 0}, {"x/2.txt", 0o600, 1234, 5678}} {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: f.mode, Uid: f.uid, Gid: f.gid, Size: 3, ModTime: mt})
		tw.Write([]byte("ab\n"))
	}
	tw.Close()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(buf.Bytes())
	zw.Close()
	if err := os.WriteFile(filepath.Join(dir, "archive.tar"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "archive.tar.gz"), gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// prepareContext copies testdata/<name> to dst with fixed modes (0644 files, 0755 dirs:
// the checkout's umask must not matter) and runs the case's prep. With debian, the
// Dockerfiles' "FROM busybox" become "FROM debian".
func prepareContext(t *testing.T, c corpusCase, dst string, debian bool) {
	t.Helper()
	src := filepath.Join("testdata", c.name)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			return os.Chmod(out, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if debian && strings.HasPrefix(d.Name(), "Dockerfile") {
			b = bytes.ReplaceAll(b, []byte("FROM busybox"), []byte("FROM debian"))
		}
		if err := os.WriteFile(out, b, 0o644); err != nil {
			return err
		}
		return os.Chmod(out, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.prep != nil {
		c.prep(t, dst)
	}
}

// buildCase builds case c in e (its context under e.dir/<name>) as image tag; it returns
// the build's result (the parent's build must succeed).
func buildCase(e *env, c corpusCase, tag string, debian bool) result {
	t := e.t
	t.Helper()
	ctx := filepath.Join(e.dir, "ctx-"+tag)
	prepareContext(t, c, ctx, debian)
	return buildIn(e, c, ctx, tag)
}

// buildIn builds case c from its prepared context ctx.
func buildIn(e *env, c corpusCase, ctx, tag string) result {
	e.t.Helper()
	var flags []string
	for _, a := range c.buildArgs {
		flags = append(flags, "--build-arg", a)
	}
	if c.parent != "" {
		e.must(append(append([]string{"build", "--network", "none", "-f", filepath.Join(ctx, c.parent), "-t", parentTag}, flags...), ctx)...)
	}
	return e.berth(append(append([]string{"build", "--network", "none", "-t", tag}, flags...), ctx)...)
}

// savedImage is an image as `save` wrote it: its config and its flattened file tree.
type savedImage struct {
	cfg  v1.ConfigFile
	tree map[string]treeEntry
}

// treeEntry is what the comparison looks at for one path: no mtimes.
type treeEntry struct {
	Type     byte
	Mode     int64
	UID, GID int
	Size     int64
	Link     string
}

// readSaved reads a docker-archive (one image) and applies its layers in order, whiteouts
// and opaque dirs included.
func readSaved(t *testing.T, archive string) savedImage {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", archive, err)
		}
		if h.Typeflag == tar.TypeReg {
			b, _ := io.ReadAll(tr)
			files[strings.TrimPrefix(h.Name, "./")] = b
		}
	}
	var man []struct {
		Config string
		Layers []string
	}
	if err := json.Unmarshal(files["manifest.json"], &man); err != nil || len(man) != 1 {
		t.Fatalf("%s: manifest.json: %v (%d images)", archive, err, len(man))
	}
	var s savedImage
	if err := json.Unmarshal(files[man[0].Config], &s.cfg); err != nil {
		t.Fatalf("%s: config: %v", archive, err)
	}
	s.tree = map[string]treeEntry{}
	for _, l := range man[0].Layers {
		var r io.Reader = bytes.NewReader(files[l])
		if b := files[l]; len(b) > 2 && b[0] == 0x1f && b[1] == 0x8b {
			zr, err := gzip.NewReader(r)
			if err != nil {
				t.Fatal(err)
			}
			r = zr
		}
		applyLayer(t, s.tree, r)
	}
	return s
}

func applyLayer(t *testing.T, tree map[string]treeEntry, r io.Reader) {
	tr := tar.NewReader(r)
	removeUnder := func(p string, self bool) {
		for k := range tree {
			if (self && k == p) || strings.HasPrefix(k, p+"/") || (p == "/" && k != "/") {
				delete(tree, k)
			}
		}
	}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("layer: %v", err)
		}
		name := filepath.Clean("/" + h.Name)
		dir, base := filepath.Split(name)
		dir = filepath.Clean(dir)
		if base == ".wh..wh..opq" {
			removeUnder(dir, false)
			continue
		}
		if strings.HasPrefix(base, ".wh.") {
			removeUnder(filepath.Join(dir, strings.TrimPrefix(base, ".wh.")), true)
			continue
		}
		if old, ok := tree[name]; ok && old.Type == tar.TypeDir && h.Typeflag != tar.TypeDir {
			removeUnder(name, false)
		}
		e := treeEntry{Type: h.Typeflag, Mode: h.Mode & 0o7777, UID: h.Uid, GID: h.Gid, Link: h.Linkname}
		if e.Type == '\x00' { // the old regular-file flag (tar.TypeRegA) some writers still use
			e.Type = tar.TypeReg
		}
		if e.Type == tar.TypeReg {
			e.Size = h.Size
		}
		if e.Type == tar.TypeLink {
			e.Link = filepath.Clean("/" + h.Linkname)
		}
		tree[name] = e
	}
}

// checkHistory checks the history of tag: `berth history` lists every entry of the config's
// history, the Dockerfile added `added` of them to the base's, and metadata steps are
// empty_layer while RUN/COPY/ADD are not.
func checkHistory(t *testing.T, e *env, tag string, s savedImage, baseLen, added int) {
	t.Helper()
	// One row per entry (--format, as a heredoc's CREATED BY has newlines in it).
	rows := strings.Split(strings.TrimSpace(e.must("history", "--format", "{{.ID}}", tag)), "\n")
	if len(rows) != len(s.cfg.History) {
		t.Errorf("berth history shows %d rows, the config has %d entries", len(rows), len(s.cfg.History))
	}
	if len(s.cfg.History) != baseLen+added {
		t.Errorf("history has %d entries, want %d (base) + %d", len(s.cfg.History), baseLen, added)
	}
	layers := 0
	for _, h := range s.cfg.History[min(baseLen, len(s.cfg.History)):] {
		by := h.CreatedBy
		nop := strings.Contains(by, "#(nop) ")
		kind := ""
		if nop {
			kind = strings.Fields(by[strings.Index(by, "#(nop) ")+len("#(nop) "):])[0]
		}
		switch {
		case !nop || kind == "COPY" || kind == "ADD":
			if h.EmptyLayer {
				t.Errorf("history %q: empty_layer, want a layer", by)
			}
		case kind == "WORKDIR": // a layer when it created the directory
		default:
			if !h.EmptyLayer {
				t.Errorf("history %q: a layer for a metadata step", by)
			}
		}
	}
	for _, h := range s.cfg.History {
		if !h.EmptyLayer {
			layers++
		}
	}
	if layers != len(s.cfg.RootFS.DiffIDs) {
		t.Errorf("%d non-empty history entries for %d layers", layers, len(s.cfg.RootFS.DiffIDs))
	}
}

// runCorpus builds every case (those marked debian only, when debian) and checks them.
func runCorpus(t *testing.T, e *env, debian bool) {
	base := "busybox:latest"
	if debian {
		base = "debian:latest"
	}
	baseLen := len(saveImage(t, e, base).cfg.History)
	for _, c := range corpus {
		if debian && !c.debian {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			e := &env{t: t, dir: e.dir, root: e.root, contextDir: e.contextDir}
			tag := "corpus-" + c.name
			r := buildCase(e, c, tag, debian)
			if c.wantErr != "" {
				if r.code == 0 || !strings.Contains(r.err, c.wantErr) {
					t.Errorf("want a failed build with %q, got %s", c.wantErr, r)
				}
				return
			}
			if r.code != 0 {
				t.Fatalf("build: %s", r)
			}
			var insp []struct {
				Author string
				Config v1.Config
			}
			if err := json.Unmarshal([]byte(e.must("image", "inspect", tag)), &insp); err != nil || len(insp) != 1 {
				t.Fatalf("inspect: %v", err)
			}
			if c.check != nil {
				c.check(t, &insp[0].Config, insp[0].Author)
			}
			bl := baseLen
			if c.fromScratch {
				bl = 0
			}
			checkHistory(t, e, tag, saveImage(t, e, tag), bl, c.added)
			scripts := make([]string, 0, len(c.runs))
			for s := range c.runs {
				scripts = append(scripts, s)
			}
			sort.Strings(scripts)
			for _, s := range scripts {
				args := []string{"run", "--rm", "--network", "none", tag}
				if s != "" {
					args = append(args, "sh", "-c", s)
				}
				if got := e.must(args...); got != c.runs[s] {
					t.Errorf("run %q printed:\n%s\nwant:\n%s", s, got, c.runs[s])
				}
			}
		})
	}
}

func saveImage(t *testing.T, e *env, ref string) savedImage {
	t.Helper()
	out := filepath.Join(e.dir, "save-"+strings.NewReplacer("/", "_", ":", "_").Replace(ref)+".tar")
	e.must("save", "-o", out, ref)
	defer os.Remove(out)
	return readSaved(t, out)
}

func TestCorpus(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	runCorpus(t, e, false)
}

func TestCorpusDebian(t *testing.T) {
	if minbaseGz == "" {
		t.Skip("BERTH_MINBASE not set (make builds it)")
	}
	t.Parallel()
	e := newEnv(t)
	e.must("import", "-c", `CMD ["bash"]`, minbaseGz, "debian:latest")
	runCorpus(t, e, true)
}

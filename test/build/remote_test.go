package build_test

// ADD of a URL (served by the test on 127.0.0.1) and pushing a built image to a real registry
// (Debian's docker-registry), pulling it into another data root and running it.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

func TestBuildAddURL(t *testing.T) {
	var body atomic.Value
	body.Store("remote content v1\n")
	modified := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	mux := http.NewServeMux()
	mux.HandleFunc("/files/data.txt", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Last-Modified", modified.Format(http.TimeFormat))
		fmt.Fprint(w, body.Load().(string))
	})
	mux.HandleFunc("/files/arch.tar.gz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("\x1f\x8b not really an archive"))
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	base := "http://" + l.Addr().String() + "/files/"

	sum := sha256.Sum256([]byte("remote content v1\n"))
	df := fmt.Sprintf(`FROM busybox
ADD %[1]sdata.txt /remote/
ADD %[1]sdata.txt /renamed.txt
ADD --checksum=sha256:%[2]s --chown=7:8 --chmod=0640 %[1]sdata.txt /checked
ADD %[1]sarch.tar.gz /arch/
`, base, hex.EncodeToString(sum[:]))
	e := newEnv(t)
	e.mustBuild(df, "-t", "addurl")
	got := e.must("run", "--rm", "--network", "none", "addurl", "sh", "-c",
		"cat /remote/data.txt /renamed.txt; stat -c '%a %u:%g %Y %n' /remote/data.txt /checked; ls /arch")
	want := fmt.Sprintf("remote content v1\nremote content v1\n600 0:0 %[1]d /remote/data.txt\n640 7:8 %[1]d /checked\narch.tar.gz\n", modified.Unix())
	if got != want {
		t.Errorf("run printed:\n%s\nwant:\n%s", got, want)
	}

	// The same bytes: every step cached. New bytes: the ADDs rerun (the checksum then fails).
	if out := e.mustBuild(df, "-t", "addurl"); strings.Count(out, "Using cache") != 4 {
		t.Errorf("rebuild with the same content is not fully cached:\n%s", out)
	}
	body.Store("remote content v2\n")
	r := e.build(df, "-t", "addurl")
	if r.code == 0 || !strings.Contains(r.err, "checksum mismatch") || strings.Count(r.out, "Using cache") != 0 {
		t.Errorf("changed content: %s", r)
	}

	for _, tc := range []struct{ df, want string }{
		{"FROM busybox\nADD " + base + "missing /x\n", "404 Not Found"},
		{"FROM busybox\nADD http://127.0.0.1:1/f /x\n", "not reachable"},
		{"FROM busybox\nADD --checksum=md5:00 " + base + "data.txt /x\n", "use sha256:"},
		{"FROM busybox\nADD --checksum=sha256:" + strings.Repeat("0", 64) + " Dockerfile /x\n", "only be given for HTTP(S) sources"},
		{"FROM busybox\nADD http://127.0.0.1:1/ /x/\n", "cannot determine a file name"},
	} {
		r := e.build(tc.df)
		if r.code == 0 || !strings.Contains(r.err, tc.want) || strings.Count(strings.TrimSpace(r.err), "\n") != 0 {
			t.Errorf("%q: want one error line with %q, got %s", tc.df, tc.want, r)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(e.root, "build", "tmp")); len(ents) != 0 {
		t.Errorf("downloads left in build/tmp: %v", ents)
	}
}

func TestBuildPushPull(t *testing.T) {
	reg := testutil.StartRegistry(t)
	e := newEnv(t)
	e.write(map[string]string{"app.sh": "echo built-and-pushed\n"})
	ref := reg + "/built/app:1"
	e.mustBuild("FROM busybox\nCOPY app.sh /\nRUN chmod +x /app.sh\nENV MODE=pushed\nCMD [\"sh\", \"/app.sh\"]\n", "-t", ref)
	e.must("push", ref)

	other := newEnv(t)
	other.must("pull", ref)
	if out := other.must("run", "--rm", "--network", "none", ref); out != "built-and-pushed\n" {
		t.Errorf("pulled image printed %q", out)
	}
	if id, id2 := strings.TrimSpace(e.must("images", "-q", "--no-trunc", ref)), strings.TrimSpace(other.must("images", "-q", "--no-trunc", ref)); id != id2 || id == "" {
		t.Errorf("image ID after push and pull %q, built %q", id2, id)
	}
	h1, h2 := e.must("history", "--format", "{{.CreatedBy}}", ref), other.must("history", "--format", "{{.CreatedBy}}", ref)
	if h1 != h2 || !strings.Contains(h1, "ENV MODE=pushed") {
		t.Errorf("history after push and pull:\n%s\nbuilt:\n%s", h2, h1)
	}
}

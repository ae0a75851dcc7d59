package images_test

// Helpers shared by crash_test.go, concurrency_test.go and interop_test.go:
// a generated multi-layer image (random file contents, so it is large and
// does not compress), and checks that a test left no process or mount behind.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// bigImage is a generated image loaded into a seed root and pushed to a
// registry: Ref names it there, ID is its config digest, Archive is the
// `berth save` of it (a docker-archive), Layers its layer count.
type bigImage struct {
	Ref, ID, Archive string
	Layers           int
}

// layerSizes are the uncompressed payload sizes of the generated layers
// (random bytes: the compressed layers are the same size, ~40 MB in all).
var layerSizes = []int{8 << 20, 12 << 20, 20 << 20}

// genLayer makes one gzip layer tar of random files totalling about size
// bytes under dir/<name>/, returning the compressed bytes and the diffID.
func genLayer(rng *rand.Rand, name string, size int) ([]byte, string) {
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	mtime := time.Unix(1700000000, 0)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755, ModTime: mtime})
	buf := make([]byte, 2<<20)
	for i := 0; size > 0; i++ {
		n := min(size, 512<<10+rng.IntN(1<<20))
		for j := 0; j < n; j += 8 {
			v := rng.Uint64()
			for k := 0; k < 8 && j+k < n; k++ {
				buf[j+k] = byte(v >> (8 * k))
			}
		}
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("%s/f%03d", name, i), Mode: 0o644, Size: int64(n), ModTime: mtime})
		tw.Write(buf[:n])
		size -= n
	}
	tw.Close()
	diff := sha256.Sum256(raw.Bytes())
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	zw.Write(raw.Bytes())
	zw.Close()
	return gz.Bytes(), "sha256:" + hex.EncodeToString(diff[:])
}

// writeDockerArchive writes a docker-archive with gzip layers and returns the
// image ID (the config's digest).
func writeDockerArchive(t *testing.T, path, tag string, layers [][]byte, diffIDs []string) string {
	t.Helper()
	cfg, _ := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"created":      "2024-01-01T00:00:00Z",
		"config":       map[string]any{"Cmd": []string{"sh"}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": diffIDs},
	})
	sum := sha256.Sum256(cfg)
	id := hex.EncodeToString(sum[:])
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	add := func(name string, b []byte) {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: time.Unix(1700000000, 0)})
		tw.Write(b)
	}
	add(id+".json", cfg)
	var names []string
	for i, l := range layers {
		n := fmt.Sprintf("layer%d.tar.gz", i)
		add(n, l)
		names = append(names, n)
	}
	m, _ := json.Marshal([]map[string]any{{"Config": id + ".json", "RepoTags": []string{tag}, "Layers": names}})
	add("manifest.json", m)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return "sha256:" + id
}

// makeBigImage generates the image (seeded), loads it into a seed root,
// pushes it to reg as <reg>/<repo>:1 and saves it with berth save.
func makeBigImage(t *testing.T, reg, repo string, seed uint64) bigImage {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	var layers [][]byte
	var diffIDs []string
	for i, sz := range layerSizes {
		l, d := genLayer(rng, fmt.Sprintf("l%d", i), sz)
		layers, diffIDs = append(layers, l), append(diffIDs, d)
	}
	seedEnv := newEnv(t)
	ref := reg + "/" + repo + ":1"
	gen := filepath.Join(seedEnv.dir, "gen.tar")
	id := writeDockerArchive(t, gen, ref, layers, diffIDs)
	if out := seedEnv.must("load", "-i", gen); !strings.Contains(out, "Loaded image: "+ref) {
		t.Fatalf("load of the generated archive: %q", out)
	}
	if got := imageIDs(seedEnv); len(got) != 1 || got[0] != id {
		t.Fatalf("generated image loaded as %v, want %s", got, id)
	}
	seedEnv.must("push", "-q", ref)
	saved := filepath.Join(seedEnv.dir, "saved.tar")
	seedEnv.must("save", "-o", saved, ref)
	return bigImage{Ref: ref, ID: id, Archive: saved, Layers: len(layers)}
}

// imageIDs lists the full image IDs berth shows.
func imageIDs(e *env) []string {
	e.t.Helper()
	return strings.Fields(e.must("images", "-q", "--no-trunc"))
}

// checkStore runs `berth system check` and wants exit 0 and "store is consistent".
func checkStore(e *env, when string) {
	e.t.Helper()
	out, errOut, code := e.berth("system", "check")
	if code != 0 || !strings.Contains(out+errOut, "store is consistent") {
		e.t.Fatalf("%s: system check: exit %d: %s%s", when, code, out, errOut)
	}
}

// checkComplete wants the store to hold exactly the image id (with n layers)
// or, if allowNone, nothing at all.
func checkComplete(e *env, when, id string, n int, allowNone bool) {
	e.t.Helper()
	ids := imageIDs(e)
	if len(ids) == 0 && allowNone {
		return
	}
	if len(ids) != 1 || ids[0] != id {
		e.t.Fatalf("%s: images shows %v, want only %s", when, ids, id)
	}
	var inspect []struct {
		ID     string `json:"Id"`
		RootFS struct{ Layers []string }
	}
	if err := json.Unmarshal([]byte(e.must("image", "inspect", id)), &inspect); err != nil || len(inspect) != 1 {
		e.t.Fatalf("%s: image inspect: %v", when, err)
	}
	if inspect[0].ID != id || len(inspect[0].RootFS.Layers) != n {
		e.t.Fatalf("%s: half an image? inspect %+v, want %s with %d layers", when, inspect[0], id, n)
	}
}

// dirEmpty fails if dir holds anything (a missing dir counts as empty).
func dirEmpty(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if len(ents) > 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("leftovers in %s: %v", dir, names)
	}
}

// noLeftovers registers a cleanup (run before the temp dirs are removed)
// that fails the test if any process still mentions dir in its command line
// or any mount lies under dir.
func noLeftovers(t *testing.T, dir string) {
	t.Cleanup(func() {
		self := fmt.Sprint(os.Getpid())
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, p := range procs {
			if strings.Split(p, "/")[2] == self {
				continue
			}
			b, _ := os.ReadFile(p)
			if bytes.Contains(b, []byte(dir)) {
				t.Errorf("process left behind: %s: %q", p, bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
			}
		}
		mi, _ := os.ReadFile("/proc/self/mountinfo")
		for _, l := range strings.Split(string(mi), "\n") {
			if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[4], dir) {
				t.Errorf("mount left behind: %s", l)
			}
		}
	})
}

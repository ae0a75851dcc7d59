package images_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

// TestDebianMinbaseImage runs the image workflow on the Debian minbase image the project makes
// with debootstrap (scripts/mkminbase.sh; make test-integration sets BERTH_MINBASE): import,
// push, pull into a fresh store, and the unpacked tree is Debian's.
func TestDebianMinbaseImage(t *testing.T) {
	gz := os.Getenv("BERTH_MINBASE")
	if gz == "" {
		t.Skip("BERTH_MINBASE not set (make test-integration builds and sets it)")
	}
	reg := testutil.StartRegistry(t)
	src := newEnv(t)
	ref := reg + "/debian:minbase"
	id := strings.TrimSpace(src.must("import", "-c", `CMD ["bash"]`, gz, ref))
	src.must("push", ref)

	dst := newEnv(t)
	dst.must("pull", "-q", ref)
	if got := strings.TrimSpace(dst.must("images", "-q", "--no-trunc")); got != id {
		t.Fatalf("pulled %q, want %q", got, id)
	}
	var inspect []struct {
		RootFS struct{ Layers []string }
	}
	if err := json.Unmarshal([]byte(dst.must("image", "inspect", ref)), &inspect); err != nil || len(inspect) != 1 || len(inspect[0].RootFS.Layers) != 1 {
		t.Fatalf("inspect: %v %+v", err, inspect)
	}
	// One layer: its chain ID is its diffID.
	fs := filepath.Join(dst.root, "snapshots", "committed", strings.TrimPrefix(inspect[0].RootFS.Layers[0], "sha256:"), "fs")
	for _, f := range []string{"etc/debian_version", "usr/bin/apt-get", "usr/bin/bash"} {
		if _, err := os.Lstat(filepath.Join(fs, f)); err != nil {
			t.Errorf("%s missing from the unpacked image: %v", f, err)
		}
	}
	dst.must("system", "check")
}

package images_test

// Two pulls (and two loads) of one image at once into one root both succeed
// and leave one complete image in a consistent store.

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

func TestConcurrentPullAndLoad(t *testing.T) {
	reg := testutil.StartRegistry(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	img := makeBigImage(t, reg, "conc/big", seed)

	for _, c := range []struct {
		name string
		args []string
	}{
		{"pull", []string{"pull", "-q", img.Ref}},
		{"load", []string{"load", "-q", "-i", img.Archive}},
	} {
		t.Run(c.name, func(t *testing.T) {
			// A few rounds, each in a fresh root: the race windows are narrow.
			for round := range 3 {
				e := newEnv(t)
				noLeftovers(t, e.dir)
				type result struct {
					out  string
					code int
				}
				// Both started back to back, then both waited for.
				start := time.Now()
				cmd0, out0 := startBerth(e, c.args...)
				cmd1, out1 := startBerth(e, c.args...)
				cmd0.Wait()
				d0 := time.Since(start)
				cmd1.Wait()
				d1 := time.Since(start)
				t.Logf("round %d: the two runs ended after %v and %v", round, d0.Round(time.Millisecond), d1.Round(time.Millisecond))
				res := []result{{out0.String(), cmd0.ProcessState.ExitCode()}, {out1.String(), cmd1.ProcessState.ExitCode()}}
				for i, r := range res {
					if r.code != 0 {
						t.Errorf("round %d: concurrent berth %v #%d: exit %d: %s", round, c.args, i, r.code, r.out)
					}
				}
				if t.Failed() {
					t.FailNow()
				}
				checkStore(e, "after two concurrent runs")
				checkComplete(e, "after two concurrent runs", img.ID, img.Layers, false)
				dirEmpty(t, filepath.Join(e.root, "image", "ingest"))
				dirEmpty(t, filepath.Join(e.root, "snapshots", "tmp"))
			}
		})
	}
}

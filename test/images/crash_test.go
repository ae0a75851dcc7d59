package images_test

// Kill -9 at random points of `berth pull` and `berth load`: after each kill
// the store must be consistent and show no half image, and a rerun must
// finish the job and leave no temp files.

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/testutil"
)

// crashSeed is BERTH_CRASH_SEED if set, else the time; the test logs it.
func crashSeed(t *testing.T) uint64 {
	if s := os.Getenv("BERTH_CRASH_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("BERTH_CRASH_SEED: %v", err)
		}
		return v
	}
	return uint64(time.Now().UnixNano())
}

// startBerth starts berth in e's root without waiting for it.
func startBerth(e *env, args ...string) (*exec.Cmd, *strings.Builder) {
	e.t.Helper()
	cmd := exec.Command(berthBin, append([]string{"--root", e.root}, args...)...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+filepath.Join(e.dir, "docker-config"))
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	return cmd, &out
}

func TestKill9PullAndLoad(t *testing.T) {
	reg := testutil.StartRegistry(t)
	seed := crashSeed(t)
	t.Logf("seed %d (rerun with BERTH_CRASH_SEED=%d)", seed, seed)
	img := makeBigImage(t, reg, "crash/big", seed)

	for _, c := range []struct {
		name string
		args []string
	}{
		{"pull", []string{"pull", "-q", img.Ref}},
		{"load", []string{"load", "-q", "-i", img.Archive}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, uint64(len(c.name))))
			// Calibrate: how long the whole command takes in a fresh root.
			cal := newEnv(t)
			noLeftovers(t, cal.dir)
			start := time.Now()
			cal.must(c.args...)
			full := time.Since(start)
			checkComplete(cal, "calibration", img.ID, img.Layers, false)
			t.Logf("%s takes %v; killing at random points of it", c.name, full.Round(time.Millisecond))

			const iterations = 6
			for i := range iterations {
				e := newEnv(t)
				noLeftovers(t, e.dir)
				// Delays spread over [0, 1.1*full): one per slice, random within it.
				delay := time.Duration((float64(i) + rng.Float64()) / iterations * 1.1 * float64(full))
				cmd, out := startBerth(e, c.args...)
				time.Sleep(delay)
				cmd.Process.Signal(syscall.SIGKILL)
				err := cmd.Wait()
				killed := false
				if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
					killed = true
				} else if err != nil {
					t.Fatalf("iteration %d: berth %v failed before the kill: %v\n%s", i, c.args, err, out)
				}
				when := "after kill at " + delay.Round(time.Millisecond).String()
				if !killed {
					when = "after a run that finished before the kill at " + delay.Round(time.Millisecond).String()
				}
				checkStore(e, when)
				checkComplete(e, when, img.ID, img.Layers, killed)
				t.Logf("iteration %d: %s: %d image(s), ok", i, when, len(imageIDs(e)))

				e.must(c.args...)
				checkStore(e, "after the rerun")
				checkComplete(e, "after the rerun", img.ID, img.Layers, false)
				dirEmpty(t, filepath.Join(e.root, "image", "ingest"))
				dirEmpty(t, filepath.Join(e.root, "snapshots", "tmp"))
				if t.Failed() {
					t.FailNow()
				}
			}
		})
	}
}

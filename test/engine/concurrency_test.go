package engine_test

// Many berth commands at once on one data root.

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// parallel runs n berth commands at once (args(i) for the i-th) and returns their results.
func (e *env) parallel(n int, args func(i int) []string) []result {
	e.t.Helper()
	res := make([]result, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i], errs[i] = e.try(nil, 3*time.Minute, args(i)...)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			e.t.Fatalf("berth %s: %v\n%s", strings.Join(args(i), " "), err, res[i])
		}
	}
	return res
}

func TestConcurrentRunAndRm(t *testing.T) {
	t.Parallel()
	e := newBusyboxEnv(t)
	res := e.parallel(50, func(int) []string { return []string{"run", "-d", "busybox", "sleep", "1000"} })
	var ids []string
	for i, r := range res {
		id := strings.TrimSpace(r.Out)
		if r.Code != 0 || !fullID.MatchString(id) {
			t.Errorf("run -d #%d: %s", i, r)
			continue
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	if d := len(slices.Compact(slices.Clone(ids))); d != len(ids) {
		t.Fatalf("%d distinct ids from %d runs", d, len(ids))
	}
	n := len(ids) // the successful runs (the others failed the test above)
	ps := strings.Fields(e.must("ps", "-a", "-q", "--no-trunc"))
	slices.Sort(ps)
	if !slices.Equal(ps, ids) {
		t.Errorf("ps -a -q --no-trunc shows %d containers, want exactly the %d started", len(ps), n)
	}
	names := lines(e.must("ps", "-a", "--format", "{{.Names}}"))
	slices.Sort(names)
	if len(names) != n || len(slices.Compact(names)) != n {
		t.Errorf("ps -a: %d names, %d distinct; want %d", len(names), len(slices.Compact(names)), n)
	}
	running := lines(e.must("ps", "--format", "{{.State}}"))
	if len(running) != n || slices.ContainsFunc(running, func(s string) bool { return s != "running" }) {
		t.Errorf("ps: %d running of %d: %v", len(running), n, running)
	}
	if m := monitorsOf(e.root); len(m) != 1 {
		t.Errorf("%d monitor processes for %d containers, want one hub: %v", len(m), n, m)
	}

	res = e.parallel(n, func(i int) []string { return []string{"rm", "-f", ids[i]} })
	for i, r := range res {
		if r.Code != 0 || r.Out != ids[i]+"\n" {
			t.Errorf("rm -f #%d: %s", i, r)
		}
	}
	if got := e.must("ps", "-a", "-q"); got != "" {
		t.Errorf("ps -a after 50 rm -f: %q", got)
	}
	e.checkClean("after 50 parallel rm -f")
}

// Names are unique under a race: one of many creates with the same name wins.
func TestConcurrentSameName(t *testing.T) {
	t.Parallel()
	e := newBusyboxEnv(t)
	const n = 12
	res := e.parallel(n, func(int) []string { return []string{"create", "--name", "contested", "busybox", "true"} })
	won := 0
	for _, r := range res {
		switch {
		case r.Code == 0:
			won++
		case strings.Contains(r.Err, "already in use"): // the exit code is TestBadInput's
		default:
			t.Errorf("create --name contested: %s\nwant success or \"already in use\"", r)
		}
	}
	if won != 1 {
		t.Errorf("%d creates with one name succeeded, want 1", won)
	}
	if got := lines(e.must("ps", "-a", "--format", "{{.Names}}")); !slices.Equal(got, []string{"contested"}) {
		t.Errorf("ps -a: %v", got)
	}
	ents, _ := os.ReadDir(filepath.Join(e.root, "containers"))
	if len(ents) != 2 { // names/ and the one container
		var ns []string
		for _, d := range ents {
			ns = append(ns, d.Name())
		}
		t.Errorf("containers/ holds %v: the losers left something", ns)
	}
	// Concurrent operations on one container keep its state whole.
	e.must("start", "contested")
	res = e.parallel(8, func(i int) []string {
		if i%2 == 0 {
			return []string{"inspect", "contested"}
		}
		return []string{"start", "contested"}
	})
	for _, r := range res {
		if r.Code != 0 {
			t.Errorf("concurrent start/inspect: %s", r)
		}
	}
	e.waitExited("contested", 20*time.Second)
	if d := e.inspect("contested"); d.State.Status != "exited" || d.State.ExitCode != 0 {
		t.Errorf("after concurrent starts: %s %d", d.State.Status, d.State.ExitCode)
	}
}

// Command runbench times `RUNTIME --root ROOT run --bundle BUNDLE ID` for several OCI runtimes
// on one bundle, interleaved round-robin so that machine noise hits every runtime alike.
//
// It is driven by bench/runtime.sh, which prepares the bundle and the environment:
//
//	runbench -bundle DIR -state DIR -runs 30 -warmup 3 -rss-runs 10 \
//	    -rt berth=bin/berth-runtime -rt runc=runc -rt crun=crun
//
// Pass 1 (timing): warm-up rounds, then -runs rounds; each round runs every runtime once, in
// the order given (berth, runc, crun, berth, runc, crun, ...). A run is the
// wall clock (time.Now, monotonic) from fork to wait of the whole command, with a unique
// container id. Every run must exit 0 and leave no state behind: the state root is checked
// after each run and at the end, and no cgroup directory named after a bench id may remain.
//
// Pass 2 (memory): -rss-runs more interleaved rounds under GNU time (`/usr/bin/time -f %M`):
// the peak RSS in KiB of the runtime process (ru_maxrss from wait4, which also covers the
// descendants it reaped). The same figure from Go's own wait4 in pass 1 is printed as a
// cross-check.
//
// The output is Markdown, ready to paste into bench/RESULTS.md.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type runtimeFlag []string

func (r *runtimeFlag) String() string     { return strings.Join(*r, ",") }
func (r *runtimeFlag) Set(v string) error { *r = append(*r, v); return nil }

type target struct {
	name, bin, root string
	times           []time.Duration // pass 1, measured runs only
	wait4RSS        []int64         // KiB, pass 1
	timeRSS         []int64         // KiB, pass 2 (GNU time %M)
}

var (
	bundle   = flag.String("bundle", "", "OCI bundle directory (shared by all runtimes)")
	stateDir = flag.String("state", "", "directory under which each runtime gets its own --root")
	runs     = flag.Int("runs", 30, "measured runs per runtime")
	warmup   = flag.Int("warmup", 3, "warm-up runs per runtime (not counted)")
	rssRuns  = flag.Int("rss-runs", 10, "runs per runtime under GNU time for peak RSS (0: skip)")
	timeBin  = flag.String("time", "/usr/bin/time", "GNU time binary for the RSS pass")
	rts      runtimeFlag
)

func main() {
	flag.Var(&rts, "rt", "NAME=BINARY, repeatable; the first one is compared with the others")
	flag.Parse()
	if *bundle == "" || *stateDir == "" || len(rts) == 0 || *runs < 1 {
		flag.Usage()
		os.Exit(2)
	}
	var list []*target
	for _, s := range rts {
		name, bin, ok := strings.Cut(s, "=")
		if !ok {
			fatalf("-rt %q: want NAME=BINARY", s)
		}
		root := filepath.Join(*stateDir, name)
		if err := os.MkdirAll(root, 0o700); err != nil {
			fatalf("%v", err)
		}
		list = append(list, &target{name: name, bin: bin, root: root})
	}
	tag := fmt.Sprintf("bench%d", os.Getpid())

	// Pass 1: timing.
	fmt.Fprintf(os.Stderr, "runbench: %d warm-up + %d measured rounds of %d runtimes\n", *warmup, *runs, len(list))
	for round := 0; round < *warmup+*runs; round++ {
		for _, rt := range list {
			id := fmt.Sprintf("%s-%s-%d", tag, rt.name, round)
			d, rss := runOnce(rt, id, nil)
			if round >= *warmup {
				rt.times = append(rt.times, d)
				rt.wait4RSS = append(rt.wait4RSS, rss)
			}
		}
	}

	// Pass 2: peak RSS under GNU time.
	if *rssRuns > 0 {
		if _, err := os.Stat(*timeBin); err != nil {
			fmt.Fprintf(os.Stderr, "runbench: %s missing, RSS from Go's wait4 only\n", *timeBin)
			*rssRuns = 0
		}
	}
	for round := 0; round < *rssRuns; round++ {
		for _, rt := range list {
			id := fmt.Sprintf("%s-%s-rss%d", tag, rt.name, round)
			runOnce(rt, id, func(out []byte) {
				// GNU time appends its line last on stderr.
				lines := strings.Split(strings.TrimSpace(string(out)), "\n")
				kb, err := strconv.ParseInt(strings.TrimSpace(lines[len(lines)-1]), 10, 64)
				if err != nil {
					fatalf("%s: cannot read RSS from %q", rt.name, out)
				}
				rt.timeRSS = append(rt.timeRSS, kb)
			})
		}
	}

	// Nothing may be left behind.
	for _, rt := range list {
		if ents, _ := os.ReadDir(rt.root); len(ents) > 0 {
			fatalf("%s: state root %s not empty at the end: %v", rt.name, rt.root, names(ents))
		}
	}
	var leaks []string
	for _, pat := range []string{"/sys/fs/cgroup/*" + tag + "*", "/sys/fs/cgroup/*/*" + tag + "*", "/sys/fs/cgroup/*/*/*" + tag + "*", "/sys/fs/cgroup/*/*/*/*" + tag + "*"} {
		m, _ := filepath.Glob(pat)
		leaks = append(leaks, m...)
	}
	if len(leaks) > 0 {
		fatalf("cgroups left behind: %v", leaks)
	}

	report(list)
}

// runOnce runs one container and checks it really ran and was deleted. With rssOut set the
// command runs under GNU time and rssOut gets its stderr.
func runOnce(rt *target, id string, rssOut func([]byte)) (time.Duration, int64) {
	args := []string{rt.bin, "--root", rt.root, "run", "--bundle", *bundle, id}
	if rssOut != nil {
		args = append([]string{*timeBin, "-f", "%M"}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr // stdin: /dev/null
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		fatalf("%s run %s: %v\n--- stdout\n%s--- stderr\n%s", rt.name, id, err, stdout.Bytes(), stderr.Bytes())
	}
	if _, err := os.Lstat(filepath.Join(rt.root, id)); !os.IsNotExist(err) {
		fatalf("%s: container %s still in %s after run (err=%v)", rt.name, id, rt.root, err)
	}
	if rssOut != nil {
		rssOut(stderr.Bytes())
	}
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss // KiB on Linux
	}
	return d, rss
}

func report(list []*target) {
	fmt.Printf("| runtime | runs | median | p90 | min | max | peak RSS, GNU time %%M (median KiB) | peak RSS, wait4 in timing pass (median KiB) |\n")
	fmt.Printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, rt := range list {
		s := slices.Clone(rt.times)
		slices.Sort(s)
		timeRSS := "n/a"
		if len(rt.timeRSS) > 0 {
			timeRSS = strconv.FormatInt(medianInt(rt.timeRSS), 10)
		}
		fmt.Printf("| %s | %d | %s | %s | %s | %s | %s | %d |\n", rt.name, len(s),
			ms(median(s)), ms(percentile(s, 0.90)), ms(s[0]), ms(s[len(s)-1]), timeRSS, medianInt(rt.wait4RSS))
	}
	fmt.Println()
	base := list[0]
	fmt.Printf("| ratio | of medians | median of per-round ratios | %s faster in |\n", base.name)
	fmt.Printf("| --- | ---: | ---: | ---: |\n")
	bm := median(sorted(base.times))
	for _, peer := range list[1:] {
		pm := median(sorted(peer.times))
		var per []float64
		wins := 0
		for i := range base.times {
			per = append(per, float64(base.times[i])/float64(peer.times[i]))
			if base.times[i] < peer.times[i] {
				wins++
			}
		}
		slices.Sort(per)
		fmt.Printf("| %s/%s | %.2f | %.2f | %d/%d rounds |\n", base.name, peer.name,
			float64(bm)/float64(pm), medianFloat(per), wins, len(per))
	}
}

func sorted(d []time.Duration) []time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s
}

// median of a sorted slice.
func median(s []time.Duration) time.Duration {
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// percentile of a sorted slice, nearest rank.
func percentile(s []time.Duration, p float64) time.Duration {
	i := int(float64(len(s))*p+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

func medianInt(v []int64) int64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func medianFloat(s []float64) float64 {
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Nanoseconds())/1e6) }

func names(ents []os.DirEntry) []string {
	var n []string
	for _, e := range ents {
		n = append(n, e.Name())
	}
	return n
}

func fatalf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "runbench: "+format+"\n", a...)
	os.Exit(1)
}

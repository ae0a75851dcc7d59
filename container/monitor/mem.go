package monitor

import (
	"bytes"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"syscall"
)

// What keeps the monitor small (measured with /proc/PID/smaps_rollup, see the report in
// cmd/berth-monitor): one P from the start (GOMAXPROCS=1 in the environment: set later, the
// runtime has already built a second P and its thread), a heap collected early rather than
// grown, start-up garbage returned to the kernel, and the executable's read-only data
// (pclntab, type data: most of the file) dropped from the resident set once started.

// tunedEnv marks the monitor's own re-exec with GOMAXPROCS=1, which its children must not
// inherit.
const tunedEnv = "_BERTH_MONITOR_TUNED=1"

// tune re-executes the monitor with GOMAXPROCS=1 unless the environment already sets it
// (the CLI can, and so save the exec), then keeps the garbage collector tight.
func tune(args []string) {
	if os.Getenv("GOMAXPROCS") == "" {
		env := append(os.Environ(), "GOMAXPROCS=1", tunedEnv)
		syscall.Exec("/proc/self/exe", args, env) // on failure, go on as we are
	}
	runtime.MemProfileRate = 0 // no profiling buckets (a 1.4 MB table, touched at each GC)
	runtime.GOMAXPROCS(1)
	debug.SetGCPercent(25)
}

// childEnv is the environment of the monitor's children: its own, without what tune added.
func childEnv() []string {
	env := os.Environ()
	tuned := false
	for _, e := range env {
		if e == tunedEnv {
			tuned = true
		}
	}
	if !tuned {
		return env
	}
	out := env[:0:0]
	for _, e := range env {
		if e != tunedEnv && e != "GOMAXPROCS=1" {
			out = append(out, e)
		}
	}
	return out
}

// settle gives back what start-up used: the garbage to the kernel, then the pages of the
// executable's read-only, never-written data (they come back from the page cache if
// touched again; a collection touches some, hence the order).
func settle() {
	debug.FreeOSMemory()
	dropReadOnlyData()
	settleOnce.Do(func() { afterEachGC(dropReadOnlyData) }) // a hub settles once per container
}

var settleOnce sync.Once

// afterEachGC runs f (in the finalizer goroutine) after every garbage collection: a
// collection walks the read-only data (pclntab) again, the runtime forces one every two
// minutes even when the monitor is idle.
func afterEachGC(f func()) {
	s := new(gcSentinel)
	s.f = f
	runtime.SetFinalizer(s, func(s *gcSentinel) {
		s.f()
		afterEachGC(s.f)
	})
}

type gcSentinel struct {
	f func()
	_ [16]byte // not a tiny allocation: those are batched and finalized late
}

// dropReadOnlyData madvise(MADV_DONTNEED)s the executable's read-only non-executable
// mappings that hold no private (anonymous) page: for those the call only unmaps page-cache
// pages. A mapping with anonymous pages (a relocated PIE's RELRO) is left alone. The text
// is left alone too: the runtime touches most of it again at once. It runs after every
// collection, so it allocates nothing (smapsBuf is static).
func dropReadOnlyData() {
	smapsMu.Lock()
	defer smapsMu.Unlock()
	n, err := syscall.Readlink("/proc/self/exe", exeBuf[:])
	if err != nil || n <= 0 || n == len(exeBuf) {
		return
	}
	exe := exeBuf[:n]
	fd, err := syscall.Open("/proc/self/smaps", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return
	}
	defer syscall.Close(fd)
	var lo, hi uint64
	candidate := false
	flush := func() {
		if candidate {
			syscall.Syscall(syscall.SYS_MADVISE, uintptr(lo), uintptr(hi-lo), syscall.MADV_DONTNEED)
		}
		candidate = false
	}
	line := func(l []byte) {
		if l0, h0, perms, path, ok := mapsHeader(l); ok {
			flush()
			lo, hi = l0, h0
			candidate = string(perms) == "r--p" && bytes.Equal(path, exe)
			return
		}
		// "Anonymous:      0 kB"
		if candidate && bytes.HasPrefix(l, []byte("Anonymous:")) && !bytes.HasPrefix(bytes.TrimLeft(l[len("Anonymous:"):], " "), []byte("0 ")) {
			candidate = false
		}
	}
	buf := smapsBuf[:]
	have := 0
	for {
		n, err := syscall.Read(fd, buf[have:])
		if n <= 0 || err != nil {
			break
		}
		have += n
		start := 0
		for i := 0; i < have; i++ {
			if buf[i] == '\n' {
				line(buf[start:i])
				start = i + 1
			}
		}
		have = copy(buf, buf[start:have])
		if have == len(buf) {
			return // a line longer than the buffer: give up
		}
	}
	flush()
}

var (
	smapsMu  sync.Mutex
	smapsBuf [4096]byte
	exeBuf   [512]byte
)

// mapsHeader parses "lo-hi perms offset dev inode   path" (a line of maps, or the first of
// a mapping in smaps); field lines ("Rss:   4 kB") are not headers.
func mapsHeader(l []byte) (lo, hi uint64, perms, path []byte, ok bool) {
	var f [6][]byte
	n := 0
	for i := 0; i < len(l) && n < 6; {
		for i < len(l) && l[i] == ' ' {
			i++
		}
		if i == len(l) {
			break
		}
		j := i
		if n == 5 {
			j = len(l) // the path, spaces and all
		} else {
			for j < len(l) && l[j] != ' ' {
				j++
			}
		}
		f[n] = l[i:j]
		n++
		i = j
	}
	if n < 5 {
		return 0, 0, nil, nil, false
	}
	dash := bytes.IndexByte(f[0], '-')
	if dash <= 0 {
		return 0, 0, nil, nil, false
	}
	lo, ok1 := parseHex(f[0][:dash])
	hi, ok2 := parseHex(f[0][dash+1:])
	if !ok1 || !ok2 || len(f[1]) != 4 {
		return 0, 0, nil, nil, false
	}
	return lo, hi, f[1], f[5], true
}

func parseHex(b []byte) (uint64, bool) {
	var n uint64
	if len(b) == 0 || len(b) > 16 {
		return 0, false
	}
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			n = n<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			n = n<<4 | uint64(c-'a'+10)
		default:
			return 0, false
		}
	}
	return n, true
}

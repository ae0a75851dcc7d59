package container

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Sample is one reading of a container's resource use (docker stats' inputs).
type Sample struct {
	Time      time.Time
	CPU       uint64 // container CPU time, ns
	System    uint64 // host CPU time, ns (all cpus)
	OnlineCPU int
	Mem       uint64 // usage minus inactive file cache, as docker shows it
	MemLimit  uint64
	BlkRead   uint64
	BlkWrite  uint64
	NetRx     uint64
	NetTx     uint64
	Pids      uint64
}

// Stats reads the container's counters now.
func (m *Manager) Stats(rec *Record) (Sample, error) {
	s := Sample{Time: time.Now()}
	st := m.Status(rec)
	if !st.Running() {
		return s, fmt.Errorf("container %s: %w", rec.Name, ErrNotRunning)
	}
	cs, _, err := m.rt.Stats(rec.ID)
	if err != nil {
		return s, err
	}
	s.CPU = cs.CpuStats.CpuUsage.TotalUsage
	s.System, s.OnlineCPU = systemCPU()
	mem := cs.MemoryStats
	s.Mem = mem.Usage.Usage
	for _, k := range []string{"total_inactive_file", "inactive_file"} {
		if v, ok := mem.Stats[k]; ok && v < s.Mem {
			s.Mem -= v
			break
		}
	}
	s.MemLimit = mem.Usage.Limit
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		total := uint64(si.Totalram) * uint64(si.Unit)
		if s.MemLimit == 0 || s.MemLimit > total {
			s.MemLimit = total
		}
	}
	for _, e := range cs.BlkioStats.IoServiceBytesRecursive {
		switch strings.ToLower(e.Op) {
		case "read":
			s.BlkRead += e.Value
		case "write":
			s.BlkWrite += e.Value
		}
	}
	s.Pids = cs.PidsStats.Current
	s.NetRx, s.NetTx = netDev(st.Pid)
	return s, nil
}

// systemCPU is the host's total CPU time in ns from /proc/stat and the online CPU count.
func systemCPU() (uint64, int) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var total uint64
	cpus := 0
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "cpu ") {
			for _, v := range strings.Fields(l)[1:8] {
				n, _ := strconv.ParseUint(v, 10, 64)
				total += n
			}
		} else if strings.HasPrefix(l, "cpu") {
			cpus++
		}
	}
	// USER_HZ is 100 on Linux.
	return total * (1e9 / 100), max(cpus, 1)
}

// netDev sums the interfaces (except lo) of the process's network namespace.
func netDev(pid int) (rx, tx uint64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		return
	}
	for _, l := range strings.Split(string(b), "\n") {
		name, rest, ok := strings.Cut(l, ":")
		if !ok || strings.TrimSpace(name) == "lo" {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 9 {
			continue
		}
		r, _ := strconv.ParseUint(f[0], 10, 64)
		t, _ := strconv.ParseUint(f[8], 10, 64)
		rx += r
		tx += t
	}
	return
}

// CPUPercent is docker's CPU % between two samples.
func CPUPercent(prev, cur Sample) float64 {
	dc := float64(cur.CPU) - float64(prev.CPU)
	ds := float64(cur.System) - float64(prev.System)
	if dc <= 0 || ds <= 0 {
		return 0
	}
	return dc / ds * float64(cur.OnlineCPU) * 100
}

// Pids lists the host pids of the container's processes (for `top`).
func (m *Manager) Pids(rec *Record) ([]int, error) {
	if st := m.Status(rec); !st.Running() {
		return nil, fmt.Errorf("container %s: %w", rec.Name, ErrNotRunning)
	}
	return m.rt.Pids(rec.ID)
}

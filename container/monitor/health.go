package monitor

import (
	"bytes"
	"os"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"
)

// Docker's health check defaults and limits.
const (
	healthInterval  = 30 * time.Second
	healthTimeout   = 30 * time.Second
	healthRetries   = 3
	healthLogMax    = 5
	healthOutputMax = 4096
)

// healthLoop runs the health check every interval until stop is closed.
func (m *supervisor) healthLoop(stop <-chan struct{}, started time.Time, pid int) {
	h := m.cfg.Health
	interval, timeout, retries := h.Interval, h.Timeout, h.Retries
	if interval <= 0 {
		interval = healthInterval
	}
	if timeout <= 0 {
		timeout = healthTimeout
	}
	if retries <= 0 {
		retries = healthRetries
	}
	spec := m.path("health-process.json")
	if err := m.writeProbeSpec(spec); err != nil {
		// No probe can run: report it as docker does an exec that fails.
		m.recordProbe(HealthProbe{Start: time.Now().UTC(), End: time.Now().UTC(), ExitCode: -1, Output: err.Error()}, started, h.StartPeriod, retries)
	}
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		p, ok := m.probe(stop, spec, timeout)
		if !ok {
			return
		}
		if p.ExitCode != 0 && !running(pid) {
			return // it failed because the container is exiting: no verdict
		}
		m.recordProbe(p, started, h.StartPeriod, retries)
		// A probe (fork, exec, pipes, state) leaves garbage that a collection would only
		// reach after many probes: give it back now, the monitor then idles until the next.
		debug.FreeOSMemory()
		t.Reset(interval)
	}
}

// writeProbeSpec writes the OCI process of the probe: the container's, running Test.
func (m *supervisor) writeProbeSpec(path string) error {
	b, err := os.ReadFile(m.cfg.Bundle + "/config.json")
	if err != nil {
		return err
	}
	proc, err := probeProcess(b, m.cfg.Health.Test)
	if err != nil {
		return err
	}
	return os.WriteFile(path, proc, 0o600)
}

// probe runs the check once with `<Runtime> exec`; false when stop came first.
func (m *supervisor) probe(stop <-chan struct{}, spec string, timeout time.Duration) (HealthProbe, bool) {
	start := time.Now()
	res := HealthProbe{Start: start.UTC()}
	r, w, err := pipe(0)
	if err != nil {
		res.End, res.ExitCode, res.Output = time.Now().UTC(), -1, err.Error()
		return res, true
	}
	defer r.Close()
	pidFile := m.path("health.pid")
	os.Remove(pidFile)
	a := []string{m.cfg.Runtime}
	if m.cfg.RuntimeRoot != "" {
		a = append(a, "--root", m.cfg.RuntimeRoot)
	}
	a = append(a, "exec", "--process", spec, "--pid-file", pidFile, m.cfg.ID)
	p, err := m.r.spawn(a, []int{m.null, w, w}, false)
	syscall.Close(w)
	if err != nil {
		res.End, res.ExitCode, res.Output = time.Now().UTC(), -1, err.Error()
		return res, true
	}
	out := make(chan []byte, 1)
	go func() {
		var b []byte
		buf := make([]byte, 1024)
		for {
			n, err := r.Read(buf)
			if room := healthOutputMax - len(b); n > 0 && room > 0 {
				b = append(b, buf[:min(n, room)]...)
			}
			if err != nil {
				out <- b
				return
			}
		}
	}()
	deadline := start.Add(timeout)
	stopped, timedOut := false, false
	var ws syscall.WaitStatus
	for {
		next := time.Now().Add(200 * time.Millisecond)
		if next.After(deadline) {
			next = deadline
		}
		ws, err = m.r.wait(p, next, 0)
		if err == nil {
			break
		}
		select {
		case <-stop:
			stopped = true
		default:
			timedOut = !time.Now().Before(deadline)
		}
		if stopped || timedOut {
			// Kill the probe in the container, then the runtime that waits for it.
			if pid := readPid(pidFile); pid > 0 {
				syscall.Kill(pid, syscall.SIGKILL)
			}
			ws, err = m.r.wait(p, time.Now().Add(time.Second), 0)
			if err != nil {
				syscall.Kill(p.pid, syscall.SIGKILL)
				m.r.wait(p, time.Now().Add(5*time.Second), 0)
			}
			break
		}
	}
	r.SetReadDeadline(time.Now().Add(time.Second)) // a probe's daemon may keep the pipe
	output := <-out
	if stopped {
		return res, false
	}
	res.End = time.Now().UTC()
	if timedOut {
		res.ExitCode = -1
		res.Output = "Health check exceeded timeout (" + timeout.String() + ")"
		return res, true
	}
	res.ExitCode = exitCode(ws)
	res.Output = string(output)
	return res, true
}

// running reports whether pid is alive and not a zombie.
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] != 'Z' && b[i+2] != 'X'
}

// recordProbe applies docker's rules: success makes the container healthy; a failure
// counts (unless the container is still starting within its start period) and Retries
// failures in a row make it unhealthy. The status change is an event.
func (m *supervisor) recordProbe(p HealthProbe, started time.Time, startPeriod time.Duration, retries int) {
	m.stateMu.Lock()
	h := m.st.Health
	if h == nil {
		m.stateMu.Unlock()
		return
	}
	old := h.Status
	switch {
	case p.ExitCode == 0:
		h.FailingStreak = 0
		h.Status = "healthy"
	case h.Status == "starting" && time.Since(started) < startPeriod:
		// a failure during the start period does not count
	default:
		h.FailingStreak++
		if h.FailingStreak >= retries {
			h.Status = "unhealthy"
		}
	}
	h.Log = append(h.Log, p)
	if len(h.Log) > healthLogMax {
		h.Log = append(h.Log[:0], h.Log[len(h.Log)-healthLogMax:]...)
	}
	if h.Status != old {
		m.event("health_status: "+h.Status, nil) // before the state that shows it
	}
	m.writeStateLocked()
	m.stateMu.Unlock()
}

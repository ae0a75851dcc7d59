package container

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-dev/berth/container/monitor"
	"github.com/berth-dev/berth/runtime/state"
	"golang.org/x/sys/unix"
)

// Status is a container's state as the user sees it: state.json (written by the monitor)
// checked against the kernel, so a killed monitor or a reboot never leaves a stale "running".
type Status struct {
	monitor.State
	Status       string // created | running | paused | restarting | exited
	MonitorAlive bool
}

// Running reports whether the container has a live process (running or paused).
func (s *Status) Running() bool { return s.Status == "running" || s.Status == "paused" }

func (m *Manager) readState(id string) (monitor.State, bool) {
	var st monitor.State
	b, err := os.ReadFile(filepath.Join(m.dir(id), "state.json"))
	if err != nil {
		return st, false
	}
	if json.Unmarshal(b, &st) != nil {
		return st, false
	}
	return st, true
}

func (m *Manager) writeState(id string, st monitor.State) error {
	return writeFileAtomic(filepath.Join(m.dir(id), "state.json"), st)
}

func alive(pid int, start uint64) bool {
	return pid > 0 && start != 0 && state.StartTime(pid) == start
}

// monitorAlive says whether the container's supervisor still runs: it holds an flock on
// State.MonitorLock for its life (a hub's pid outlives the containers it serves); states
// without one name a monitor process by pid.
func monitorAlive(st monitor.State) bool {
	if st.MonitorLock == "" {
		return alive(st.MonitorPid, st.MonitorStart)
	}
	fd, err := unix.Open(st.MonitorLock, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	if err := unix.Flock(fd, unix.LOCK_SH|unix.LOCK_NB); err != nil {
		return errors.Is(err, unix.EWOULDBLOCK) && alive(st.MonitorPid, st.MonitorStart)
	}
	return false
}

// Status derives the container's status.
func (m *Manager) Status(rec *Record) Status {
	st, ok := m.readState(rec.ID)
	s := Status{State: st}
	if !ok {
		s.Status = "created"
		return s
	}
	s.MonitorAlive = monitorAlive(st)
	switch st.Status {
	case "running":
		if alive(st.Pid, st.PidStart) {
			s.Status = "running"
			if c, err := m.rt.Load(rec.ID); err == nil && c.Status == "paused" {
				s.Status = "paused"
			}
			return s
		}
		if s.MonitorAlive {
			// Exited a moment ago; the monitor is recording it.
			s.Status = "running"
			return s
		}
		// Neither the process nor its monitor: killed, or the host rebooted.
		s.Status = "exited"
		if s.FinishedAt.IsZero() {
			s.ExitCode = 255
			s.FinishedAt = s.StartedAt
		}
	case "restarting":
		if s.MonitorAlive {
			s.Status = "restarting"
		} else {
			s.Status = "exited"
		}
	case "created":
		s.Status = "created"
	default:
		s.Status = "exited"
	}
	return s
}

// waitMonitorGone waits until the container's monitor has exited (its clean-up included).
func (m *Manager) waitMonitorGone(id string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		st, ok := m.readState(id)
		if !ok || !monitorAlive(st) {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("timed out waiting for the container's monitor to exit")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/moby/sys/signal"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/container/monitor"
	"github.com/berth-dev/berth/snapshot"
)

// markStopped tells the monitor that the user stopped the container: no restart.
func (m *Manager) markStopped(id string) {
	if f, err := os.Create(filepath.Join(m.dir(id), "stopped")); err == nil {
		f.Close()
	}
}

// StopSignal is the container's stop signal (--stop-signal, the image's STOPSIGNAL, SIGTERM).
func StopSignal(rec *Record) unix.Signal {
	if s := rec.Config.StopSignal; s != "" {
		if sig, err := signal.ParseSignal(s); err == nil {
			return unix.Signal(sig)
		}
	}
	return unix.SIGTERM
}

// Kill sends sig to the container's main process.
func (m *Manager) Kill(rec *Record, sig unix.Signal) error {
	st := m.Status(rec)
	if !st.Running() {
		return fmt.Errorf("cannot kill container %s: %w", rec.Name, ErrNotRunning)
	}
	if sig == unix.SIGKILL || sig == StopSignal(rec) {
		m.markStopped(rec.ID)
	}
	if err := m.rt.Kill(rec.ID, sig, false); err != nil {
		return fmt.Errorf("cannot kill container %s: %w", rec.Name, err)
	}
	if st.Status == "paused" && sig == unix.SIGKILL {
		m.rt.Resume(rec.ID)
	}
	return nil
}

// Stop sends the stop signal, then SIGKILL after timeout, and returns once the container has
// exited and its monitor has finished (clean-up included). Stopping a stopped container is
// not an error, as in docker.
func (m *Manager) Stop(rec *Record, timeout time.Duration) error {
	st := m.Status(rec)
	if st.Status == "restarting" {
		m.markStopped(rec.ID)
		m.rt.Kill(rec.ID, unix.SIGKILL, true)
		return m.waitMonitorGone(rec.ID, 30*time.Second)
	}
	if !st.Running() {
		return nil
	}
	m.markStopped(rec.ID)
	exited := make(chan struct{})
	if a, err := m.Attach(rec.ID, monitor.Hello{}); err == nil {
		go func() {
			a.Stream(nil, nil)
			a.Close()
			close(exited)
		}()
	} else {
		close(exited)
	}
	if err := m.rt.Kill(rec.ID, StopSignal(rec), false); err == nil {
		if st.Status == "paused" {
			m.rt.Resume(rec.ID)
		}
		select {
		case <-exited:
		case <-time.After(timeout):
		}
	}
	select {
	case <-exited:
	default:
		m.rt.Kill(rec.ID, unix.SIGKILL, true)
		m.rt.Resume(rec.ID)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			return fmt.Errorf("container %s did not exit after SIGKILL", rec.Name)
		}
	}
	return m.waitMonitorGone(rec.ID, 30*time.Second)
}

// StopTimeout is --stop-timeout, or docker's 10 s.
func StopTimeout(rec *Record) time.Duration {
	if t := rec.Config.StopTimeout; t != nil {
		return time.Duration(*t) * time.Second
	}
	return 10 * time.Second
}

// Wait blocks until the container is not running and returns its exit status.
func (m *Manager) Wait(rec *Record) (monitor.ExitMsg, error) {
	if a, err := m.Attach(rec.ID, monitor.Hello{}); err == nil {
		e, err := a.Stream(nil, nil)
		a.Close()
		if err == nil {
			return e, nil
		}
	}
	st := m.Status(rec)
	return monitor.ExitMsg{ExitCode: st.ExitCode, OOMKilled: st.OOMKilled}, nil
}

// Cleanup releases what a run held once the container has exited for good: the runtime's
// record, the rootfs mount; and removes the container when it was run with --rm. The
// monitor runs it as its exit command (monitorID then names its supervisor, and a clean-up
// that a newer run has overtaken does nothing); a foreground `run` calls it directly.
func (m *Manager) Cleanup(ctx context.Context, rec *Record, monitorID string) error {
	unlock, err := m.lock(rec.ID)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	}
	st, _ := m.readState(rec.ID)
	if monitorID != "" && st.MonitorID != monitorID && strconv.Itoa(st.MonitorPid) != monitorID {
		unlock()
		return nil
	}
	if st.Status == "running" && alive(st.Pid, st.PidStart) {
		unlock()
		return fmt.Errorf("%w: %s", ErrRunning, rec.Name)
	}
	m.rt.Delete(rec.ID, true)
	if err := m.releaseNetwork(rec); err != nil {
		unlock()
		return err
	}
	if err := m.unmountRootfs(rec.ID); err != nil {
		unlock()
		return err
	}
	if f, err := os.Create(filepath.Join(m.dir(rec.ID), "cleaned")); err == nil {
		f.Close()
	}
	unlock()
	if rec.HostConfig.AutoRemove && st.Status != "restarting" {
		return m.remove(ctx, rec, true)
	}
	return nil
}

// Remove deletes a container: `rm [-f] [-v]`.
func (m *Manager) Remove(ctx context.Context, rec *Record, force, volumes bool) error {
	st := m.Status(rec)
	if st.Running() || st.Status == "restarting" {
		if !force {
			return fmt.Errorf("cannot remove container \"/%s\": %w: stop the container before removing or force remove", rec.Name, ErrRunning)
		}
		m.markStopped(rec.ID)
		m.rt.Kill(rec.ID, unix.SIGKILL, true)
		m.rt.Resume(rec.ID)
	}
	if err := m.waitMonitorGone(rec.ID, 30*time.Second); err != nil {
		return err
	}
	return m.remove(ctx, rec, volumes)
}

func (m *Manager) remove(ctx context.Context, rec *Record, volumes bool) error {
	unlock, err := m.lock(rec.ID)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	}
	defer unlock()
	if _, err := os.Stat(filepath.Join(m.dir(rec.ID), "config.json")); err != nil {
		return nil // removed by someone else while we waited
	}
	if err := m.rt.Delete(rec.ID, true); err != nil && !os.IsNotExist(errors.Unwrap(err)) {
		if _, serr := os.Stat(m.ociStateDir(rec.ID)); serr == nil {
			return fmt.Errorf("remove container %s: %w", rec.Name, err)
		}
	}
	if err := m.releaseNetwork(rec); err != nil {
		return fmt.Errorf("remove container %s: %w", rec.Name, err)
	}
	if err := m.unmountRootfs(rec.ID); err != nil {
		return err
	}
	if err := m.Snapshots.RemoveActive(ctx, rec.ID); err != nil && !isNotFound(err) {
		return fmt.Errorf("remove container %s: %w", rec.Name, err)
	}
	m.releaseVolumes(rec, volumes)
	// The record goes first (a crash after it leaves only a directory without config.json,
	// which listings skip and the next removal of that id tolerates), then the directory.
	trash := filepath.Join(m.ctrRoot, ".trash-"+rec.ID+"-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	if err := os.Rename(m.dir(rec.ID), trash); err != nil {
		return fmt.Errorf("remove container %s: %w", rec.Name, err)
	}
	m.releaseName(rec.Name, rec.ID)
	m.event(rec, "destroy", nil)
	return os.RemoveAll(trash)
}

// Pause freezes the container's processes.
func (m *Manager) Pause(rec *Record) error {
	st := m.Status(rec)
	switch st.Status {
	case "paused":
		return fmt.Errorf("container %s is already paused", rec.Name)
	case "running":
	default:
		return fmt.Errorf("container %s: %w", rec.Name, ErrNotRunning)
	}
	if err := m.rt.Pause(rec.ID); err != nil {
		return err
	}
	m.event(rec, "pause", nil)
	return nil
}

// Unpause thaws the container's processes.
func (m *Manager) Unpause(rec *Record) error {
	if st := m.Status(rec); st.Status != "paused" {
		return fmt.Errorf("container %s is not paused", rec.Name)
	}
	if err := m.rt.Resume(rec.ID); err != nil {
		return err
	}
	m.event(rec, "unpause", nil)
	return nil
}

// Rename gives the container a new name.
func (m *Manager) Rename(rec *Record, name string) error {
	unlock, err := m.lock(rec.ID)
	if err != nil {
		return err
	}
	defer unlock()
	old := rec.Name
	if name == old {
		return fmt.Errorf("renaming a container with the same name as its current name")
	}
	if err := m.reserveName(name, rec.ID); err != nil {
		return err
	}
	rec.Name = name
	if err := m.writeRecord(rec); err != nil {
		m.releaseName(name, rec.ID)
		return err
	}
	m.releaseName(old, rec.ID)
	m.event(rec, "rename", map[string]string{"oldName": "/" + old})
	return nil
}

func isNotFound(err error) bool {
	return err != nil && (errors.Is(err, os.ErrNotExist) || errors.Is(err, snapshot.ErrNotFound))
}

// WantsRestore reports whether `system restore` should start the container: it is not
// running, and its policy is always, or unless-stopped without a user stop. Leftovers of
// the previous boot (a runtime record, a mount) are cleaned first by Prepare's path.
func (m *Manager) WantsRestore(rec *Record) bool {
	st := m.Status(rec)
	if st.Running() || st.MonitorAlive {
		return false
	}
	switch rec.HostConfig.RestartPolicy.Name {
	case "always":
		return true
	case "unless-stopped":
		_, err := os.Stat(filepath.Join(m.dir(rec.ID), "stopped"))
		return err != nil
	}
	return false
}

package container

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/berth-dev/berth/container/monitor"
)

// event appends one line to events.log. A single O_APPEND write of a line is atomic with
// respect to the other writers (CLIs and monitors).
func (m *Manager) event(rec *Record, action string, attrs map[string]string) {
	a := map[string]string{"name": rec.Name, "image": rec.Config.Image}
	for k, v := range attrs {
		a[k] = v
	}
	ev := monitor.Event{Time: time.Now().UnixNano(), Type: "container", Action: action, ID: rec.ID, Attributes: a}
	b, err := json.Marshal(ev)
	if err != nil {
		return
	}
	f, err := os.OpenFile(m.EventsLog(), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return
	}
	f.Write(append(b, '\n'))
	f.Close()
}

// Event exposes event for the CLI's own actions (exec_start, commit, ...).
func (m *Manager) Event(rec *Record, action string, attrs map[string]string) {
	m.event(rec, action, attrs)
}

// Events calls fn for every event in [since, until) (zero = unbounded); with follow it keeps
// reading new events until ctx is done or until passes.
func (m *Manager) Events(ctx context.Context, since, until time.Time, follow bool, fn func(monitor.Event) error) error {
	f, err := os.OpenFile(m.EventsLog(), os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	r := bufio.NewReader(f)
	var partial []byte
	for {
		line, err := r.ReadBytes('\n')
		if err == io.EOF {
			partial = append(partial, line...)
			if !follow || (!until.IsZero() && time.Now().After(until)) {
				return nil
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		if err != nil {
			return err
		}
		line = append(partial, line...)
		partial = nil
		var ev monitor.Event
		if json.Unmarshal(line, &ev) != nil {
			continue
		}
		t := time.Unix(0, ev.Time)
		if !since.IsZero() && t.Before(since) {
			continue
		}
		if !until.IsZero() && !t.Before(until) {
			return nil
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
}

// ExitCodeString formats an exit code for event attributes.
func ExitCodeString(c int) string { return strconv.Itoa(c) }

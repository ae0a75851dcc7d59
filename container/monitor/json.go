package monitor

// The monitor's messages in JSON, through container/jsonlite (encoding/json would double the
// monitor's size): field order and omitempty as encoding/json has them for these types;
// json_test.go checks both directions against encoding/json.

import (
	"errors"
	"strconv"
	"time"

	"github.com/berth-dev/berth/container/jsonlite"
)

func (s *State) marshal() []byte {
	w := &jsonlite.Writer{B: make([]byte, 0, 512)}
	w.Raw("{")
	w.Str("status", s.Status)
	if s.Pid != 0 {
		w.Int("pid", int64(s.Pid))
	}
	if s.PidStart != 0 {
		w.Uint("pid_start", s.PidStart)
	}
	if s.MonitorPid != 0 {
		w.Int("monitor_pid", int64(s.MonitorPid))
	}
	if s.MonitorStart != 0 {
		w.Uint("monitor_start", s.MonitorStart)
	}
	if s.MonitorLock != "" {
		w.Str("monitor_lock", s.MonitorLock)
	}
	if s.MonitorID != "" {
		w.Str("monitor_id", s.MonitorID)
	}
	w.Time("started_at", s.StartedAt)
	w.Time("finished_at", s.FinishedAt)
	w.Int("exit_code", int64(s.ExitCode))
	if s.OOMKilled {
		w.Bool("oom_killed", true)
	}
	if s.Error != "" {
		w.Str("error", s.Error)
	}
	w.Int("restart_count", int64(s.RestartCount))
	if h := s.Health; h != nil {
		w.Key("health")
		w.Raw("{")
		w.Str("Status", h.Status)
		w.Int("FailingStreak", int64(h.FailingStreak))
		w.Key("Log")
		if h.Log == nil {
			w.Raw("null")
		} else {
			w.Raw("[")
			for i, p := range h.Log {
				if i > 0 {
					w.Raw(",")
				}
				w.Raw("{")
				w.Time("Start", p.Start)
				w.Time("End", p.End)
				w.Int("ExitCode", int64(p.ExitCode))
				w.Str("Output", p.Output)
				w.Raw("}")
			}
			w.Raw("]")
		}
		w.Raw("}")
	}
	w.Raw("}")
	return w.B
}

func (m *SyncMsg) marshal() []byte {
	w := &jsonlite.Writer{}
	w.Raw("{")
	if m.Pid != 0 {
		w.Int("pid", int64(m.Pid))
	}
	if m.Start {
		w.Bool("start", true)
	}
	if m.Started {
		w.Bool("started", true)
	}
	if m.Error != "" {
		w.Str("error", m.Error)
	}
	w.Raw("}")
	return w.B
}

func (m *ExitMsg) marshal() []byte {
	w := &jsonlite.Writer{}
	w.Raw("{")
	w.Int("exit_code", int64(m.ExitCode))
	if m.OOMKilled {
		w.Bool("oom_killed", true)
	}
	w.Raw("}")
	return w.B
}

// marshal writes the event; attrs are given in sorted key order (as encoding/json writes a
// map), as pairs.
func (e *Event) marshal() []byte {
	w := &jsonlite.Writer{B: make([]byte, 0, 256)}
	w.Raw("{")
	w.Int("timeNano", e.Time)
	w.Str("Type", e.Type)
	w.Str("Action", e.Action)
	w.Str("id", e.ID)
	if len(e.Attributes) > 0 {
		keys := make([]string, 0, len(e.Attributes))
		for k := range e.Attributes {
			keys = append(keys, k)
		}
		for i := 1; i < len(keys); i++ { // insertion sort: a handful of keys
			for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
				keys[j], keys[j-1] = keys[j-1], keys[j]
			}
		}
		w.Key("attributes")
		w.Raw("{")
		for _, k := range keys {
			w.Str(k, e.Attributes[k])
		}
		w.Raw("}")
	}
	w.Raw("}")
	return w.B
}

// fieldErr wraps a decoding error with the key it came from.
func fieldErr(key string, err error) error {
	if err == nil {
		return nil
	}
	return errors.New("json: field " + strconv.Quote(key) + ": " + err.Error())
}

func (c *Config) unmarshal(b []byte) error {
	return jsonlite.Object(b, func(k string, v []byte) (err error) {
		var n int64
		switch k {
		case "id":
			c.ID, err = jsonlite.String(v)
		case "runtime":
			c.Runtime, err = jsonlite.String(v)
		case "runtime_root":
			c.RuntimeRoot, err = jsonlite.String(v)
		case "bundle":
			c.Bundle, err = jsonlite.String(v)
		case "dir":
			c.Dir, err = jsonlite.String(v)
		case "terminal":
			c.Terminal, err = jsonlite.ParseBool(v)
		case "open_stdin":
			c.OpenStdin, err = jsonlite.ParseBool(v)
		case "stdin_once":
			c.StdinOnce, err = jsonlite.ParseBool(v)
		case "log_path":
			c.LogPath, err = jsonlite.String(v)
		case "log_max_size":
			c.LogMaxSize, err = jsonlite.ParseInt(v)
		case "log_max_file":
			n, err = jsonlite.ParseInt(v)
			c.LogMaxFile = int(n)
		case "restart":
			err = jsonlite.Object(v, func(k string, v []byte) (err error) {
				switch k {
				case "name":
					c.Restart.Name, err = jsonlite.String(v)
				case "max_retries":
					n, err = jsonlite.ParseInt(v)
					c.Restart.MaxRetries = int(n)
				}
				return err
			})
		case "health":
			if string(v) == "null" {
				c.Health = nil
				return nil
			}
			h := &Health{}
			c.Health = h
			err = jsonlite.Object(v, func(k string, v []byte) (err error) {
				switch k {
				case "test":
					h.Test, err = jsonlite.Strings(v)
				case "interval":
					n, err = jsonlite.ParseInt(v)
					h.Interval = time.Duration(n)
				case "timeout":
					n, err = jsonlite.ParseInt(v)
					h.Timeout = time.Duration(n)
				case "start_period":
					n, err = jsonlite.ParseInt(v)
					h.StartPeriod = time.Duration(n)
				case "retries":
					n, err = jsonlite.ParseInt(v)
					h.Retries = int(n)
				}
				return err
			})
		case "oom_files":
			c.OOMFiles, err = jsonlite.Strings(v)
		case "exit_command":
			c.ExitCommand, err = jsonlite.Strings(v)
		case "events_log":
			c.EventsLog, err = jsonlite.String(v)
		case "name":
			c.Name, err = jsonlite.String(v)
		case "image":
			c.Image, err = jsonlite.String(v)
		case "held_fds":
			n, err = jsonlite.ParseInt(v)
			c.HeldFds = int(n)
		}
		return fieldErr(k, err)
	})
}

func (m *SyncMsg) unmarshal(b []byte) error {
	return jsonlite.Object(b, func(k string, v []byte) (err error) {
		var n int64
		switch k {
		case "pid":
			n, err = jsonlite.ParseInt(v)
			m.Pid = int(n)
		case "start":
			m.Start, err = jsonlite.ParseBool(v)
		case "started":
			m.Started, err = jsonlite.ParseBool(v)
		case "error":
			m.Error, err = jsonlite.String(v)
		}
		return err
	})
}

func (h *Hello) unmarshal(b []byte) error {
	return jsonlite.Object(b, func(k string, v []byte) (err error) {
		switch k {
		case "stdin":
			h.Stdin, err = jsonlite.ParseBool(v)
		case "stdout":
			h.Stdout, err = jsonlite.ParseBool(v)
		case "stderr":
			h.Stderr, err = jsonlite.ParseBool(v)
		case "cleanup":
			h.Cleanup, err = jsonlite.ParseBool(v)
		}
		return err
	})
}

func (r *Resize) unmarshal(b []byte) error {
	return jsonlite.Object(b, func(k string, v []byte) error {
		n, err := jsonlite.ParseInt(v)
		if err != nil || n < 0 || n > 0xffff {
			return jsonlite.ErrSyntax
		}
		switch k {
		case "rows":
			r.Rows = uint16(n)
		case "cols":
			r.Cols = uint16(n)
		}
		return nil
	})
}

// probeProcess returns the OCI process of a health probe: the bundle's config.json process
// (user, env, cwd, capabilities, ...) with args replaced by test and no terminal.
func probeProcess(config []byte, test []string) ([]byte, error) {
	var proc []byte
	if err := jsonlite.Object(config, func(k string, v []byte) error {
		if k == "process" {
			proc = v
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if proc == nil {
		return nil, errors.New("the bundle's config.json has no process")
	}
	w := &jsonlite.Writer{B: make([]byte, 0, len(proc)+64)}
	w.Raw("{")
	err := jsonlite.Object(proc, func(k string, v []byte) error {
		switch k {
		case "args", "terminal", "consoleSize", "commandLine":
			return nil
		}
		w.Key(k)
		w.B = append(w.B, v...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	w.Bool("terminal", false)
	w.Strs("args", test)
	w.Raw("}")
	return w.B, nil
}

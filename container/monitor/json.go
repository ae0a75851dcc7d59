package monitor

// A small JSON codec for the monitor's own messages: encoding/json (reflection) would
// double the binary and its resident size. Encoding follows encoding/json's output for the
// same types (field order, omitempty, time.Time as RFC 3339, HTML-safe strings), decoding
// accepts any valid JSON and skips unknown keys; json_test.go checks both against
// encoding/json.

import (
	"errors"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

var errJSON = errors.New("malformed JSON")

// --- encoding ---

type jw struct{ b []byte }

func (w *jw) raw(s string) { w.b = append(w.b, s...) }

// key writes `,"k":` (without the comma for the first key of an object).
func (w *jw) key(k string) {
	if n := len(w.b); n > 0 && w.b[n-1] != '{' && w.b[n-1] != '[' {
		w.b = append(w.b, ',')
	}
	w.b = appendJSONString(w.b, k)
	w.b = append(w.b, ':')
}

func (w *jw) str(k, v string) {
	w.key(k)
	w.b = appendJSONString(w.b, v)
}

func (w *jw) int(k string, v int64) {
	w.key(k)
	w.b = strconv.AppendInt(w.b, v, 10)
}

func (w *jw) uint(k string, v uint64) {
	w.key(k)
	w.b = strconv.AppendUint(w.b, v, 10)
}

func (w *jw) bool(k string, v bool) {
	w.key(k)
	w.b = strconv.AppendBool(w.b, v)
}

func (w *jw) time(k string, t time.Time) {
	w.key(k)
	w.b = append(w.b, '"')
	w.b = t.AppendFormat(w.b, time.RFC3339Nano)
	w.b = append(w.b, '"')
}

func (w *jw) strs(k string, v []string) {
	w.key(k)
	if v == nil {
		w.raw("null")
		return
	}
	w.b = append(w.b, '[')
	for i, s := range v {
		if i > 0 {
			w.b = append(w.b, ',')
		}
		w.b = appendJSONString(w.b, s)
	}
	w.b = append(w.b, ']')
}

func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

func (s *State) marshal() []byte {
	w := &jw{b: make([]byte, 0, 512)}
	w.raw("{")
	w.str("status", s.Status)
	if s.Pid != 0 {
		w.int("pid", int64(s.Pid))
	}
	if s.PidStart != 0 {
		w.uint("pid_start", s.PidStart)
	}
	if s.MonitorPid != 0 {
		w.int("monitor_pid", int64(s.MonitorPid))
	}
	if s.MonitorStart != 0 {
		w.uint("monitor_start", s.MonitorStart)
	}
	w.time("started_at", s.StartedAt)
	w.time("finished_at", s.FinishedAt)
	w.int("exit_code", int64(s.ExitCode))
	if s.OOMKilled {
		w.bool("oom_killed", true)
	}
	if s.Error != "" {
		w.str("error", s.Error)
	}
	w.int("restart_count", int64(s.RestartCount))
	if h := s.Health; h != nil {
		w.key("health")
		w.raw("{")
		w.str("Status", h.Status)
		w.int("FailingStreak", int64(h.FailingStreak))
		w.key("Log")
		if h.Log == nil {
			w.raw("null")
		} else {
			w.raw("[")
			for i, p := range h.Log {
				if i > 0 {
					w.raw(",")
				}
				w.raw("{")
				w.time("Start", p.Start)
				w.time("End", p.End)
				w.int("ExitCode", int64(p.ExitCode))
				w.str("Output", p.Output)
				w.raw("}")
			}
			w.raw("]")
		}
		w.raw("}")
	}
	w.raw("}")
	return w.b
}

func (m *SyncMsg) marshal() []byte {
	w := &jw{}
	w.raw("{")
	if m.Pid != 0 {
		w.int("pid", int64(m.Pid))
	}
	if m.Start {
		w.bool("start", true)
	}
	if m.Started {
		w.bool("started", true)
	}
	if m.Error != "" {
		w.str("error", m.Error)
	}
	w.raw("}")
	return w.b
}

func (m *ExitMsg) marshal() []byte {
	w := &jw{}
	w.raw("{")
	w.int("exit_code", int64(m.ExitCode))
	if m.OOMKilled {
		w.bool("oom_killed", true)
	}
	w.raw("}")
	return w.b
}

// marshal writes the event; attrs are given in sorted key order (as encoding/json writes a
// map), as pairs.
func (e *Event) marshal() []byte {
	w := &jw{b: make([]byte, 0, 256)}
	w.raw("{")
	w.int("timeNano", e.Time)
	w.str("Type", e.Type)
	w.str("Action", e.Action)
	w.str("id", e.ID)
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
		w.key("attributes")
		w.raw("{")
		for _, k := range keys {
			w.str(k, e.Attributes[k])
		}
		w.raw("}")
	}
	w.raw("}")
	return w.b
}

// --- decoding ---

// jsonSkipSpace returns the index of the first non-space byte at or after i.
func jsonSkipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// jsonValueEnd returns the index after the value that starts at b[i], validating it.
func jsonValueEnd(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errJSON
	}
	switch c := b[i]; {
	case c == '"':
		for i++; i < len(b); i++ {
			switch b[i] {
			case '\\':
				i++
			case '"':
				return i + 1, nil
			default:
				if b[i] < 0x20 {
					return 0, errJSON
				}
			}
		}
		return 0, errJSON
	case c == '{' || c == '[':
		closing := byte('}')
		if c == '[' {
			closing = ']'
		}
		i = jsonSkipSpace(b, i+1)
		if i < len(b) && b[i] == closing {
			return i + 1, nil
		}
		for {
			if c == '{' {
				if i >= len(b) || b[i] != '"' {
					return 0, errJSON
				}
				end, err := jsonValueEnd(b, i)
				if err != nil {
					return 0, err
				}
				i = jsonSkipSpace(b, end)
				if i >= len(b) || b[i] != ':' {
					return 0, errJSON
				}
				i = jsonSkipSpace(b, i+1)
			}
			end, err := jsonValueEnd(b, i)
			if err != nil {
				return 0, err
			}
			i = jsonSkipSpace(b, end)
			if i >= len(b) {
				return 0, errJSON
			}
			if b[i] == closing {
				return i + 1, nil
			}
			if b[i] != ',' {
				return 0, errJSON
			}
			i = jsonSkipSpace(b, i+1)
		}
	default:
		if j, ok := literalEnd(b, i); ok {
			return j, nil
		}
		if j, ok := numberEnd(b, i); ok {
			return j, nil
		}
		return 0, errJSON
	}
}

func literalEnd(b []byte, i int) (int, bool) {
	for _, lit := range []string{"true", "false", "null"} {
		if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
			return i + len(lit), true
		}
	}
	return 0, false
}

// numberEnd returns the end of the JSON number at b[i] (RFC 8259 grammar).
func numberEnd(b []byte, i int) (int, bool) {
	digits := func(i int) int {
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(i)
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		j := digits(i + 1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}

// jsonObject calls fn with each key and raw value of the object b (null: no call).
func jsonObject(b []byte, fn func(key string, val []byte) error) error {
	i := jsonSkipSpace(b, 0)
	if string(b[i:]) == "null" {
		return nil
	}
	end, err := jsonValueEnd(b, i)
	if err != nil || b[i] != '{' || jsonSkipSpace(b, end) != len(b) {
		return errJSON
	}
	i = jsonSkipSpace(b, i+1)
	for i < end-1 {
		kend, _ := jsonValueEnd(b, i)
		key, err := jsonString(b[i:kend])
		if err != nil {
			return err
		}
		i = jsonSkipSpace(b, jsonSkipSpace(b, kend)+1)
		vend, _ := jsonValueEnd(b, i)
		if err := fn(key, b[i:vend]); err != nil {
			return err
		}
		i = jsonSkipSpace(b, vend)
		if b[i] == ',' {
			i = jsonSkipSpace(b, i+1)
		}
	}
	return nil
}

// jsonArray calls fn with each raw element of the array b (null: no call).
func jsonArray(b []byte, fn func(val []byte) error) error {
	i := jsonSkipSpace(b, 0)
	if string(b[i:]) == "null" {
		return nil
	}
	end, err := jsonValueEnd(b, i)
	if err != nil || b[i] != '[' || jsonSkipSpace(b, end) != len(b) {
		return errJSON
	}
	i = jsonSkipSpace(b, i+1)
	for i < end-1 {
		vend, _ := jsonValueEnd(b, i)
		if err := fn(b[i:vend]); err != nil {
			return err
		}
		i = jsonSkipSpace(b, vend)
		if b[i] == ',' {
			i = jsonSkipSpace(b, i+1)
		}
	}
	return nil
}

func jsonString(b []byte) (string, error) {
	if string(b) == "null" {
		return "", nil
	}
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return "", errJSON
	}
	q := b[1 : len(b)-1]
	simple := true
	for _, c := range q {
		if c == '\\' || c >= utf8.RuneSelf {
			simple = false
			break
		}
	}
	if simple {
		return string(q), nil
	}
	out := make([]byte, 0, len(q))
	for i := 0; i < len(q); {
		c := q[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(q[i:])
			out = utf8.AppendRune(out, r) // invalid UTF-8 becomes U+FFFD, as encoding/json
			i += size
			continue
		}
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		if i+1 >= len(q) {
			return "", errJSON
		}
		switch q[i+1] {
		case '"', '\\', '/':
			out = append(out, q[i+1])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := jsonHex4(q, i+2)
			if !ok {
				return "", errJSON
			}
			i += 6
			if utf16.IsSurrogate(r) {
				if r2, ok := jsonHex4(q, i+2); ok && i+1 < len(q) && q[i] == '\\' && q[i+1] == 'u' {
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						out = utf8.AppendRune(out, d)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			out = utf8.AppendRune(out, r)
			continue
		default:
			return "", errJSON
		}
		i += 2
	}
	return string(out), nil
}

func jsonHex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

func jsonInt(b []byte) (int64, error) {
	if string(b) == "null" {
		return 0, nil
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, errJSON
	}
	return n, nil
}

func jsonBool(b []byte) (bool, error) {
	switch string(b) {
	case "true":
		return true, nil
	case "false", "null":
		return false, nil
	}
	return false, errJSON
}

func jsonStrings(b []byte) ([]string, error) {
	var out []string
	err := jsonArray(b, func(v []byte) error {
		s, err := jsonString(v)
		out = append(out, s)
		return err
	})
	return out, err
}

// fieldErr wraps a decoding error with the key it came from.
func fieldErr(key string, err error) error {
	if err == nil {
		return nil
	}
	return errors.New("json: field " + strconv.Quote(key) + ": " + err.Error())
}

func (c *Config) unmarshal(b []byte) error {
	return jsonObject(b, func(k string, v []byte) (err error) {
		var n int64
		switch k {
		case "id":
			c.ID, err = jsonString(v)
		case "runtime":
			c.Runtime, err = jsonString(v)
		case "runtime_root":
			c.RuntimeRoot, err = jsonString(v)
		case "bundle":
			c.Bundle, err = jsonString(v)
		case "dir":
			c.Dir, err = jsonString(v)
		case "terminal":
			c.Terminal, err = jsonBool(v)
		case "open_stdin":
			c.OpenStdin, err = jsonBool(v)
		case "stdin_once":
			c.StdinOnce, err = jsonBool(v)
		case "log_path":
			c.LogPath, err = jsonString(v)
		case "log_max_size":
			c.LogMaxSize, err = jsonInt(v)
		case "log_max_file":
			n, err = jsonInt(v)
			c.LogMaxFile = int(n)
		case "restart":
			err = jsonObject(v, func(k string, v []byte) (err error) {
				switch k {
				case "name":
					c.Restart.Name, err = jsonString(v)
				case "max_retries":
					n, err = jsonInt(v)
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
			err = jsonObject(v, func(k string, v []byte) (err error) {
				switch k {
				case "test":
					h.Test, err = jsonStrings(v)
				case "interval":
					n, err = jsonInt(v)
					h.Interval = time.Duration(n)
				case "timeout":
					n, err = jsonInt(v)
					h.Timeout = time.Duration(n)
				case "start_period":
					n, err = jsonInt(v)
					h.StartPeriod = time.Duration(n)
				case "retries":
					n, err = jsonInt(v)
					h.Retries = int(n)
				}
				return err
			})
		case "oom_files":
			c.OOMFiles, err = jsonStrings(v)
		case "exit_command":
			c.ExitCommand, err = jsonStrings(v)
		case "events_log":
			c.EventsLog, err = jsonString(v)
		case "name":
			c.Name, err = jsonString(v)
		case "image":
			c.Image, err = jsonString(v)
		}
		return fieldErr(k, err)
	})
}

func (m *SyncMsg) unmarshal(b []byte) error {
	return jsonObject(b, func(k string, v []byte) (err error) {
		var n int64
		switch k {
		case "pid":
			n, err = jsonInt(v)
			m.Pid = int(n)
		case "start":
			m.Start, err = jsonBool(v)
		case "started":
			m.Started, err = jsonBool(v)
		case "error":
			m.Error, err = jsonString(v)
		}
		return err
	})
}

func (h *Hello) unmarshal(b []byte) error {
	return jsonObject(b, func(k string, v []byte) (err error) {
		switch k {
		case "stdin":
			h.Stdin, err = jsonBool(v)
		case "stdout":
			h.Stdout, err = jsonBool(v)
		case "stderr":
			h.Stderr, err = jsonBool(v)
		case "cleanup":
			h.Cleanup, err = jsonBool(v)
		}
		return err
	})
}

func (r *Resize) unmarshal(b []byte) error {
	return jsonObject(b, func(k string, v []byte) error {
		n, err := jsonInt(v)
		if err != nil || n < 0 || n > 0xffff {
			return errJSON
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
	if err := jsonObject(config, func(k string, v []byte) error {
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
	w := &jw{b: make([]byte, 0, len(proc)+64)}
	w.raw("{")
	err := jsonObject(proc, func(k string, v []byte) error {
		switch k {
		case "args", "terminal", "consoleSize", "commandLine":
			return nil
		}
		w.key(k)
		w.b = append(w.b, v...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	w.bool("terminal", false)
	w.strs("args", test)
	w.raw("}")
	return w.b, nil
}

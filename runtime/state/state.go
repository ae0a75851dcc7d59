// Package state keeps one directory per container under the runtime root:
//
//	<root>/<id>/state.json   the record below, replaced atomically (temp + fsync + rename + dir fsync)
//	<root>/<id>/exec.fifo    exists from create until start: init blocks opening it for writing
//	<root>/<id>/.lock        flock(2) target serialising every mutation of this container
//
// The directory is created with mkdir(2), so two creates of one id cannot both win. Status is
// not stored: it is derived from the process (alive? same start time?), the fifo and the
// freezer, so a crash can never leave a stale "running" behind.
package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Sentinel errors, translated to messages at the CLI.
var (
	ErrExist    = errors.New("container id already in use")
	ErrNotExist = errors.New("container does not exist")
	ErrBadID    = errors.New("invalid container id")
)

// State is the on-disk record of one container.
type State struct {
	ID          string            `json:"id"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Pid         int               `json:"pid"`
	PidStart    uint64            `json:"pid_start"` // /proc/<pid>/stat starttime: guards against pid reuse
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner"`
	Annotations map[string]string `json:"annotations,omitempty"`
	CgroupsPath string            `json:"cgroups_path"`
	Systemd     bool              `json:"systemd,omitempty"`
	// Namespaces maps a namespace type to the path exec must join ("" entries are shared with the host).
	Namespaces map[string]string `json:"namespaces,omitempty"`
	// Config is the bundle's config.json as it was at create (hooks, process defaults, resources).
	Config *specs.Spec `json:"config"`
	// Started: create already started the program (run, runtime.CreateOpts.StartNow).
	Started bool `json:"started,omitempty"`
	// ConfigJSON, when set, is Config as JSON (config.json's bytes): Save writes it as it is.
	// Whoever changes Config clears it.
	ConfigJSON json.RawMessage `json:"-"`
}

// validID is ^[\w+\-.]+$ (a loop: no regexp compile on every runtime start).
func validID(id string) bool {
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return id != ""
}

// Dir returns the state directory of id under root after validating the id, so an id can never
// name a path outside root.
func Dir(root, id string) (string, error) {
	if !validID(id) || id == "." || id == ".." {
		return "", fmt.Errorf("%w %q: use letters, digits, '_', '+', '-' and '.'", ErrBadID, id)
	}
	return filepath.Join(root, id), nil
}

// Create makes the container's directory and returns it locked (call unlock when the record
// is saved or the directory removed); it fails with ErrExist if the id is taken. A directory
// without a record whose lock is free was left by a create that was killed midway: it is
// removed and the id reused, so a crash never blocks an id for good.
func Create(root, id string) (dir string, unlock func(), err error) {
	if dir, err = Dir(root, id); err != nil {
		return "", nil, err
	}
	if err := os.MkdirAll(root, 0o711); err != nil {
		return "", nil, err
	}
	for attempt := 0; ; attempt++ {
		err := os.Mkdir(dir, 0o711)
		if err == nil {
			unlock, err := Lock(dir)
			if err != nil {
				os.RemoveAll(dir)
				return "", nil, err
			}
			return dir, unlock, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return "", nil, err
		}
		if attempt > 0 || !RemoveStale(dir) {
			return "", nil, fmt.Errorf("%w: %s", ErrExist, id)
		}
	}
}

// RemoveStale removes dir if it holds no record and nobody holds its lock (a create that
// died before saving), and reports whether it did.
func RemoveStale(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, "state.json")); err == nil {
		return false
	}
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return false
	}
	defer f.Close()
	if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		return false // a create is in progress
	}
	if _, err := os.Stat(filepath.Join(dir, "state.json")); err == nil {
		return false
	}
	return os.RemoveAll(dir) == nil
}

// Lock takes an exclusive flock on the container directory; call the returned func to release.
func Lock(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// Save writes the record atomically. It does not fsync: the runtime's state lives under /run
// (tmpfs) and dies with the machine by design, while the rename alone already guarantees that
// a reader or a crashed writer never sees half a file.
func Save(dir string, s *State) error {
	var rec any = s
	if s.ConfigJSON != nil {
		// Encoding the spec again is the first use of the encoder for its ~60 types in a
		// short-lived runtime (cold, about half a millisecond); the file already is that JSON.
		rec = struct {
			*State
			Config json.RawMessage `json:"config"`
		}{s, s.ConfigJSON}
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, "state.json"), data, 0o600, false)
}

// Load reads the record of id.
func Load(root, id string) (*State, error) {
	dir, err := Dir(root, id)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrNotExist, id)
		}
		return nil, err
	}
	var s State
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("state of %s is corrupt: %w", id, err)
	}
	return &s, nil
}

// List returns the ids that have a state record under root.
func List(root string) ([]string, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(root, e.Name(), "state.json")); err == nil {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}

// WriteFileAtomic replaces path with data so a reader sees the old or the new file, never a mix,
// even across a crash of the machine.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	return writeFile(path, data, mode, true)
}

func writeFile(path string, data []byte, mode os.FileMode, durable bool) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if durable {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if !durable {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// StartTime reads field 22 of /proc/<pid>/stat (clock ticks since boot). It returns 0 when the
// process does not exist or is a zombie, so "alive" means StartTime(pid) == recorded value.
func StartTime(pid int) uint64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// comm may contain spaces and parentheses: fields start after the last ')'.
	i := len(data) - 1
	for i >= 0 && data[i] != ')' {
		i--
	}
	if i < 0 {
		return 0
	}
	fields := strings.Fields(string(data[i+1:]))
	// fields[0] is the state, fields[19] the start time (field 22 of the whole line).
	if len(fields) < 20 || fields[0] == "Z" || fields[0] == "X" {
		return 0
	}
	start, _ := strconv.ParseUint(fields[19], 10, 64)
	return start
}

package container

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/container/spec"
)

// ExecOptions are `exec`'s flags.
type ExecOptions struct {
	Cmd        []string
	Env        []string
	User       string
	WorkingDir string
	Tty        bool
	Privileged bool
}

// ExecProcess builds the process `exec` runs: the container's own process (user, env, caps,
// confinement) with the command and the overrides given.
func (m *Manager) ExecProcess(rec *Record, o ExecOptions) (*specs.Process, error) {
	st := m.Status(rec)
	switch st.Status {
	case "running":
	case "paused":
		return nil, fmt.Errorf("container %s is paused, unpause the container before exec", rec.ID)
	default:
		return nil, fmt.Errorf("container %s is not running", rec.ID)
	}
	b, err := os.ReadFile(filepath.Join(m.bundle(rec.ID), "config.json"))
	if err != nil {
		return nil, err
	}
	var sp specs.Spec
	if err := json.Unmarshal(b, &sp); err != nil {
		return nil, err
	}
	p := *sp.Process
	p.Args = o.Cmd
	p.Terminal = o.Tty
	p.Env = append(append([]string{}, p.Env...), o.Env...)
	if o.Tty && !hasEnv(p.Env, "TERM") {
		p.Env = append(p.Env, "TERM=xterm")
	}
	if o.WorkingDir != "" {
		p.Cwd = o.WorkingDir
	}
	if o.User != "" {
		u, _, err := spec.ResolveUser(m.rootfs(rec.ID), o.User, nil)
		if err != nil {
			return nil, err
		}
		p.User = u
	}
	if err := lookExec(fmt.Sprintf("/proc/%d/root", st.Pid), &p); err != nil {
		return nil, err
	}
	if o.Privileged && p.Capabilities != nil {
		all := spec.AllCaps()
		p.Capabilities.Bounding, p.Capabilities.Effective, p.Capabilities.Permitted = all, all, all
	}
	return &p, nil
}

func hasEnv(env []string, key string) bool {
	for _, e := range env {
		if len(e) > len(key) && e[:len(key)+1] == key+"=" {
			return true
		}
	}
	return false
}

// lookExec finds the command in the container (resolved in-root through its PATH), so that
// a missing or non-executable command fails with docker's exit code (127, 126) and message
// before any process is made.
func lookExec(root string, p *specs.Process) error {
	name := p.Args[0]
	exists := func(file string) (bool, bool) {
		f, err := pathrs.OpenInRoot(root, file)
		if err != nil {
			return false, false
		}
		defer f.Close()
		var st unix.Stat_t
		if unix.Fstat(int(f.Fd()), &st) != nil {
			return false, false
		}
		return true, st.Mode&unix.S_IFMT == unix.S_IFREG && st.Mode&0o111 != 0
	}
	if strings.Contains(name, "/") {
		file := name
		if !path.IsAbs(file) {
			file = path.Join(p.Cwd, file)
		}
		found, ok := exists(file)
		switch {
		case !found:
			return &CommandError{Msg: fmt.Sprintf("exec: %q: stat %s: no such file or directory", name, name), Code: 127}
		case !ok:
			return &CommandError{Msg: fmt.Sprintf("exec: %q: permission denied", name), Code: 126}
		}
		return nil
	}
	pathEnv := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range p.Env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			pathEnv = v
		}
	}
	denied := false
	for _, dir := range strings.Split(pathEnv, ":") {
		if dir == "" {
			dir = "."
		}
		found, ok := exists(path.Join(dir, name))
		if ok {
			return nil
		}
		denied = denied || found
	}
	if denied {
		return &CommandError{Msg: fmt.Sprintf("exec: %q: permission denied", name), Code: 126}
	}
	return &CommandError{Msg: fmt.Sprintf("exec: %q: executable file not found in $PATH", name), Code: 127}
}

package container

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

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

package runtimecli

import (
	"fmt"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/runtime"
	"github.com/berth-dev/berth/runtime/nsenter"
)

func execCommand(rt *runtime.Runtime) *cobra.Command {
	var (
		o                               runtime.ExecOpts
		processFile, cwd, user, apparmr string
		label                           string
		env, caps, gids                 []string
		tty, detach, noNewPrivs         bool
	)
	cmd := &cobra.Command{
		Use:   "exec [flags] CONTAINER-ID [COMMAND [ARG...]]",
		Short: "run a new process inside a running container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			c, err := rt.Load(id)
			if err != nil {
				return err
			}
			var p specs.Process
			if processFile != "" {
				if err := readJSONFile(processFile, &p); err != nil {
					return err
				}
			} else {
				// runc's rule: start from the container's process, override what is given.
				if c.Config != nil && c.Config.Process != nil {
					p = *c.Config.Process
				}
				p.Args = args[1:]
				p.Terminal = tty
				if cwd != "" {
					p.Cwd = cwd
				}
				p.Env = append(append([]string(nil), p.Env...), env...)
				if user != "" {
					if err := parseUser(user, &p.User); err != nil {
						return err
					}
				}
				for _, g := range gids {
					n, err := strconv.ParseUint(g, 10, 32)
					if err != nil {
						return fmt.Errorf("--additional-gids %q: not a number", g)
					}
					p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(n))
				}
				if len(caps) > 0 {
					p.Capabilities = addCaps(p.Capabilities, caps)
				}
				if noNewPrivs {
					p.NoNewPrivileges = true
				}
				if apparmr != "" {
					p.ApparmorProfile = apparmr
				}
				if label != "" {
					p.SelinuxLabel = label
				}
			}
			if len(p.Args) == 0 {
				return fmt.Errorf("exec: give a command or --process FILE")
			}
			var term *terminal
			if !detach {
				if err := runtime.BecomeSubreaper(); err != nil {
					return err
				}
				if err := nsenter.ForwardSignals(); err != nil {
					return fmt.Errorf("forward signals: %w", err)
				}
				if p.Terminal && o.ConsoleSocket == "" {
					if term, err = newTerminal(); err != nil {
						return err
					}
					defer term.close()
					o.ConsoleSocket = term.socketPath
				}
			}
			o.Process = &p
			pid, err := rt.Exec(id, o)
			if err != nil {
				return err
			}
			if term != nil {
				if err := term.attach(pid); err != nil {
					return err
				}
			}
			if detach {
				return nil
			}
			nsenter.ForwardTo(pid)
			code := runtime.Wait(pid)
			nsenter.ForwardTo(0) // reaped: its pid may be reused
			if term != nil {
				term.wait()
			}
			if code != 0 {
				return ExitError{Code: code}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false)
	f.StringVarP(&processFile, "process", "p", "", "JSON file (or -) with the OCI process to run")
	f.BoolVarP(&tty, "tty", "t", false, "allocate a pseudo-TTY")
	f.BoolVarP(&detach, "detach", "d", false, "return once the process has started")
	f.StringVar(&o.PidFile, "pid-file", "", "write the process pid to this file")
	f.StringVar(&o.ConsoleSocket, "console-socket", "", "unix socket that receives the pty master")
	f.StringVar(&cwd, "cwd", "", "working directory inside the container")
	f.StringArrayVarP(&env, "env", "e", nil, "set an environment variable (KEY=VALUE)")
	f.StringVarP(&user, "user", "u", "", "UID[:GID] to run as")
	f.StringArrayVarP(&gids, "additional-gids", "g", nil, "additional group ids")
	f.StringArrayVarP(&caps, "cap", "c", nil, "add a capability")
	f.BoolVar(&noNewPrivs, "no-new-privs", false, "set no_new_privs")
	f.StringVar(&apparmr, "apparmor", "", "AppArmor profile")
	f.StringVar(&label, "process-label", "", "SELinux label")
	f.IntVar(&o.PreserveFds, "preserve-fds", 0, "pass this many descriptors from 3 up")
	f.Bool("ignore-paused", false, "accepted for compatibility")
	f.String("pidfd-socket", "", "accepted for compatibility")
	return cmd
}

func parseUser(s string, u *specs.User) error {
	uid, gid, hasGid := strings.Cut(s, ":")
	n, err := strconv.ParseUint(uid, 10, 32)
	if err != nil {
		return fmt.Errorf("--user %q: want UID[:GID] as numbers", s)
	}
	u.UID = uint32(n)
	if hasGid {
		g, err := strconv.ParseUint(gid, 10, 32)
		if err != nil {
			return fmt.Errorf("--user %q: want UID[:GID] as numbers", s)
		}
		u.GID = uint32(g)
	}
	return nil
}

func addCaps(c *specs.LinuxCapabilities, add []string) *specs.LinuxCapabilities {
	out := &specs.LinuxCapabilities{}
	if c != nil {
		*out = *c
	}
	for _, name := range add {
		name = strings.ToUpper(name)
		if !strings.HasPrefix(name, "CAP_") {
			name = "CAP_" + name
		}
		out.Bounding = append(out.Bounding, name)
		out.Effective = append(out.Effective, name)
		out.Permitted = append(out.Permitted, name)
		out.Inheritable = append(out.Inheritable, name)
		out.Ambient = append(out.Ambient, name)
	}
	return out
}

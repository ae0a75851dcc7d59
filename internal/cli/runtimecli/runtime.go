// Package runtimecli is berth-runtime's command line: runc's, flag for flag as containerd's
// go-runc, dockerd and podman/conmon call it, over package runtime. No logic lives here beyond
// turning flags into options. It is kept apart from the engine's commands (package cli) so that
// the lean berth-runtime binary links none of the image, registry and HTTP code.
package runtimecli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/runtime"
	"github.com/berth-dev/berth/runtime/nsenter"
	"github.com/berth-dev/berth/runtime/state"
)

// Version is set at build time.
var Version = "0.1.0-dev"

type globalOpts struct {
	root      string
	log       string
	logFormat string
	systemd   bool
	rootless  string
	debug     bool
}

// logger writes runc-style error lines: JSON to --log when asked (go-runc reads the last
// error from there), and a plain line to stderr.
type logger struct{ g *globalOpts }

func (l logger) write(level, msg string) {
	if l.g.log != "" {
		f, err := os.OpenFile(l.g.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err == nil {
			if l.g.logFormat == "json" {
				line, _ := json.Marshal(map[string]string{"level": level, "msg": msg, "time": time.Now().Format(time.RFC3339Nano)})
				f.Write(append(line, '\n'))
			} else {
				fmt.Fprintf(f, "time=%q level=%s msg=%q\n", time.Now().Format(time.RFC3339Nano), level, msg)
			}
			f.Close()
		}
	}
	if level == "error" || level == "warning" || l.g.debug {
		fmt.Fprintf(os.Stderr, "berth-runtime: %s\n", msg)
	}
}

// ExitError carries a process exit code through cobra without printing anything.
type ExitError struct{ Code int }

func (e ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// Main runs berth-runtime with args (without argv[0]) and returns the exit code.
func Main(args []string) int {
	g := &globalOpts{}
	root := newRuntimeCommand(g, commandFor(args))
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var ee ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	logger{g}.write("error", err.Error())
	return 1
}

// commandFor returns the subcommand args name, after the global flags; "" when it cannot
// tell.
func commandFor(args []string) string {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			return a
		}
		name, _, withValue := strings.Cut(a, "=")
		switch name {
		case "--root", "--log", "--log-format", "--rootless":
			if !withValue {
				i++
			}
		case "--debug", "--systemd-cgroup", "--criu":
		default:
			return ""
		}
	}
	return ""
}

// NewRuntimeCommand builds the runc-compatible command tree.
func NewRuntimeCommand(g *globalOpts) *cobra.Command { return newRuntimeCommand(g, "") }

// newRuntimeCommand builds the tree with only the subcommand named only when there is one
// of that name: building all of them (15 commands and their flag sets) is about a millisecond
// of every container start. Help and unknown names get the whole tree.
func newRuntimeCommand(g *globalOpts, only string) *cobra.Command {
	rt := &runtime.Runtime{}
	cmd := &cobra.Command{
		Use:           "berth-runtime",
		Short:         "berth's OCI runtime (runc-compatible command line)",
		Version:       Version + "\nspec: 1.2.0",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			rt.Root = g.root
			rt.Systemd = g.systemd
			rt.Warn = func(format string, a ...any) { logger{g}.write("warning", fmt.Sprintf(format, a...)) }
			if g.debug {
				rt.Debug = func(format string, a ...any) { logger{g}.write("debug", fmt.Sprintf(format, a...)) }
			}
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%s: %w (see '%s --help')", c.Name(), err, c.CommandPath())
	})
	pf := cmd.PersistentFlags()
	pf.StringVar(&g.root, "root", "/run/berth/runtime", "root directory for container state")
	pf.StringVar(&g.log, "log", "", "log file (go-runc reads errors from it)")
	pf.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	pf.BoolVar(&g.systemd, "systemd-cgroup", false, "cgroupsPath is slice:prefix:name (cgroupfs is used when systemd is absent)")
	pf.StringVar(&g.rootless, "rootless", "auto", "accepted for compatibility: berth runs as root")
	pf.BoolVar(&g.debug, "debug", false, "log debug messages")
	pf.Bool("criu", false, "accepted for compatibility")
	pf.MarkHidden("criu")

	commands := map[string]func() *cobra.Command{
		"create":   func() *cobra.Command { return createCommand(rt) },
		"start":    func() *cobra.Command { return startCommand(rt) },
		"run":      func() *cobra.Command { return runCommand(rt, g) },
		"state":    func() *cobra.Command { return stateCommand(rt) },
		"kill":     func() *cobra.Command { return killCommand(rt) },
		"delete":   func() *cobra.Command { return deleteCommand(rt) },
		"exec":     func() *cobra.Command { return execCommand(rt) },
		"ps":       func() *cobra.Command { return psCommand(rt) },
		"list":     func() *cobra.Command { return listCommand(rt) },
		"pause":    func() *cobra.Command { return pauseCommand(rt) },
		"resume":   func() *cobra.Command { return resumeCommand(rt) },
		"events":   func() *cobra.Command { return eventsCommand(rt) },
		"update":   func() *cobra.Command { return updateCommand(rt) },
		"features": func() *cobra.Command { return featuresCommand() },
		"spec":     func() *cobra.Command { return specCommand() },
	}
	if only == "ls" {
		only = "list"
	}
	if build, ok := commands[only]; ok {
		cmd.AddCommand(build())
		return cmd
	}
	for _, name := range []string{"create", "start", "run", "state", "kill", "delete", "exec", "ps",
		"list", "pause", "resume", "events", "update", "features", "spec"} {
		cmd.AddCommand(commands[name]())
	}
	return cmd
}

func addCreateFlags(cmd *cobra.Command, o *runtime.CreateOpts) {
	f := cmd.Flags()
	f.StringVarP(&o.Bundle, "bundle", "b", ".", "path to the bundle directory")
	f.StringVar(&o.PidFile, "pid-file", "", "write the init pid to this file")
	f.StringVar(&o.ConsoleSocket, "console-socket", "", "unix socket that receives the pty master")
	f.String("pidfd-socket", "", "unix socket that receives a pidfd of the init")
	f.IntVar(&o.PreserveFds, "preserve-fds", 0, "pass this many descriptors from 3 up to the container")
	f.BoolVar(&o.NoPivot, "no-pivot", false, "use MS_MOVE and chroot instead of pivot_root")
	f.BoolVar(&o.NoNewKeyring, "no-new-keyring", false, "keep the caller's session keyring")
}

func createCommand(rt *runtime.Runtime) *cobra.Command {
	var o runtime.CreateOpts
	cmd := &cobra.Command{
		Use:   "create [flags] CONTAINER-ID",
		Short: "create a container from a bundle; start runs its program",
		Args:  ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.ID = args[0]
			pid, err := rt.Create(o)
			if err != nil {
				return err
			}
			return sendPidfd(cmd, pid)
		},
	}
	addCreateFlags(cmd, &o)
	return cmd
}

func startCommand(rt *runtime.Runtime) *cobra.Command {
	return &cobra.Command{
		Use: "start CONTAINER-ID", Short: "start the program of a created container", Args: ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return rt.Start(args[0]) },
	}
}

func runCommand(rt *runtime.Runtime, g *globalOpts) *cobra.Command {
	var o runtime.CreateOpts
	var detach, keep bool
	cmd := &cobra.Command{
		Use:   "run [flags] CONTAINER-ID",
		Short: "create and start a container; wait for it unless --detach",
		Args:  ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.ID = args[0]
			o.StartNow = true
			var term *terminal
			if !detach {
				if err := runtime.BecomeSubreaper(); err != nil {
					return err
				}
				if err := nsenter.ForwardSignals(); err != nil {
					return fmt.Errorf("forward signals: %w", err)
				}
				spec, raw, err := runtime.LoadSpecJSON(o.Bundle)
				if err != nil {
					return err
				}
				o.Spec, o.SpecJSON = spec, raw
				if spec.Process.Terminal && o.ConsoleSocket == "" {
					if term, err = newTerminal(); err != nil {
						return err
					}
					defer term.close()
					o.ConsoleSocket = term.socketPath
				}
			}
			pid, err := rt.Create(o)
			if err != nil {
				return err
			}
			if term != nil {
				if err := term.attach(pid); err != nil {
					rt.Delete(o.ID, true)
					return err
				}
			}
			if err := rt.Start(o.ID); err != nil {
				rt.Delete(o.ID, true)
				return err
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
			if oom, err := rt.OOMKills(o.ID); err == nil && oom > 0 {
				logger{g}.write("warning", fmt.Sprintf("container %s: a process was killed by the OOM killer (memory limit reached)", o.ID))
			}
			if !keep {
				if err := rt.Delete(o.ID, true); err != nil {
					return err
				}
			}
			if code != 0 {
				return ExitError{Code: code}
			}
			return nil
		},
	}
	addCreateFlags(cmd, &o)
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "return after start")
	cmd.Flags().BoolVar(&keep, "keep", false, "do not delete the container after it exits")
	return cmd
}

func stateCommand(rt *runtime.Runtime) *cobra.Command {
	return &cobra.Command{
		Use: "state CONTAINER-ID", Short: "print the OCI state of a container as JSON", Args: ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := rt.Load(args[0])
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), c.Describe(), true)
		},
	}
}

func killCommand(rt *runtime.Runtime) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "kill [--all] CONTAINER-ID [SIGNAL]",
		Short: "send a signal (default SIGTERM) to the container's init, or --all its processes",
		Args:  RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			sig := "SIGTERM"
			if len(args) == 2 {
				sig = args[1]
			}
			s, err := parseSignal(sig)
			if err != nil {
				return err
			}
			return rt.Kill(args[0], s, all)
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "signal every process in the container")
	return cmd
}

func deleteCommand(rt *runtime.Runtime) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use: "delete [--force] CONTAINER-ID...", Short: "delete containers", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var errs []error
			for _, id := range args {
				if err := rt.Delete(id, force); err != nil {
					if force && errors.Is(err, state.ErrNotExist) {
						continue // as runc: forcing away what is already gone succeeds
					}
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "kill a running container first")
	return cmd
}

func pauseCommand(rt *runtime.Runtime) *cobra.Command {
	return &cobra.Command{
		Use: "pause CONTAINER-ID", Short: "freeze every process of a container", Args: ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return rt.Pause(args[0]) },
	}
}

func resumeCommand(rt *runtime.Runtime) *cobra.Command {
	return &cobra.Command{
		Use: "resume CONTAINER-ID", Short: "thaw a paused container", Args: ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return rt.Resume(args[0]) },
	}
}

func listCommand(rt *runtime.Runtime) *cobra.Command {
	var format string
	var quiet bool
	cmd := &cobra.Command{
		Use: "list", Aliases: []string{"ls"}, Short: "list containers", Args: ExactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			cs, err := rt.List()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if quiet {
				for _, c := range cs {
					fmt.Fprintln(out, c.ID)
				}
				return nil
			}
			if format == "json" {
				list := []runtime.StateJSON{}
				for _, c := range cs {
					list = append(list, c.Describe())
				}
				return printJSON(out, list, false)
			}
			tw := newTable(out)
			tw.row("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")
			for _, c := range cs {
				d := c.Describe()
				tw.row(d.ID, strconv.Itoa(d.Pid), d.Status, d.Bundle, d.Created.Format(time.RFC3339Nano), ownerOr(d.Owner))
			}
			return tw.flush()
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the ids")
	return cmd
}

func ownerOr(s string) string {
	if s == "" {
		return "root"
	}
	return s
}

func psCommand(rt *runtime.Runtime) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "ps [--format table|json] CONTAINER-ID [ps options]",
		Short: "list the processes of a container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pids, err := rt.Pids(args[0])
			if err != nil {
				return err
			}
			if format == "json" {
				if pids == nil {
					pids = []int{}
				}
				return printJSON(cmd.OutOrStdout(), pids, false)
			}
			return psTable(cmd.OutOrStdout(), pids, args[1:])
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	cmd.Flags().SetInterspersed(false)
	return cmd
}

func printJSON(w io.Writer, v any, indent bool) error {
	enc := json.NewEncoder(w)
	if indent {
		enc.SetIndent("", "  ")
	}
	return enc.Encode(v)
}

func ExactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%s: expected %d argument(s), got %d; usage: %s", cmd.Name(), n, len(args), cmd.UseLine())
		}
		return nil
	}
}

func RangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < lo || len(args) > hi {
			return fmt.Errorf("%s: expected %d to %d arguments, got %d; usage: %s", cmd.Name(), lo, hi, len(args), cmd.UseLine())
		}
		return nil
	}
}

// readJSONFile reads path ("-" for stdin) into v.
func readJSONFile(path string, v any) error {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(os.Stdin)
	} else {
		data, err = os.ReadFile(filepath.Clean(path))
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	return nil
}

package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/sys/signal"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/container/logfile"
	"github.com/berth-dev/berth/container/monitor"
	"github.com/berth-dev/berth/internal/cli/format"
	"github.com/berth-dev/berth/internal/cli/runtimecli"
	"github.com/berth-dev/berth/internal/engine"
)

// container opens the data root and finds the named container.
func (o *berthOpts) container(name string) (*engine.Engine, *container.Record, error) {
	e, err := o.open()
	if err != nil {
		return nil, nil, err
	}
	rec, err := e.Containers.Lookup(name)
	return e, rec, err
}

// eachContainer runs fn on every named container and reports failures docker's way: every
// error on its own line, exit 1 if any failed.
func (o *berthOpts) eachContainer(cmd *cobra.Command, names []string, fn func(m *container.Manager, rec *container.Record) error) error {
	return o.eachName(cmd, names, func(e *engine.Engine, name string) error {
		rec, err := e.Containers.Lookup(name)
		if err != nil {
			return err
		}
		return fn(e.Containers, rec)
	})
}

// errQuiet: eachName neither prints the name nor counts a failure.
var errQuiet = errors.New("quiet")

// eachName runs fn on every name concurrently, then prints each name that succeeded, each
// error on its own line, and exits 1 if any failed (docker's way for multi-container verbs).
func (o *berthOpts) eachName(cmd *cobra.Command, names []string, fn func(e *engine.Engine, name string) error) error {
	e, err := o.open()
	if err != nil {
		return err
	}
	var (
		mu     sync.Mutex
		failed bool
		wg     sync.WaitGroup
	)
	for _, n := range names {
		wg.Add(1)
		go func(n string) {
			defer wg.Done()
			err := fn(e, n)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == errQuiet:
			case err != nil:
				failed = true
				fmt.Fprintln(cmd.ErrOrStderr(), "berth:", err)
			default:
				fmt.Fprintln(cmd.OutOrStdout(), n)
			}
		}(n)
	}
	wg.Wait()
	if failed {
		return runtimecli.ExitError{Code: 1}
	}
	return nil
}

func startCommand(o *berthOpts) *cobra.Command {
	var attach, interactive bool
	cmd := &cobra.Command{
		Use: "start [OPTIONS] CONTAINER [CONTAINER...]", Short: "start one or more stopped containers", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if attach || interactive {
				if len(args) > 1 {
					return errors.New("you cannot start and attach multiple containers at once")
				}
				e, rec, err := o.container(args[0])
				if err != nil {
					return err
				}
				code, err := runAttached(cmd.Context(), e.Containers, rec, attachOpts{stdin: interactive, tty: rec.Config.Tty, sigProxy: true})
				if err != nil {
					return err
				}
				if code != 0 {
					return runtimecli.ExitError{Code: code}
				}
				return nil
			}
			return o.eachContainer(cmd, args, func(m *container.Manager, rec *container.Record) error {
				if st := m.Status(rec); st.Running() {
					return nil
				}
				err := startDetached(cmd.Context(), m, rec)
				if errors.Is(err, container.ErrRunning) {
					return nil // started by a concurrent start: docker's start is idempotent
				}
				return err
			})
		},
	}
	cmd.Flags().BoolVarP(&attach, "attach", "a", false, "attach STDOUT/STDERR and forward signals")
	cmd.Flags().BoolVarP(&interactive, "interactive", "i", false, "attach container's STDIN")
	return cmd
}

func stopCommand(o *berthOpts, use string, restart bool) *cobra.Command {
	var timeout int
	var sig string
	cmd := &cobra.Command{
		Use: use + " [OPTIONS] CONTAINER [CONTAINER...]", Args: cobra.MinimumNArgs(1),
		Short: map[bool]string{false: "stop one or more running containers", true: "restart one or more containers"}[restart],
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.eachContainer(cmd, args, func(m *container.Manager, rec *container.Record) error {
				t := container.StopTimeout(rec)
				if cmd.Flags().Changed("time") {
					t = time.Duration(timeout) * time.Second
				}
				if sig != "" {
					s, err := signal.ParseSignal(sig)
					if err != nil {
						return err
					}
					rec.Config.StopSignal = fmt.Sprint(int(s))
				}
				if err := m.Stop(rec, t); err != nil {
					return err
				}
				if restart {
					return startDetached(cmd.Context(), m, rec)
				}
				return nil
			})
		},
	}
	cmd.Flags().IntVarP(&timeout, "time", "t", 10, "seconds to wait before killing the container")
	cmd.Flags().StringVarP(&sig, "signal", "s", "", "signal to send to the container")
	return cmd
}

func killCommand(o *berthOpts) *cobra.Command {
	var sig string
	cmd := &cobra.Command{
		Use: "kill [OPTIONS] CONTAINER [CONTAINER...]", Short: "kill one or more running containers", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := signal.ParseSignal(sig)
			if err != nil {
				return err
			}
			return o.eachContainer(cmd, args, func(m *container.Manager, rec *container.Record) error {
				return m.Kill(rec, unix.Signal(s))
			})
		},
	}
	cmd.Flags().StringVarP(&sig, "signal", "s", "KILL", "signal to send to the container")
	return cmd
}

func pauseCommand(o *berthOpts, unpause bool) *cobra.Command {
	use := map[bool]string{false: "pause", true: "unpause"}[unpause]
	return &cobra.Command{
		Use: use + " CONTAINER [CONTAINER...]", Short: use + " all processes within one or more containers", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.eachContainer(cmd, args, func(m *container.Manager, rec *container.Record) error {
				if unpause {
					return m.Unpause(rec)
				}
				return m.Pause(rec)
			})
		},
	}
}

func rmCommand(o *berthOpts, use string) *cobra.Command {
	var force, volumes bool
	cmd := &cobra.Command{
		Use: use + " [OPTIONS] CONTAINER [CONTAINER...]", Short: "remove one or more containers", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.eachName(cmd, args, func(e *engine.Engine, name string) error {
				rec, err := e.Containers.Lookup(name)
				if force && errors.Is(err, container.ErrNotFound) {
					return errQuiet // docker: rm -f of a missing container is quiet
				}
				if err != nil {
					return err
				}
				return e.Containers.Remove(cmd.Context(), rec, force, volumes)
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "force the removal of a running container (uses SIGKILL)")
	cmd.Flags().BoolVarP(&volumes, "volumes", "v", false, "remove anonymous volumes associated with the container")
	return cmd
}

func renameCommand(o *berthOpts) *cobra.Command {
	return &cobra.Command{
		Use: "rename CONTAINER NEW_NAME", Short: "rename a container", Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, rec, err := o.container(args[0])
			if err != nil {
				return err
			}
			return e.Containers.Rename(rec, strings.TrimPrefix(args[1], "/"))
		},
	}
}

func waitCommand(o *berthOpts) *cobra.Command {
	return &cobra.Command{
		Use: "wait CONTAINER [CONTAINER...]", Short: "block until one or more containers stop, then print their exit codes", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := o.open()
			if err != nil {
				return err
			}
			failed := false
			for _, n := range args {
				rec, err := e.Containers.Lookup(n)
				if err == nil {
					var ex monitor.ExitMsg
					if ex, err = e.Containers.Wait(rec); err == nil {
						fmt.Fprintln(cmd.OutOrStdout(), ex.ExitCode)
						continue
					}
				}
				failed = true
				fmt.Fprintln(cmd.ErrOrStderr(), "berth:", err)
			}
			if failed {
				return runtimecli.ExitError{Code: 1}
			}
			return nil
		},
	}
}

// psRow is what `ps --format` templates see (docker's field names).
type psRow struct {
	ID, Image, Command, CreatedAt, RunningFor, Ports, State, Status, Size, Names, Labels, Mounts, Networks string
	Created                                                                                                time.Time `json:"-"`
}

func psCommand(o *berthOpts, use string) *cobra.Command {
	var all, quiet, noTrunc, latest, size bool
	var last int
	var formatStr string
	var filters []string
	cmd := &cobra.Command{
		Use: use + " [OPTIONS]", Short: "list containers", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := o.open()
			if err != nil {
				return err
			}
			m := e.Containers
			// The "next command" after a crash: free what killed runs left on the network.
			m.ReconcileNetwork(cmd.Context())
			recs, err := m.List()
			if err != nil {
				return err
			}
			match, err := psFilter(m, filters)
			if err != nil {
				return err
			}
			if latest {
				last = 1
			}
			if last > 0 {
				all = true
			}
			now := time.Now()
			var rows []any
			for _, rec := range recs {
				st := m.Status(rec)
				if !all && !st.Running() && st.Status != "restarting" && len(filters) == 0 {
					continue
				}
				if !match(rec, st) {
					continue
				}
				if last > 0 && len(rows) >= last {
					break
				}
				if quiet {
					id := rec.ShortID()
					if noTrunc {
						id = rec.ID
					}
					rows = append(rows, id)
					continue
				}
				r := psRow{
					ID: rec.ShortID(), Image: rec.Config.Image, Command: container.Command(rec),
					CreatedAt: rec.Created.Local().Format("2006-01-02 15:04:05 -0700 MST"), Created: rec.Created,
					RunningFor: format.Since(rec.Created), State: st.Status, Status: container.StatusText(st, now),
					Names: rec.Name, Networks: string(rec.HostConfig.NetworkMode),
					Ports: container.PortsText(rec, m.Ports(rec), st.Running()),
				}
				if len(rec.Networks) > 0 {
					var nets []string
					for _, a := range rec.Networks {
						nets = append(nets, a.Name)
					}
					r.Networks = strings.Join(nets, ",")
				}
				if noTrunc {
					r.ID = rec.ID
				} else {
					r.Command = format.Truncate(r.Command, 20)
				}
				if !noTrunc || true {
					r.Command = `"` + r.Command + `"`
				}
				var labels, mounts []string
				for k, v := range rec.Config.Labels {
					labels = append(labels, k+"="+v)
				}
				sort.Strings(labels)
				r.Labels = strings.Join(labels, ",")
				for _, mp := range rec.Mounts {
					if mp.Name != "" {
						mounts = append(mounts, format.Truncate(mp.Name, 15))
					} else {
						mounts = append(mounts, mp.Source)
					}
				}
				r.Mounts = strings.Join(mounts, ",")
				if size {
					rw := dirSize(m.UpperDir(rec.ID))
					r.Size = format.Size(rw) + " (virtual " + format.Size(rw+e.UnpackedSizeByID(rec.Image)) + ")"
				}
				rows = append(rows, r)
			}
			if quiet {
				for _, r := range rows {
					fmt.Fprintln(cmd.OutOrStdout(), r)
				}
				return nil
			}
			def := "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
			if size {
				def += "\t{{.Size}}"
			}
			return format.Table(cmd.OutOrStdout(), formatStr, def, map[string]string{
				"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
				"RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS", "Size": "SIZE",
				"Names": "NAMES", "Labels": "LABELS", "Mounts": "MOUNTS", "Networks": "NETWORKS",
			}, rows)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&all, "all", "a", false, "show all containers (default shows just running)")
	f.BoolVarP(&quiet, "quiet", "q", false, "only display container IDs")
	f.BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	f.BoolVarP(&latest, "latest", "l", false, "show the latest created container (includes all states)")
	f.IntVarP(&last, "last", "n", -1, "show n last created containers (includes all states)")
	f.BoolVarP(&size, "size", "s", false, "display total file sizes")
	f.StringVar(&formatStr, "format", "", "format output using a Go template, 'table', or 'json'")
	f.StringArrayVarP(&filters, "filter", "f", nil, "filter output based on conditions provided")
	return cmd
}

// psFilter implements ps --filter: id, name, label, status, exited, ancestor, before, since,
// volume, health.
func psFilter(m *container.Manager, filters []string) (func(*container.Record, container.Status) bool, error) {
	type cond func(*container.Record, container.Status) bool
	byKey := map[string][]cond{}
	for _, f := range filters {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("bad format of filter (expected name=value): %s", f)
		}
		var c cond
		switch k {
		case "id":
			c = func(r *container.Record, _ container.Status) bool { return strings.HasPrefix(r.ID, v) }
		case "name":
			c = func(r *container.Record, _ container.Status) bool {
				return strings.Contains(r.Name, strings.TrimPrefix(v, "/"))
			}
		case "label":
			c = func(r *container.Record, _ container.Status) bool { return labelMatch(r.Config.Labels, v) }
		case "status":
			switch v {
			case "created", "restarting", "running", "removing", "paused", "exited", "dead":
			default:
				return nil, fmt.Errorf("invalid filter 'status=%s'", v)
			}
			c = func(_ *container.Record, s container.Status) bool { return s.Status == v }
		case "exited":
			c = func(_ *container.Record, s container.Status) bool {
				return s.Status == "exited" && fmt.Sprint(s.ExitCode) == v
			}
		case "ancestor":
			c = func(r *container.Record, _ container.Status) bool {
				if r.Config.Image == v || strings.HasPrefix(strings.TrimPrefix(r.Image, "sha256:"), strings.TrimPrefix(v, "sha256:")) {
					return true
				}
				img, err := m.Images.Resolve(v)
				return err == nil && img.ID() == r.Image
			}
		case "before", "since":
			ref, err := m.Lookup(v)
			if err != nil {
				return nil, err
			}
			before := k == "before"
			c = func(r *container.Record, _ container.Status) bool {
				if before {
					return r.Created.Before(ref.Created)
				}
				return r.Created.After(ref.Created)
			}
		case "volume":
			c = func(r *container.Record, _ container.Status) bool {
				for _, mp := range r.Mounts {
					if mp.Name == v || mp.Source == v || mp.Destination == v {
						return true
					}
				}
				return false
			}
		case "health":
			c = func(_ *container.Record, s container.Status) bool {
				if s.State.Health == nil {
					return v == "none"
				}
				return s.State.Health.Status == v
			}
		case "network":
			c = func(r *container.Record, _ container.Status) bool {
				for _, a := range r.Networks {
					if a.Name == v || a.ID == v {
						return true
					}
				}
				return string(r.HostConfig.NetworkMode) == v
			}
		default:
			return nil, fmt.Errorf("invalid filter '%s'", k)
		}
		byKey[k] = append(byKey[k], c)
	}
	return func(r *container.Record, s container.Status) bool {
		for _, cs := range byKey { // AND between keys, OR within a key (docker's rule)
			ok := false
			for _, c := range cs {
				if c(r, s) {
					ok = true
					break
				}
			}
			if !ok {
				return false
			}
		}
		return true
	}, nil
}

func logsCommand(o *berthOpts) *cobra.Command {
	var follow, timestamps bool
	var tail, since, until string
	cmd := &cobra.Command{
		Use: "logs [OPTIONS] CONTAINER", Short: "fetch the logs of a container", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, rec, err := o.container(args[0])
			if err != nil {
				return err
			}
			m := e.Containers
			if rec.HostConfig.LogConfig.Type == "none" {
				return errors.New(`configured logging driver does not support reading`)
			}
			ro := logfile.ReadOpts{Tail: -1, Follow: follow}
			if tail != "all" && tail != "" {
				if _, err := fmt.Sscanf(tail, "%d", &ro.Tail); err != nil {
					return fmt.Errorf("invalid --tail %q: use a number or \"all\"", tail)
				}
			}
			now := time.Now()
			if ro.Since, err = parseTimeArg(since, now); err != nil {
				return err
			}
			if ro.Until, err = parseTimeArg(until, now); err != nil {
				return err
			}
			if follow {
				ro.Done = func() bool {
					st := m.Status(rec)
					return !st.Running() && st.Status != "restarting" && !st.MonitorAlive
				}
			}
			stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
			err = logfile.Read(cmd.Context(), m.LogPath(rec.ID), ro, func(en logfile.Entry) error {
				w := stdout
				if en.Stream == "stderr" {
					w = stderr
				}
				if timestamps {
					if _, err := io.WriteString(w, en.Time.UTC().Format("2006-01-02T15:04:05.000000000Z")+" "); err != nil {
						return err
					}
				}
				_, err := w.Write(en.Line)
				return err
			})
			if errors.Is(err, context.Canceled) || errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&follow, "follow", "f", false, "follow log output")
	f.BoolVarP(&timestamps, "timestamps", "t", false, "show timestamps")
	f.StringVarP(&tail, "tail", "n", "all", "number of lines to show from the end of the logs")
	f.StringVar(&since, "since", "", "show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m for 42 minutes)")
	f.StringVar(&until, "until", "", "show logs before a timestamp or relative (e.g. 42m)")
	return cmd
}

// parseTimeArg reads docker's --since/--until: RFC 3339 (with or without zone), a Unix
// timestamp, or a duration back from now.
func parseTimeArg(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	var sec, nsec int64
	if n, _ := fmt.Sscanf(s, "%d.%d", &sec, &nsec); n >= 1 {
		return time.Unix(sec, nsec), nil
	}
	return time.Time{}, fmt.Errorf("invalid time %q: use RFC 3339, a Unix timestamp or a duration like 10m", s)
}

func inspectCommand(o *berthOpts) *cobra.Command {
	var formatStr, typ string
	var size bool
	cmd := &cobra.Command{
		Use: "inspect [OPTIONS] NAME|ID [NAME|ID...]", Short: "return low-level information on berth objects", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := o.open()
			if err != nil {
				return err
			}
			var out []any
			failed := false
			for _, a := range args {
				if typ == "" || typ == "container" {
					if rec, err := e.Containers.Lookup(a); err == nil {
						out = append(out, e.Containers.Inspect(rec))
						continue
					} else if typ == "container" {
						fmt.Fprintln(cmd.ErrOrStderr(), "berth:", err)
						failed = true
						continue
					}
				}
				if typ == "" || typ == "image" {
					if img, err := e.Inspect(a); err == nil {
						out = append(out, img)
						continue
					}
				}
				if typ == "" || typ == "volume" {
					if v, err := e.Volumes.Get(a); err == nil {
						out = append(out, v.API())
						continue
					}
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "berth: no such object: %s\n", a)
				failed = true
			}
			if err := printInspect(cmd, out, formatStr); err != nil {
				return err
			}
			if failed {
				return runtimecli.ExitError{Code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&formatStr, "format", "f", "", "format output using a Go template")
	cmd.Flags().StringVar(&typ, "type", "", "only inspect objects of the given type (container, image, volume)")
	cmd.Flags().BoolVarP(&size, "size", "s", false, "display total file sizes if the type is container")
	return cmd
}

func containerCommand(o *berthOpts) *cobra.Command {
	c := &cobra.Command{Use: "container", Short: "manage containers"}
	c.AddCommand(createCommand(o), runCommand(o), startCommand(o), stopCommand(o, "stop", false),
		stopCommand(o, "restart", true), killCommand(o), pauseCommand(o, false), pauseCommand(o, true),
		rmCommand(o, "rm"), renameCommand(o), waitCommand(o), psCommand(o, "ls"), logsCommand(o),
		inspectContainerCommand(o), execCommand(o), attachCommand(o), topCommand(o), statsCommand(o),
		cpCommand(o), diffCommand(o), commitCommand(o), exportCommand(o), containerPruneCommand(o),
		cleanupCommand(o))
	return c
}

func inspectContainerCommand(o *berthOpts) *cobra.Command {
	c := inspectCommand(o)
	c.Flags().Set("type", "container")
	return c
}

// cleanupCommand is the monitor's exit command (hidden).
func cleanupCommand(o *berthOpts) *cobra.Command {
	var monitorID string
	cmd := &cobra.Command{
		Use: "cleanup ID", Hidden: true, Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := o.open()
			if err != nil {
				return err
			}
			rec, err := e.Containers.Lookup(args[0])
			if err != nil {
				return nil // already removed
			}
			if monitorID == "" {
				monitorID = strconv.Itoa(os.Getppid()) // a monitor of an older berth
			}
			return e.Containers.Cleanup(context.Background(), rec, monitorID)
		},
	}
	cmd.Flags().StringVar(&monitorID, "monitor-id", "", "the supervisor asking (State.MonitorID)")
	return cmd
}

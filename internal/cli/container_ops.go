package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/container/monitor"
	"github.com/berth-dev/berth/container/opts"
	"github.com/berth-dev/berth/internal/cli/format"
	"github.com/berth-dev/berth/internal/cli/runtimecli"
)

func printInspect(cmd *cobra.Command, docs []any, formatStr string) error {
	if formatStr != "" {
		var buf bytes.Buffer
		err := format.Table(&buf, formatStr, "", nil, docs)
		if err != nil && strings.Contains(err.Error(), "can't evaluate field") {
			// The docker CLI's fallback: templates may use the JSON keys ({{.Id}}), so run
			// them on the documents decoded as plain JSON maps.
			raw := make([]any, len(docs))
			for i, d := range docs {
				b, _ := json.Marshal(d)
				var v map[string]any
				json.Unmarshal(b, &v)
				raw[i] = v
			}
			buf.Reset()
			err = format.Table(&buf, formatStr, "", nil, raw)
		}
		if err != nil {
			return err
		}
		_, err = cmd.OutOrStdout().Write(buf.Bytes())
		return err
	}
	if docs == nil {
		docs = []any{}
	}
	return printJSONIndent(cmd, docs)
}

// dirSize is the bytes of regular files under dir (a container's upper dir).
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

func execCommand(o *berthOpts) *cobra.Command {
	var detach, interactive, tty, privileged bool
	var env, envFile []string
	var user, workdir string
	cmd := &cobra.Command{
		Use: "exec [OPTIONS] CONTAINER COMMAND [ARG...]", Short: "execute a command in a running container", Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, rec, err := o.container(args[0])
			if err != nil {
				return err
			}
			m := e.Containers
			var envs []string
			for _, f := range envFile {
				ev, err := opts.ParseEnvFile(f)
				if err != nil {
					return err
				}
				envs = append(envs, ev...)
			}
			ev, err := opts.ParseEnv(env)
			if err != nil {
				return err
			}
			envs = append(envs, ev...)
			p, err := m.ExecProcess(rec, container.ExecOptions{Cmd: args[1:], Env: envs, User: user, WorkingDir: workdir, Tty: tty, Privileged: privileged})
			if err != nil {
				var ce *container.CommandError
				if errors.As(err, &ce) {
					fmt.Fprintln(cmd.ErrOrStderr(), "berth:", ce.Msg)
					return runtimecli.ExitError{Code: ce.Code}
				}
				return err
			}
			f, err := os.CreateTemp("", "berth-exec-*.json")
			if err != nil {
				return err
			}
			defer os.Remove(f.Name())
			if err := json.NewEncoder(f).Encode(p); err != nil {
				f.Close()
				return err
			}
			f.Close()
			rargs := []string{"--root", m.RuntimeRoot, "exec", "--process", f.Name()}
			if detach {
				rargs = append(rargs, "--detach")
			}
			if !interactive {
				// Without -i the process gets no stdin, as docker's.
				devnull, err := os.Open(os.DevNull)
				if err == nil {
					defer devnull.Close()
					saved, _ := syscall.Dup(0)
					syscall.Dup3(int(devnull.Fd()), 0, 0)
					defer func() { syscall.Dup3(saved, 0, 0); syscall.Close(saved) }()
				}
			}
			m.Event(rec, "exec_start: "+strings.Join(args[1:], " "), nil)
			code := runtimecli.Main(append(rargs, rec.ID))
			if code != 0 {
				return runtimecli.ExitError{Code: code}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false)
	f.BoolVarP(&detach, "detach", "d", false, "detached mode: run command in the background")
	f.BoolVarP(&interactive, "interactive", "i", false, "keep STDIN open even if not attached")
	f.BoolVarP(&tty, "tty", "t", false, "allocate a pseudo-TTY")
	f.BoolVar(&privileged, "privileged", false, "give extended privileges to the command")
	f.StringArrayVarP(&env, "env", "e", nil, "set environment variables")
	f.StringArrayVar(&envFile, "env-file", nil, "read in a file of environment variables")
	f.StringVarP(&user, "user", "u", "", "username or UID (format: <name|uid>[:<group|gid>])")
	f.StringVarP(&workdir, "workdir", "w", "", "working directory inside the container")
	return cmd
}

func attachCommand(o *berthOpts) *cobra.Command {
	var noStdin bool
	var sigProxy bool
	cmd := &cobra.Command{
		Use: "attach [OPTIONS] CONTAINER", Short: "attach local standard input, output, and error streams to a running container", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, rec, err := o.container(args[0])
			if err != nil {
				return err
			}
			m := e.Containers
			if st := m.Status(rec); !st.Running() {
				return fmt.Errorf("you cannot attach to a stopped container, start it first")
			}
			stdin := rec.Config.OpenStdin && !noStdin
			att, err := m.Attach(rec.ID, monitor.Hello{Stdin: stdin, Stdout: true, Stderr: true})
			if err != nil {
				return err
			}
			defer att.Close()
			restore := rawTerminal(att, rec.Config.Tty)
			defer restore()
			if stdin {
				go att.SendStdin(os.Stdin)
			}
			ex, err := att.Stream(os.Stdout, os.Stderr)
			restore()
			if err != nil {
				return err
			}
			if ex.ExitCode != 0 {
				return runtimecli.ExitError{Code: ex.ExitCode}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&noStdin, "no-stdin", false, "do not attach STDIN")
	cmd.Flags().BoolVar(&sigProxy, "sig-proxy", true, "proxy all received signals to the process")
	return cmd
}

func topCommand(o *berthOpts) *cobra.Command {
	return &cobra.Command{
		Use: "top CONTAINER [ps OPTIONS]", Short: "display the running processes of a container", Args: cobra.MinimumNArgs(1),
		DisableFlagParsing: false,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, rec, err := o.container(args[0])
			if err != nil {
				return err
			}
			pids, err := e.Containers.Pids(rec)
			if err != nil {
				return err
			}
			psArgs := args[1:]
			if len(psArgs) == 0 {
				psArgs = []string{"-ef"}
			}
			out, err := exec.Command("ps", psArgs...).Output()
			if err != nil {
				return fmt.Errorf("ps %s: %w", strings.Join(psArgs, " "), err)
			}
			lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
			if len(lines) == 0 {
				return nil
			}
			pidCol := -1
			for i, h := range strings.Fields(lines[0]) {
				if h == "PID" {
					pidCol = i
				}
			}
			if pidCol < 0 {
				return fmt.Errorf("couldn't find PID field in ps output")
			}
			want := map[string]bool{}
			for _, p := range pids {
				want[strconv.Itoa(p)] = true
			}
			w := cmd.OutOrStdout()
			fmt.Fprintln(w, lines[0])
			for _, l := range lines[1:] {
				f := strings.Fields(l)
				if len(f) > pidCol && want[f[pidCol]] {
					fmt.Fprintln(w, l)
				}
			}
			return nil
		},
	}
}

// statsRow is what `stats --format` sees (docker's names).
type statsRow struct {
	Container, ID, Name, CPUPerc, MemUsage, MemPerc, NetIO, BlockIO, PIDs string
}

func statsCommand(o *berthOpts) *cobra.Command {
	var all, noStream, noTrunc bool
	var formatStr string
	cmd := &cobra.Command{
		Use: "stats [OPTIONS] [CONTAINER...]", Short: "display a live stream of container resource usage statistics",
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := o.open()
			if err != nil {
				return err
			}
			m := e.Containers
			pick := func() ([]*container.Record, error) {
				if len(args) > 0 {
					var recs []*container.Record
					for _, a := range args {
						r, err := m.Lookup(a)
						if err != nil {
							return nil, err
						}
						recs = append(recs, r)
					}
					return recs, nil
				}
				recs, err := m.List()
				if err != nil {
					return nil, err
				}
				var out []*container.Record
				for _, r := range recs {
					if st := m.Status(r); all || st.Running() {
						out = append(out, r)
					}
				}
				return out, nil
			}
			prev := map[string]container.Sample{}
			sample := func(recs []*container.Record) []any {
				var rows []any
				for _, r := range recs {
					s, err := m.Stats(r)
					row := statsRow{Container: r.ShortID(), ID: r.ShortID(), Name: r.Name,
						CPUPerc: "0.00%", MemUsage: "0B / 0B", MemPerc: "0.00%", NetIO: "0B / 0B", BlockIO: "0B / 0B", PIDs: "0"}
					if noTrunc {
						row.ID, row.Container = r.ID, r.ID
					}
					if err == nil {
						if p, ok := prev[r.ID]; ok {
							row.CPUPerc = fmt.Sprintf("%.2f%%", container.CPUPercent(p, s))
						}
						prev[r.ID] = s
						row.MemUsage = binSize(s.Mem) + " / " + binSize(s.MemLimit)
						if s.MemLimit > 0 {
							row.MemPerc = fmt.Sprintf("%.2f%%", float64(s.Mem)/float64(s.MemLimit)*100)
						}
						row.NetIO = format.Size(int64(s.NetRx)) + " / " + format.Size(int64(s.NetTx))
						row.BlockIO = format.Size(int64(s.BlkRead)) + " / " + format.Size(int64(s.BlkWrite))
						row.PIDs = strconv.FormatUint(s.Pids, 10)
					}
					rows = append(rows, row)
				}
				return rows
			}
			headers := map[string]string{"Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %",
				"MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS"}
			def := "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"
			recs, err := pick()
			if err != nil {
				return err
			}
			// CPU % needs two readings: take one, wait, take the one shown (docker does the same).
			sample(recs)
			select {
			case <-cmd.Context().Done():
				return nil
			case <-time.After(500 * time.Millisecond):
			}
			for {
				rows := sample(recs)
				if !noStream {
					fmt.Fprint(cmd.OutOrStdout(), "\033[2J\033[H")
				}
				if err := format.Table(cmd.OutOrStdout(), formatStr, def, headers, rows); err != nil {
					return err
				}
				if noStream {
					return nil
				}
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(time.Second):
				}
				if len(args) == 0 {
					if recs, err = pick(); err != nil {
						return err
					}
				}
			}
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "show all containers (default shows just running)")
	cmd.Flags().BoolVar(&noStream, "no-stream", false, "disable streaming stats and only pull the first result")
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "do not truncate output")
	cmd.Flags().StringVar(&formatStr, "format", "", "format output using a Go template")
	return cmd
}

// binSize is docker stats' memory rendering (KiB, MiB, GiB).
func binSize(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	v, i := float64(n), 0
	names := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	for v >= unit && i < len(names)-1 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.4g%s", v, names[i])
}

package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/container/files"
	"github.com/berth-dev/berth/container/monitor"
	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/image/archive"
	"github.com/berth-dev/berth/internal/cli/format"
)

// splitCpArg reads docker cp's CONTAINER:PATH; a local path with a colon needs a "/" or ".".
func splitCpArg(s string) (ctr, p string) {
	if strings.HasPrefix(s, "/") || strings.HasPrefix(s, ".") {
		return "", s
	}
	if c, p, ok := strings.Cut(s, ":"); ok {
		return c, p
	}
	return "", s
}

func cpCommand(o *berthOpts) *cobra.Command {
	var archiveMode, followLink, quiet bool
	cmd := &cobra.Command{
		Use:   "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n  berth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
		Short: "copy files/folders between a container and the local filesystem", Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			srcCtr, src := splitCpArg(args[0])
			dstCtr, dst := splitCpArg(args[1])
			switch {
			case srcCtr != "" && dstCtr != "":
				return errors.New("copying between containers is not supported")
			case srcCtr == "" && dstCtr == "":
				return errors.New("must specify at least one container source")
			}
			e, err := o.open()
			if err != nil {
				return err
			}
			m := e.Containers
			name := srcCtr + dstCtr
			rec, err := m.Lookup(name)
			if err != nil {
				return err
			}
			opt := files.CopyOpts{FollowLink: followLink, CopyInOpts: files.CopyInOpts{CopyUIDGID: archiveMode}}
			ctx := cmd.Context()
			return m.WithRootfs(ctx, rec, true, func(root string) error {
				if srcCtr != "" {
					if dst == "-" {
						_, err := files.CopyOut(ctx, root, src, cmd.OutOrStdout(), files.CopyOutOpts{FollowLink: followLink})
						return err
					}
					return files.CopyFromContainer(ctx, root, src, dst, opt)
				}
				if src == "-" {
					return files.CopyIn(ctx, root, dst, cmd.InOrStdin(), opt.CopyInOpts)
				}
				return files.CopyToContainer(ctx, root, src, dst, opt)
			})
		},
	}
	cmd.Flags().BoolVarP(&archiveMode, "archive", "a", false, "archive mode (copy all uid/gid information)")
	cmd.Flags().BoolVarP(&followLink, "follow-link", "L", false, "always follow symbol link in SRC_PATH")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "suppress progress output during copy")
	return cmd
}

func diffCommand(o *berthOpts) *cobra.Command {
	return &cobra.Command{
		Use: "diff CONTAINER", Short: "inspect changes to files or directories on a container's filesystem", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, rec, err := o.container(args[0])
			if err != nil {
				return err
			}
			changes, err := e.Containers.Changes(rec)
			if err != nil {
				return err
			}
			for _, c := range changes {
				fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", "CAD"[c.Kind:c.Kind+1], c.Path)
			}
			return nil
		},
	}
}

func exportCommand(o *berthOpts) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use: "export [OPTIONS] CONTAINER", Short: "export a container's filesystem as a tar archive", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var w io.Writer = cmd.OutOrStdout()
			if output == "" && w == os.Stdout && term.IsTerminal(int(os.Stdout.Fd())) {
				return errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")
			}
			e, rec, err := o.container(args[0])
			if err != nil {
				return err
			}
			if output != "" {
				f, err := os.CreateTemp(dirOf(output), ".berth-export-*")
				if err != nil {
					return err
				}
				defer os.Remove(f.Name())
				if err := e.Containers.Export(cmd.Context(), rec, f); err != nil {
					f.Close()
					return err
				}
				if err := f.Close(); err != nil {
					return err
				}
				return os.Rename(f.Name(), output)
			}
			return e.Containers.Export(cmd.Context(), rec, w)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to a file, instead of STDOUT")
	return cmd
}

func dirOf(p string) string {
	if i := strings.LastIndex(p, "/"); i >= 0 {
		if i == 0 {
			return "/"
		}
		return p[:i]
	}
	return "."
}

func commitCommand(o *berthOpts) *cobra.Command {
	var author, message string
	var changes []string
	var pause bool
	cmd := &cobra.Command{
		Use: "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]", Short: "create a new image from a container's changes", Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, rec, err := o.container(args[0])
			if err != nil {
				return err
			}
			m := e.Containers
			var ref image.Reference
			if len(args) == 2 {
				if ref, err = image.ParseReference(args[1]); err != nil {
					return err
				}
			}
			base, err := e.Images.Resolve(rec.Image)
			if err != nil {
				return fmt.Errorf("the image of container %s is gone: %w", rec.Name, err)
			}
			baseCfg, err := e.Images.Config(base)
			if err != nil {
				return err
			}
			// docker: the new image's config is the container's, with --change applied.
			var rc v1.Config
			b, _ := json.Marshal(rec.Config)
			json.Unmarshal(b, &rc)
			rc.Image = ""
			if err := archive.ApplyChanges(&rc, changes); err != nil {
				return err
			}
			if pause {
				if st := m.Status(rec); st.Status == "running" {
					if err := m.Pause(rec); err == nil {
						defer m.Unpause(rec)
					}
				}
			}
			pr, pw := io.Pipe()
			go func() { pw.CloseWithError(m.Diff(cmd.Context(), rec, pw)) }()
			img, err := archive.Commit(cmd.Context(), e.Images, e.Snapshots, base, baseCfg, pr, archive.CommitOptions{
				Config: rc, CreatedBy: container.Command(rec), Comment: message, Author: author, Ref: ref,
			})
			if err != nil {
				return err
			}
			m.Event(rec, "commit", nil)
			fmt.Fprintln(cmd.OutOrStdout(), img.ID())
			return nil
		},
	}
	cmd.Flags().StringVarP(&author, "author", "a", "", `author (e.g., "John Hannibal Smith <hannibal@a-team.com>")`)
	cmd.Flags().StringVarP(&message, "message", "m", "", "commit message")
	cmd.Flags().StringArrayVarP(&changes, "change", "c", nil, "apply Dockerfile instruction to the created image")
	cmd.Flags().BoolVarP(&pause, "pause", "p", true, "pause container during commit")
	return cmd
}

func containerPruneCommand(o *berthOpts) *cobra.Command {
	var force bool
	var filters []string
	cmd := &cobra.Command{
		Use: "prune [OPTIONS]", Short: "remove all stopped containers", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := o.open()
			if err != nil {
				return err
			}
			ids, freed, err := pruneContainers(cmd, e.Containers, filters)
			if err != nil {
				return err
			}
			if len(ids) > 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "Deleted Containers:")
				for _, id := range ids {
					fmt.Fprintln(cmd.OutOrStdout(), id)
				}
				fmt.Fprintln(cmd.OutOrStdout())
			}
			fmt.Fprintln(cmd.OutOrStdout(), "Total reclaimed space:", format.Size(freed))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "provide filter values (e.g. 'until=<timestamp>', 'label=...')")
	return cmd
}

// pruneContainers removes every stopped container matching the filters (until=, label=).
func pruneContainers(cmd *cobra.Command, m *container.Manager, filters []string) ([]string, int64, error) {
	var until time.Time
	var labels []string
	for _, f := range filters {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "until":
			t, err := parseTimeArg(v, time.Now())
			if err != nil {
				return nil, 0, err
			}
			until = t
		case "label":
			labels = append(labels, v)
		default:
			return nil, 0, fmt.Errorf("invalid filter '%s'", k)
		}
	}
	recs, err := m.List()
	if err != nil {
		return nil, 0, err
	}
	var ids []string
	var freed int64
	for _, rec := range recs {
		st := m.Status(rec)
		if st.Running() || st.Status == "restarting" {
			continue
		}
		if !until.IsZero() && !rec.Created.Before(until) {
			continue
		}
		ok := true
		for _, l := range labels {
			k, v, hasV := strings.Cut(l, "=")
			got, found := rec.Config.Labels[k]
			if !found || hasV && got != v {
				ok = false
			}
		}
		if !ok {
			continue
		}
		size := dirSize(m.UpperDir(rec.ID))
		if err := m.Remove(cmd.Context(), rec, false, false); err != nil {
			fmt.Fprintln(cmd.ErrOrStderr(), "berth:", err)
			continue
		}
		ids = append(ids, rec.ID)
		freed += size
	}
	return ids, freed, nil
}

func eventsCommand(o *berthOpts) *cobra.Command {
	var since, until, formatStr string
	var filters []string
	cmd := &cobra.Command{
		Use: "events [OPTIONS]", Short: "get real time events from berth", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := o.open()
			if err != nil {
				return err
			}
			now := time.Now()
			s, err := parseTimeArg(since, now)
			if err != nil {
				return err
			}
			u, err := parseTimeArg(until, now)
			if err != nil {
				return err
			}
			if s.IsZero() && since == "" {
				s = now // docker: without --since, only new events
			}
			want := map[string][]string{}
			for _, f := range filters {
				k, v, ok := strings.Cut(f, "=")
				if !ok {
					return fmt.Errorf("bad format of filter (expected name=value): %s", f)
				}
				want[k] = append(want[k], v)
			}
			match := func(ev monitor.Event) bool {
				for k, vs := range want {
					ok := false
					for _, v := range vs {
						switch k {
						case "type":
							ok = ok || ev.Type == v
						case "event":
							ok = ok || ev.Action == v || strings.HasPrefix(ev.Action, v+":")
						case "container":
							ok = ok || strings.HasPrefix(ev.ID, v) || ev.Attributes["name"] == v
						case "image":
							ok = ok || ev.Attributes["image"] == v
						case "label":
							lk, lv, _ := strings.Cut(v, "=")
							ok = ok || ev.Attributes[lk] == lv
						}
					}
					if !ok {
						return false
					}
				}
				return true
			}
			follow := u.IsZero() || u.After(now)
			w := cmd.OutOrStdout()
			return e.Containers.Events(cmd.Context(), s, u, follow, func(ev monitor.Event) error {
				if !match(ev) {
					return nil
				}
				if formatStr != "" {
					return format.Table(w, formatStr, "", nil, []any{ev})
				}
				var attrs []string
				for _, k := range sortedKeys(ev.Attributes) {
					attrs = append(attrs, k+"="+ev.Attributes[k])
				}
				_, err := fmt.Fprintf(w, "%s %s %s %s (%s)\n", time.Unix(0, ev.Time).Format("2006-01-02T15:04:05.000000000-07:00"),
					ev.Type, ev.Action, ev.ID, strings.Join(attrs, ", "))
				return err
			})
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "show all events created since timestamp")
	cmd.Flags().StringVar(&until, "until", "", "stream events until this timestamp")
	cmd.Flags().StringVar(&formatStr, "format", "", "format the output using the given Go template")
	cmd.Flags().StringArrayVarP(&filters, "filter", "f", nil, "filter output based on conditions provided")
	return cmd
}

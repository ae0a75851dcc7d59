package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/cli/format"
	"github.com/berth-dev/berth/internal/cli/runtimecli"
)

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func volumeCommand(o *berthOpts) *cobra.Command {
	c := &cobra.Command{Use: "volume", Short: "manage volumes"}
	var labels, vopts []string
	var driver string
	create := &cobra.Command{
		Use: "create [OPTIONS] [VOLUME]", Short: "create a volume", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := o.open()
			if err != nil {
				return err
			}
			if driver != "" && driver != "local" {
				return fmt.Errorf("volume driver %q is not supported: use local", driver)
			}
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			l, o2 := kvMap(labels), kvMap(vopts)
			if len(o2) > 0 {
				return fmt.Errorf("volume options (-o) are not supported by the local driver in berth")
			}
			v, err := e.Volumes.Create(cmd.Context(), name, l, nil, false)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), v.Name)
			return nil
		},
	}
	create.Flags().StringArrayVarP(&labels, "label", "l", nil, "set metadata for a volume")
	create.Flags().StringArrayVarP(&vopts, "opt", "o", nil, "set driver specific options")
	create.Flags().StringVarP(&driver, "driver", "d", "local", "specify volume driver name")

	var quiet bool
	var formatStr string
	var filters []string
	ls := &cobra.Command{
		Use: "ls [OPTIONS]", Aliases: []string{"list"}, Short: "list volumes", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := o.open()
			if err != nil {
				return err
			}
			vols, err := e.Volumes.List()
			if err != nil {
				return err
			}
			var rows []any
			for _, v := range vols {
				keep := true
				for _, f := range filters {
					k, val, _ := strings.Cut(f, "=")
					switch k {
					case "name":
						keep = keep && strings.Contains(v.Name, val)
					case "label":
						keep = keep && labelMatch(v.Labels, val)
					case "dangling":
						users, _ := e.Volumes.Users(v.Name)
						keep = keep && (len(users) == 0) == (val == "true" || val == "1")
					case "driver":
						keep = keep && val == "local"
					default:
						return fmt.Errorf("invalid filter '%s'", k)
					}
				}
				if !keep {
					continue
				}
				if quiet {
					fmt.Fprintln(cmd.OutOrStdout(), v.Name)
					continue
				}
				rows = append(rows, volumeRow{Driver: "local", Name: v.Name, Mountpoint: v.Mountpoint, Scope: "local",
					Labels: joinLabels(v.Labels), CreatedAt: v.CreatedAt.Format("2006-01-02 15:04:05 -0700 MST")})
			}
			if quiet {
				return nil
			}
			return format.Table(cmd.OutOrStdout(), formatStr, "table {{.Driver}}\t{{.Name}}", map[string]string{
				"Driver": "DRIVER", "Name": "VOLUME NAME", "Mountpoint": "MOUNTPOINT", "Scope": "SCOPE", "Labels": "LABELS", "CreatedAt": "CREATED AT",
			}, rows)
		},
	}
	ls.Flags().BoolVarP(&quiet, "quiet", "q", false, "only display volume names")
	ls.Flags().StringVar(&formatStr, "format", "", "format output using a Go template")
	ls.Flags().StringArrayVarP(&filters, "filter", "f", nil, "provide filter values (e.g. 'dangling=true')")

	var inspFormat string
	inspect := &cobra.Command{
		Use: "inspect [OPTIONS] VOLUME [VOLUME...]", Short: "display detailed information on one or more volumes", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := o.open()
			if err != nil {
				return err
			}
			var docs []any
			failed := false
			for _, a := range args {
				v, err := e.Volumes.Get(a)
				if err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "berth:", err)
					failed = true
					continue
				}
				docs = append(docs, v.API())
			}
			if err := printInspect(cmd, docs, inspFormat); err != nil {
				return err
			}
			if failed {
				return runtimecli.ExitError{Code: 1}
			}
			return nil
		},
	}
	inspect.Flags().StringVarP(&inspFormat, "format", "f", "", "format output using a Go template")

	var force bool
	rm := &cobra.Command{
		Use: "rm [OPTIONS] VOLUME [VOLUME...]", Aliases: []string{"remove"}, Short: "remove one or more volumes", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := o.open()
			if err != nil {
				return err
			}
			failed := false
			for _, a := range args {
				if err := e.Volumes.Remove(cmd.Context(), a, force); err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "berth:", err)
					failed = true
					continue
				}
				fmt.Fprintln(cmd.OutOrStdout(), a)
			}
			if failed {
				return runtimecli.ExitError{Code: 1}
			}
			return nil
		},
	}
	rm.Flags().BoolVarP(&force, "force", "f", false, "force the removal of one or more volumes")

	var all, pforce bool
	var pfilters []string
	prune := &cobra.Command{
		Use: "prune [OPTIONS]", Short: "remove unused local volumes", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := o.open()
			if err != nil {
				return err
			}
			removed, freed, err := e.Volumes.Prune(cmd.Context(), all, pfilters)
			if err != nil {
				return err
			}
			if len(removed) > 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "Deleted Volumes:")
				for _, n := range removed {
					fmt.Fprintln(cmd.OutOrStdout(), n)
				}
				fmt.Fprintln(cmd.OutOrStdout())
			}
			fmt.Fprintln(cmd.OutOrStdout(), "Total reclaimed space:", format.Size(freed))
			return nil
		},
	}
	prune.Flags().BoolVarP(&all, "all", "a", false, "remove all unused volumes, not just anonymous ones")
	prune.Flags().BoolVarP(&pforce, "force", "f", false, "do not prompt for confirmation")
	prune.Flags().StringArrayVar(&pfilters, "filter", nil, "provide filter values (e.g. 'label=<label>')")
	c.AddCommand(create, ls, inspect, rm, prune)
	return c
}

type volumeRow struct{ Driver, Name, Mountpoint, Scope, Labels, CreatedAt string }

func kvMap(kvs []string) map[string]string {
	if len(kvs) == 0 {
		return nil
	}
	m := map[string]string{}
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

func joinLabels(l map[string]string) string {
	var out []string
	for _, k := range sortedKeys(l) {
		out = append(out, k+"="+l[k])
	}
	return strings.Join(out, ",")
}

func systemPruneCommand(o *berthOpts) *cobra.Command {
	var all, force, volumes bool
	cmd := &cobra.Command{
		Use: "prune [OPTIONS]", Short: "remove unused data (stopped containers, unused networks, dangling images; volumes with --volumes)", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := o.open()
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			ids, freed, err := pruneContainers(cmd, e.Containers, nil)
			if err != nil {
				return err
			}
			if len(ids) > 0 {
				fmt.Fprintln(w, "Deleted Containers:")
				for _, id := range ids {
					fmt.Fprintln(w, id)
				}
				fmt.Fprintln(w)
			}
			nets, err := pruneNetworks(cmd, e)
			if err != nil {
				return err
			}
			if len(nets) > 0 {
				fmt.Fprintln(w, "Deleted Networks:")
				for _, n := range nets {
					fmt.Fprintln(w, n)
				}
				fmt.Fprintln(w)
			}
			if volumes {
				removed, vfreed, err := e.Volumes.Prune(cmd.Context(), false, nil)
				if err != nil {
					return err
				}
				if len(removed) > 0 {
					fmt.Fprintln(w, "Deleted Volumes:")
					for _, n := range removed {
						fmt.Fprintln(w, n)
					}
					fmt.Fprintln(w)
				}
				freed += vfreed
			}
			imgs, ifreed, err := e.PruneImages(cmd.Context(), all)
			if err != nil {
				return err
			}
			if len(imgs) > 0 {
				fmt.Fprintln(w, "Deleted Images:")
				for _, id := range imgs {
					fmt.Fprintln(w, "deleted: "+id)
				}
				fmt.Fprintln(w)
			}
			fmt.Fprintln(w, "Total reclaimed space:", format.Size(freed+ifreed))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "remove all unused images not just dangling ones")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	cmd.Flags().BoolVar(&volumes, "volumes", false, "prune anonymous volumes")
	return cmd
}

// restoreCommand brings containers back after a reboot: those with --restart always, and
// unless-stopped ones the user did not stop. A boot unit calls it (contrib/berth.service).
func restoreCommand(o *berthOpts) *cobra.Command {
	return &cobra.Command{
		Use: "restore", Short: "start the containers whose restart policy asks for it (run at boot)", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := o.open()
			if err != nil {
				return err
			}
			m := e.Containers
			recs, err := m.List()
			if err != nil {
				return err
			}
			failed := false
			for _, rec := range recs {
				if !m.WantsRestore(rec) {
					continue
				}
				if err := startDetached(context.Background(), m, rec); err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "berth: restore %s: %v\n", rec.Name, err)
					failed = true
					continue
				}
				fmt.Fprintln(cmd.OutOrStdout(), rec.Name)
			}
			if failed {
				return runtimecli.ExitError{Code: 1}
			}
			return nil
		},
	}
}

// labelMatch is docker's label filter: "KEY" (present) or "KEY=VALUE".
func labelMatch(labels map[string]string, filter string) bool {
	k, v, hasV := strings.Cut(filter, "=")
	got, ok := labels[k]
	return ok && (!hasV || got == v)
}

package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/internal/cli/format"
	"github.com/berth-dev/berth/internal/cli/runtimecli"
)

// imageRow is what --format templates of `images` see (docker's field names).
type imageRow struct {
	Repository   string
	Tag          string
	Digest       string
	ID           string
	CreatedSince string
	CreatedAt    string
	Size         string
}

func imagesCommand(o *berthOpts, use string) *cobra.Command {
	var quiet, all, digests, noTrunc bool
	var formatStr string
	var filters []string
	cmd := &cobra.Command{
		Use: use + " [OPTIONS] [REPOSITORY[:TAG]]", Short: "list images", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := o.open()
			if err != nil {
				return err
			}
			rows, err := e.ListImages(all)
			if err != nil {
				return err
			}
			match, err := imageFilter(filters, args, func(q string) (time.Time, error) {
				img, err := e.Images.Resolve(q)
				if err != nil {
					return time.Time{}, err
				}
				return img.Created, nil
			})
			if err != nil {
				return err
			}
			var out []any
			seen := map[string]bool{}
			for _, r := range rows {
				if !match(r.Ref, r.Image.Created) {
					continue
				}
				id := r.Image.ShortID()
				if noTrunc {
					id = r.Image.ID()
				}
				if quiet {
					if !seen[id] {
						seen[id] = true
						fmt.Fprintln(cmd.OutOrStdout(), id)
					}
					continue
				}
				row := imageRow{Repository: "<none>", Tag: "<none>", Digest: "<none>", ID: id,
					CreatedSince: format.Since(r.Created), CreatedAt: r.Created.Local().Format("2006-01-02 15:04:05 -0700 MST"),
					Size: format.Size(r.Size)}
				if !r.Ref.IsZero() {
					row.Repository = r.Ref.FamiliarName()
					if r.Ref.Tag() != "" {
						row.Tag = r.Ref.Tag()
					}
					if r.Ref.Digest() != "" {
						row.Digest = r.Ref.Digest().String()
					}
				}
				if r.Image.Manifest != "" && row.Digest == "<none>" {
					row.Digest = r.Image.Manifest.String()
				}
				out = append(out, row)
			}
			if quiet {
				return nil
			}
			def := "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
			if digests {
				def = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
			}
			headers := map[string]string{"Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST", "ID": "IMAGE ID",
				"CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE"}
			return format.Table(cmd.OutOrStdout(), formatStr, def, headers, out)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&quiet, "quiet", "q", false, "only show image IDs")
	f.BoolVarP(&all, "all", "a", false, "show all images (default hides intermediate images)")
	f.BoolVar(&digests, "digests", false, "show digests")
	f.BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	f.StringVar(&formatStr, "format", "", "format output with a Go template, 'table ...' or 'json'")
	f.StringArrayVarP(&filters, "filter", "f", nil, "filter output (reference=, dangling=, before=IMAGE, since=IMAGE)")
	return cmd
}

// imageFilter implements docker's image filters and the REPOSITORY[:TAG] argument.
func imageFilter(filters, args []string, resolveCreated func(string) (time.Time, error)) (func(image.Reference, time.Time) bool, error) {
	var checks []func(image.Reference, time.Time) bool
	refMatch := func(pattern string) func(image.Reference, time.Time) bool {
		return func(r image.Reference, _ time.Time) bool {
			if r.IsZero() {
				return false
			}
			name, tag := r.FamiliarName(), r.Tag()
			// The tag is after the last ":" of the last path component (a registry
			// host:port has a ":" too).
			p, ptag, hasTag := pattern, "", false
			if i := strings.LastIndex(pattern, ":"); i > strings.LastIndex(pattern, "/") {
				p, ptag, hasTag = pattern[:i], pattern[i+1:], true
			}
			if ok, _ := pathMatch(p, name); !ok {
				return false
			}
			return !hasTag || ptag == tag
		}
	}
	for _, a := range args {
		checks = append(checks, refMatch(a))
	}
	for _, f := range filters {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("bad filter %q: use KEY=VALUE", f)
		}
		switch k {
		case "reference":
			checks = append(checks, refMatch(v))
		case "dangling":
			want := v == "true"
			checks = append(checks, func(r image.Reference, _ time.Time) bool { return r.IsZero() == want })
		case "before", "since":
			pivot, err := resolveCreated(v)
			if err != nil {
				return nil, fmt.Errorf("filter %s=%s: %w", k, v, err)
			}
			before := k == "before"
			checks = append(checks, func(_ image.Reference, t time.Time) bool {
				if before {
					return t.Before(pivot)
				}
				return t.After(pivot)
			})
		default:
			return nil, fmt.Errorf("filter %q is not supported: use reference=, dangling=, before= or since=", k)
		}
	}
	return func(r image.Reference, t time.Time) bool {
		for _, c := range checks {
			if !c(r, t) {
				return false
			}
		}
		return true
	}, nil
}

func tagCommand(o *berthOpts) *cobra.Command {
	return &cobra.Command{
		Use: "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]", Short: "create a tag that refers to an image", Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := o.open()
			if err != nil {
				return err
			}
			img, err := e.Images.Resolve(args[0])
			if err != nil {
				return err
			}
			ref, err := image.ParseReference(args[1])
			if err != nil {
				return err
			}
			return e.Images.Tag(cmd.Context(), ref, img.Manifest)
		},
	}
}

func rmiCommand(o *berthOpts, use string) *cobra.Command {
	var force, noPrune bool
	cmd := &cobra.Command{
		Use: use + " [OPTIONS] IMAGE [IMAGE...]", Short: "remove images", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := o.open()
			if err != nil {
				return err
			}
			var failed error
			for _, a := range args {
				lines, err := e.RemoveImage(cmd.Context(), a, force, noPrune)
				for _, l := range lines {
					fmt.Fprintln(cmd.OutOrStdout(), l)
				}
				if err != nil {
					failed = err
					fmt.Fprintln(cmd.ErrOrStderr(), "Error response from berth:", err)
				}
			}
			if failed != nil {
				return runtimecli.ExitError{Code: 1}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "remove an image that several repositories name")
	cmd.Flags().BoolVar(&noPrune, "no-prune", false, "do not delete untagged parents")
	return cmd
}

type historyRow struct {
	ID, CreatedSince, CreatedAt, CreatedBy, Size, Comment string
}

func historyCommand(o *berthOpts) *cobra.Command {
	var noTrunc, quiet, human bool
	var formatStr string
	cmd := &cobra.Command{
		Use: "history [OPTIONS] IMAGE", Short: "show the history of an image", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := o.open()
			if err != nil {
				return err
			}
			rows, err := e.History(args[0])
			if err != nil {
				return err
			}
			var out []any
			for _, r := range rows {
				id := r.ID
				if !noTrunc && strings.HasPrefix(id, "sha256:") {
					id = strings.TrimPrefix(id, "sha256:")[:12]
				}
				if quiet {
					fmt.Fprintln(cmd.OutOrStdout(), id)
					continue
				}
				by := strings.ReplaceAll(r.CreatedBy, "\t", " ")
				if !noTrunc {
					by = format.Truncate(by, 45)
				}
				size := format.Size(r.Size)
				if !human {
					size = fmt.Sprint(r.Size)
				}
				out = append(out, historyRow{ID: id, CreatedSince: format.Since(r.Created), CreatedAt: r.Created.Format(time.RFC3339),
					CreatedBy: by, Size: size, Comment: r.Comment})
			}
			if quiet {
				return nil
			}
			headers := map[string]string{"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
				"CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"}
			return format.Table(cmd.OutOrStdout(), formatStr,
				"table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}", headers, out)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	f.BoolVarP(&quiet, "quiet", "q", false, "only show image IDs")
	f.BoolVarP(&human, "human", "H", true, "print sizes and dates in human readable format")
	f.StringVar(&formatStr, "format", "", "format output with a Go template, 'table ...' or 'json'")
	return cmd
}

func inspectImageCommand(o *berthOpts) *cobra.Command {
	var formatStr string
	cmd := &cobra.Command{
		Use: "inspect [OPTIONS] IMAGE [IMAGE...]", Short: "show detailed information on images", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := o.open()
			if err != nil {
				return err
			}
			var docs []any
			for _, a := range args {
				d, err := e.Inspect(a)
				if err != nil {
					return fmt.Errorf("no such image: %s", a)
				}
				docs = append(docs, d)
			}
			if formatStr != "" {
				return format.Table(cmd.OutOrStdout(), formatStr, "", nil, docs)
			}
			return printJSONIndent(cmd, docs)
		},
	}
	cmd.Flags().StringVarP(&formatStr, "format", "f", "", "format output with a Go template")
	return cmd
}

func pruneImagesCommand(o *berthOpts) *cobra.Command {
	var all, force bool
	cmd := &cobra.Command{
		Use: "prune [OPTIONS]", Short: "remove unused images", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := o.open()
			if err != nil {
				return err
			}
			ids, freed, err := e.PruneImages(cmd.Context(), all)
			if err != nil {
				return err
			}
			if len(ids) > 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "Deleted Images:")
				for _, id := range ids {
					fmt.Fprintln(cmd.OutOrStdout(), "deleted:", id)
				}
				fmt.Fprintln(cmd.OutOrStdout())
			}
			fmt.Fprintln(cmd.OutOrStdout(), "Total reclaimed space:", format.Size(freed))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "remove all unused images, not just dangling ones")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	return cmd
}

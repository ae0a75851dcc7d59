package cli

import (
	"encoding/json"
	"fmt"
	"path"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/cli/format"
)

type dfRow struct {
	Type, TotalCount, Active, Size, Reclaimable string
}

func dfCommand(o *berthOpts) *cobra.Command {
	var formatStr string
	cmd := &cobra.Command{
		Use: "df", Short: "show berth disk usage", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := o.open()
			if err != nil {
				return err
			}
			du, err := e.Usage()
			if err != nil {
				return err
			}
			pct := ""
			if du.ImagesSize > 0 {
				pct = fmt.Sprintf(" (%d%%)", du.Reclaimable*100/du.ImagesSize)
			}
			rows := []any{
				dfRow{"Images", fmt.Sprint(du.Images), fmt.Sprint(du.ActiveImages), format.Size(du.ImagesSize), format.Size(du.Reclaimable) + pct},
				dfRow{"Containers", "0", "0", "0B", "0B"},
				dfRow{"Local Volumes", "0", "0", "0B", "0B"},
				dfRow{"Build Cache", "0", "0", "0B", "0B"},
			}
			headers := map[string]string{"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE", "Reclaimable": "RECLAIMABLE"}
			return format.Table(cmd.OutOrStdout(), formatStr, "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}", headers, rows)
		},
	}
	cmd.Flags().StringVar(&formatStr, "format", "", "format output with a Go template, 'table ...' or 'json'")
	return cmd
}

func checkCommand(o *berthOpts) *cobra.Command {
	return &cobra.Command{
		Use: "check", Short: "verify the store: blob digests, records, references, unpacked layers", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := o.open()
			if err != nil {
				return err
			}
			problems, err := e.Check(cmd.Context())
			if err != nil {
				return err
			}
			for _, p := range problems {
				fmt.Fprintln(cmd.OutOrStdout(), p)
			}
			if len(problems) > 0 {
				return fmt.Errorf("%d problem(s) found in %s", len(problems), e.Root)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "store is consistent")
			return nil
		},
	}
}

func printJSONIndent(cmd *cobra.Command, v any) error {
	b, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(cmd.OutOrStdout(), string(b))
	return err
}

// pathMatch is shell-glob matching of repository names (docker's reference filter).
func pathMatch(pattern, name string) (bool, error) { return path.Match(pattern, name) }

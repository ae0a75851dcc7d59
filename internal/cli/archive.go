package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/image/archive"
	"github.com/berth-dev/berth/internal/engine"
)

func importCommand(o *berthOpts) *cobra.Command {
	var changes []string
	var message, platform string
	cmd := &cobra.Command{
		Use: "import [OPTIONS] file|- [REPOSITORY[:TAG]]", Short: "create an image from a rootfs tarball", Args: rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if platform != "" {
				return errors.New("--platform is not supported by import yet: the image gets the host's platform")
			}
			var ref image.Reference
			if len(args) == 2 {
				var err error
				if ref, err = image.ParseReference(args[1]); err != nil {
					return err
				}
			}
			in, err := openInput(cmd, args[0])
			if err != nil {
				return err
			}
			defer in.Close()
			if message == "" {
				message = archive.DefaultImportMessage
			}
			e, err := o.open()
			if err != nil {
				return err
			}
			img, err := archive.Import(cmd.Context(), e.Images, e.Snapshots, in, changes, ref, message)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), img.ID())
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&changes, "change", "c", nil, "apply a Dockerfile instruction (CMD, ENTRYPOINT, ENV, WORKDIR, USER, EXPOSE, LABEL, VOLUME, STOPSIGNAL)")
	cmd.Flags().StringVarP(&message, "message", "m", "", "commit message")
	cmd.Flags().StringVar(&platform, "platform", "", "not supported yet")
	return cmd
}

func loadCommand(o *berthOpts) *cobra.Command {
	var input string
	var quiet bool
	cmd := &cobra.Command{
		Use: "load [OPTIONS]", Short: "load images from a docker-archive or OCI layout tar (stdin by default)", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := input
			if name == "" {
				name = "-"
			}
			in, err := openInput(cmd, name)
			if err != nil {
				return err
			}
			defer in.Close()
			e, err := o.open()
			if err != nil {
				return err
			}
			loaded, err := archive.Load(cmd.Context(), e.Images, e.Snapshots, in)
			if err != nil {
				return err
			}
			if quiet {
				return nil
			}
			for _, l := range loaded {
				if len(l.Tags) == 0 {
					fmt.Fprintln(cmd.OutOrStdout(), "Loaded image ID:", l.Image.ID())
				}
				for _, t := range l.Tags {
					fmt.Fprintln(cmd.OutOrStdout(), "Loaded image:", t.Familiar())
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&input, "input", "i", "", "read from this file instead of stdin")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "suppress the load output")
	return cmd
}

func saveCommand(o *berthOpts) *cobra.Command {
	var output, fmtName string
	cmd := &cobra.Command{
		Use: "save [OPTIONS] IMAGE [IMAGE...]", Short: "save images to a tar archive (stdout by default)", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := o.open()
			if err != nil {
				return err
			}
			if output == "" {
				if f, ok := cmd.OutOrStdout().(*os.File); ok && isTerminal(f) {
					return errors.New("cowardly refusing to save to a terminal: use -o or redirect stdout")
				}
				return archive.Save(cmd.Context(), e.Images, cmd.OutOrStdout(), args, fmtName)
			}
			return saveToFile(cmd, e, output, args, fmtName)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to this file instead of stdout")
	cmd.Flags().StringVar(&fmtName, "format", archive.FormatDocker, "docker (docker-archive) or oci (OCI image layout)")
	return cmd
}

// saveToFile writes through a temp file and renames it, so a failed or killed save never
// leaves a truncated archive under the requested name.
func saveToFile(cmd *cobra.Command, e *engine.Engine, output string, refs []string, fmtName string) error {
	tmp, err := os.CreateTemp(filepath.Dir(output), ".berth-save-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := archive.Save(cmd.Context(), e.Images, tmp, refs, fmtName); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), output)
}

func openInput(cmd *cobra.Command, name string) (io.ReadCloser, error) {
	if name == "-" {
		return io.NopCloser(cmd.InOrStdin()), nil
	}
	return os.Open(name)
}

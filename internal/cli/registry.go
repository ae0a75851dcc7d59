package cli

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/internal/cli/format"
	"github.com/berth-dev/berth/internal/engine"
	"github.com/berth-dev/berth/registry"
)

// openRef opens the data root and parses the image reference a command names.
func (o *berthOpts) openRef(arg string) (*engine.Engine, image.Reference, error) {
	ref, err := image.ParseReference(arg)
	if err != nil {
		return nil, image.Reference{}, err
	}
	e, err := o.open()
	return e, ref, err
}

func isTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// withProgress runs fn with a progress writer rendered to out like docker's CLI.
func withProgress(out io.Writer, quiet bool, fn func(w io.Writer) error) error {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	isTerm := false
	if f, ok := out.(*os.File); ok {
		isTerm = isTerminal(f)
	}
	go func() { done <- format.Progress(out, pr, isTerm, quiet) }()
	err := fn(pw)
	pw.Close()
	<-done
	return err
}

func pullCommand(o *berthOpts) *cobra.Command {
	var quiet bool
	var platform string
	cmd := &cobra.Command{
		Use: "pull [OPTIONS] NAME[:TAG|@DIGEST]", Short: "download an image from a registry", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, ref, err := o.openRef(args[0])
			if err != nil {
				return err
			}
			ro := registry.Options{Insecure: o.insecure}
			if platform != "" {
				if ro.Platform, err = image.ParsePlatform(platform); err != nil {
					return err
				}
			}
			err = withProgress(cmd.OutOrStdout(), quiet, func(w io.Writer) error {
				ro.Progress = w
				_, err := registry.Pull(cmd.Context(), e.Images, e.Snapshots, ref, ro)
				return err
			})
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), ref.String())
			return nil
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "suppress verbose output")
	cmd.Flags().StringVar(&platform, "platform", "", "platform of a multi-platform image (os/arch[/variant]); default the host's")
	return cmd
}

func pushCommand(o *berthOpts) *cobra.Command {
	var quiet bool
	cmd := &cobra.Command{
		Use: "push [OPTIONS] NAME[:TAG]", Short: "upload an image to a registry", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, ref, err := o.openRef(args[0])
			if err != nil {
				return err
			}
			return withProgress(cmd.OutOrStdout(), quiet, func(w io.Writer) error {
				return registry.Push(cmd.Context(), e.Images, ref, registry.Options{Insecure: o.insecure, Progress: w})
			})
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "suppress verbose output")
	return cmd
}

func loginCommand(o *berthOpts) *cobra.Command {
	var user, password string
	var passwordStdin bool
	cmd := &cobra.Command{
		Use: "login [OPTIONS] [SERVER]", Short: "log in to a registry (credentials go to ~/.docker/config.json)", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := "docker.io"
			if len(args) == 1 {
				server = args[0]
			}
			if passwordStdin {
				line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if err != nil && err != io.EOF {
					return err
				}
				password = strings.TrimRight(line, "\r\n")
			}
			if user == "" || password == "" {
				return fmt.Errorf("login needs --username and --password (or --password-stdin)")
			}
			cfg, err := loadConfig()
			if err != nil {
				return err
			}
			ro := registry.Options{Insecure: append(o.insecure, cfg.InsecureRegistries...)}
			if err := registry.Login(cmd.Context(), server, user, password, ro); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "Login Succeeded")
			return nil
		},
	}
	cmd.Flags().StringVarP(&user, "username", "u", "", "username")
	cmd.Flags().StringVarP(&password, "password", "p", "", "password")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "take the password from stdin")
	return cmd
}

func logoutCommand() *cobra.Command {
	return &cobra.Command{
		Use: "logout [SERVER]", Short: "log out from a registry", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := "docker.io"
			if len(args) == 1 {
				server = args[0]
			}
			if err := registry.Logout(server); err != nil && err != registry.ErrNotLoggedIn {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Removing login credentials for %s\n", server)
			return nil
		},
	}
}

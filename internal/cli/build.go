package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/build"
	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/internal/cli/runtimecli"
)

func buildCommand(o *berthOpts) *cobra.Command {
	var tags, buildArgs, labels []string
	var file, target, network, progress, iidfile, platform string
	var noCache, pull, quiet bool
	cmd := &cobra.Command{
		Use: "build [OPTIONS] PATH | URL | -", Short: "build an image from a Dockerfile", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch progress {
			case "auto", "plain", "tty", "":
			case "quiet":
				quiet = true
			default:
				return fmt.Errorf("invalid --progress %q: use auto, plain or quiet", progress)
			}
			if platform != "" {
				p, err := image.ParsePlatform(platform)
				if err != nil {
					return err
				}
				if h := image.HostPlatform(); p.OS != h.OS || p.Architecture != h.Architecture {
					return fmt.Errorf("--platform %s: berth builds for the host platform (%s/%s) only", platform, h.OS, h.Architecture)
				}
			}
			bo := build.Options{Tags: tags, Target: target, NoCache: noCache, Network: network, Quiet: quiet,
				BuildArgs: map[string]string{}, Labels: map[string]string{}, Out: cmd.OutOrStdout()}
			for _, t := range tags {
				if _, err := image.ParseReference(t); err != nil {
					return fmt.Errorf("invalid tag %q: %w", t, err)
				}
			}
			for _, a := range buildArgs {
				k, v, ok := strings.Cut(a, "=")
				if !ok {
					var set bool
					if v, set = os.LookupEnv(k); !set {
						continue // docker: a --build-arg NAME not in the environment is ignored
					}
				}
				bo.BuildArgs[k] = v
			}
			for _, l := range labels {
				k, v, _ := strings.Cut(l, "=")
				bo.Labels[k] = v
			}
			ctxArg := args[0]
			switch {
			case ctxArg == "-":
				data, err := io.ReadAll(cmd.InOrStdin())
				if err != nil {
					return err
				}
				if looksLikeTar(data) {
					bo.ContextTar = bytes.NewReader(data)
				} else {
					bo.DockerfileContent = data
				}
			case strings.Contains(ctxArg, "://") || strings.HasPrefix(ctxArg, "git@"):
				return fmt.Errorf("unable to prepare context: a remote context (%s) is not supported: use a directory, a tarball or -", ctxArg)
			default:
				fi, err := os.Stat(ctxArg)
				if err != nil {
					return fmt.Errorf("unable to prepare context: path %q not found", ctxArg)
				}
				if fi.IsDir() {
					bo.ContextDir = ctxArg
				} else {
					f, err := os.Open(ctxArg)
					if err != nil {
						return err
					}
					defer f.Close()
					bo.ContextTar = f
				}
			}
			if file != "" && bo.DockerfileContent == nil {
				if file == "-" {
					data, err := io.ReadAll(cmd.InOrStdin())
					if err != nil {
						return err
					}
					bo.DockerfileContent = data
				} else if _, err := os.Stat(file); err == nil {
					// docker: -f is a path on the client (relative to the working dir)
					if bo.Dockerfile, err = filepath.Abs(file); err != nil {
						return err
					}
				} else {
					bo.Dockerfile = file // relative to the context
				}
			}
			e, err := o.open()
			if err != nil {
				return err
			}
			pullMode := "missing"
			if pull {
				pullMode = "always"
			}
			deps := build.Deps{Root: e.Root, Images: e.Images, Snapshots: e.Snapshots, Containers: e.Containers,
				ResolveImage: func(ctx context.Context, ref string) (*image.Image, error) {
					return o.resolveImage(ctx, e, ref, pullMode, platform, cmd.ErrOrStderr())
				}}
			id, err := build.Build(cmd.Context(), deps, bo)
			if err != nil {
				var re *build.RunError
				if errors.As(err, &re) {
					fmt.Fprintln(os.Stderr, re.Error())
					return runtimecli.ExitError{Code: 1}
				}
				return err
			}
			if quiet {
				fmt.Fprintln(cmd.OutOrStdout(), id)
			}
			if iidfile != "" {
				if err := os.WriteFile(iidfile, []byte(id), 0o644); err != nil {
					return fmt.Errorf("write --iidfile: %w", err)
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&tags, "tag", "t", nil, `name and optionally a tag in the "name:tag" format`)
	f.StringVarP(&file, "file", "f", "", `name of the Dockerfile (default: "PATH/Dockerfile")`)
	f.StringArrayVar(&buildArgs, "build-arg", nil, "set build-time variables")
	f.StringVar(&target, "target", "", "set the target build stage to build")
	f.BoolVar(&noCache, "no-cache", false, "do not use cache when building the image")
	f.BoolVar(&pull, "pull", false, "always attempt to pull a newer version of the image")
	f.StringArrayVar(&labels, "label", nil, "set metadata for an image")
	f.StringVar(&network, "network", "", "networking mode for the RUN instructions (bridge, none, host, NAME)")
	f.StringVar(&progress, "progress", "auto", "type of progress output (auto, plain, quiet)")
	f.BoolVarP(&quiet, "quiet", "q", false, "suppress the build output and print image ID on success")
	f.StringVar(&iidfile, "iidfile", "", "write the image ID to the file")
	f.StringVar(&platform, "platform", "", "set platform (the host's only)")
	return cmd
}

// looksLikeTar tells a tar stream (plain or compressed) on stdin from a Dockerfile.
func looksLikeTar(b []byte) bool {
	if bytes.HasPrefix(b, []byte{0x1f, 0x8b}) || bytes.HasPrefix(b, []byte("BZh")) {
		return true
	}
	return len(b) >= 262 && string(b[257:262]) == "ustar"
}

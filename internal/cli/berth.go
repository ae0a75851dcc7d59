package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/cli/runtimecli"
	"github.com/berth-dev/berth/internal/engine"
)

// berthOpts are berth's global flags.
type berthOpts struct {
	root     string
	debug    bool
	insecure []string
	eng      *engine.Engine
}

// open opens the data root once per command.
func (o *berthOpts) open() (*engine.Engine, error) {
	if o.eng != nil {
		return o.eng, nil
	}
	cfg, err := loadConfig()
	if err != nil {
		return nil, err
	}
	o.insecure = append(o.insecure, cfg.InsecureRegistries...)
	e, err := engine.Open(o.root)
	if err != nil {
		return nil, err
	}
	o.eng = e
	return e, nil
}

// Main runs the berth command line with args (without argv[0]) and returns the exit code.
func Main(args []string) int {
	o := &berthOpts{}
	root := newBerthCommand(o)
	root.SetArgs(args)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, unix.SIGTERM)
	defer stop()
	err := root.ExecuteContext(ctx)
	if o.eng != nil {
		o.eng.Close()
	}
	if err == nil {
		return 0
	}
	var ee runtimecli.ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	fmt.Fprintln(os.Stderr, "berth:", err)
	return 1
}

func newBerthCommand(o *berthOpts) *cobra.Command {
	root := os.Getenv("BERTH_ROOT")
	if root == "" {
		root = engine.DefaultRoot
	}
	cmd := &cobra.Command{
		Use:           "berth",
		Short:         "berth: build, pull, push and run OCI containers",
		Version:       runtimecli.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		// docker exits 125 on a flag error.
		fmt.Fprintf(os.Stderr, "berth: %s: %v (see '%s --help')\n", c.CommandPath(), err, c.CommandPath())
		return runtimecli.ExitError{Code: 125}
	})
	cmd.PersistentFlags().StringVar(&o.root, "root", root, "data root (images, layers, containers); also $BERTH_ROOT")
	cmd.PersistentFlags().BoolVarP(&o.debug, "debug", "D", false, "debug output")
	cmd.PersistentFlags().StringArrayVar(&o.insecure, "insecure-registry", nil, "registry (host[:port]) reached over plain HTTP; localhost always is")

	imageCmd := &cobra.Command{Use: "image", Short: "manage images"}
	imageCmd.AddCommand(imagesCommand(o, "ls"), rmiCommand(o, "rm"), tagCommand(o), historyCommand(o),
		inspectImageCommand(o), pruneImagesCommand(o), pullCommand(o), pushCommand(o), importCommand(o),
		loadCommand(o), saveCommand(o))
	systemCmd := &cobra.Command{Use: "system", Short: "manage berth"}
	systemCmd.AddCommand(dfCommand(o), checkCommand(o), systemPruneCommand(o), restoreCommand(o), eventsCommand(o))
	cmd.AddCommand(containerCommand(o), volumeCommand(o), networkCommand(o), portCommand(o), createCommand(o), runCommand(o), startCommand(o),
		stopCommand(o, "stop", false), stopCommand(o, "restart", true), killCommand(o), pauseCommand(o, false),
		pauseCommand(o, true), rmCommand(o, "rm"), renameCommand(o), waitCommand(o), psCommand(o, "ps"),
		logsCommand(o), inspectCommand(o), execCommand(o), attachCommand(o), topCommand(o), statsCommand(o),
		cpCommand(o), diffCommand(o), commitCommand(o), exportCommand(o), eventsCommand(o), buildCommand(o))
	imageCmd.AddCommand(buildCommand(o))
	cmd.AddCommand(imageCmd, systemCmd, imagesCommand(o, "images"), rmiCommand(o, "rmi"), tagCommand(o),
		historyCommand(o), pullCommand(o), pushCommand(o), loginCommand(o), logoutCommand(),
		importCommand(o), loadCommand(o), saveCommand(o), &cobra.Command{
			Use: "runtime", Short: "the OCI runtime (runc's command line); also installed as berth-runtime",
			DisableFlagParsing: true,
			RunE: func(cmd *cobra.Command, args []string) error {
				if code := runtimecli.Main(args); code != 0 {
					return runtimecli.ExitError{Code: code}
				}
				return nil
			},
		})
	return cmd
}

package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"

	units "github.com/docker/go-units"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/container/monitor"
	"github.com/berth-dev/berth/container/opts"
	"github.com/berth-dev/berth/image"
	"github.com/berth-dev/berth/internal/cli/runtimecli"
	"github.com/berth-dev/berth/internal/engine"
	"github.com/berth-dev/berth/registry"
)

// runFlags are the flags of `create` and `run` (docker's names).
type runFlags struct {
	detach, interactive, tty, rm, readOnly, privileged, init, noHealth                  bool
	name, workdir, user, entrypoint, hostname, memory, memorySwap, memoryReservation    string
	cpus, cpusetCPUs, cpusetMems, restart, stopSignal, pidMode, ipcMode, utsMode        string
	shmSize, pull, platform, cidfile, network, healthCmd, logDriver                     string
	env, envFile, labels, volumes, mounts, tmpfs, ulimits, capAdd, capDrop, securityOpt []string
	devices, sysctls, logOpts, addHosts, groupAdd, dns, dnsSearch, dnsOpt, publish      []string
	expose, networkAlias                                                                []string
	ip, macAddress                                                                      string
	cpuShares                                                                           int64
	pidsLimit                                                                           int64
	stopTimeout, oomScoreAdj, healthRetries                                             int
	healthInterval, healthTimeout, healthStart                                          string
	publishAll, sigProxy                                                                bool
	domainname                                                                          string
}

func addRunFlags(f *pflag.FlagSet, r *runFlags, run bool) {
	f.SetInterspersed(false)
	f.Bool("help", false, "print usage") // -h is --hostname, as in docker
	if run {
		f.BoolVarP(&r.detach, "detach", "d", false, "run the container in the background and print its ID")
		f.BoolVar(&r.rm, "rm", false, "remove the container when it exits")
		f.BoolVar(&r.sigProxy, "sig-proxy", true, "proxy received signals to the process")
	} else {
		f.BoolVar(&r.rm, "rm", false, "remove the container when it exits")
	}
	f.BoolVarP(&r.interactive, "interactive", "i", false, "keep STDIN open even if not attached")
	f.BoolVarP(&r.tty, "tty", "t", false, "allocate a pseudo-TTY")
	f.StringVar(&r.name, "name", "", "assign a name to the container")
	f.StringArrayVarP(&r.env, "env", "e", nil, "set environment variables")
	f.StringArrayVar(&r.envFile, "env-file", nil, "read in a file of environment variables")
	f.StringVarP(&r.workdir, "workdir", "w", "", "working directory inside the container")
	f.StringVarP(&r.user, "user", "u", "", "username or UID (format: <name|uid>[:<group|gid>])")
	f.StringArrayVar(&r.groupAdd, "group-add", nil, "add additional groups to join")
	f.StringVar(&r.entrypoint, "entrypoint", "", "overwrite the default ENTRYPOINT of the image")
	f.StringVarP(&r.hostname, "hostname", "h", "", "container host name")
	f.StringVar(&r.domainname, "domainname", "", "container NIS domain name")
	f.StringArrayVarP(&r.labels, "label", "l", nil, "set meta data on a container")
	f.StringArrayVarP(&r.volumes, "volume", "v", nil, "bind mount a volume")
	f.StringArrayVar(&r.mounts, "mount", nil, "attach a filesystem mount to the container")
	f.StringArrayVar(&r.tmpfs, "tmpfs", nil, "mount a tmpfs directory")
	f.BoolVar(&r.readOnly, "read-only", false, "mount the container's root filesystem as read only")
	f.StringVarP(&r.memory, "memory", "m", "", "memory limit")
	f.StringVar(&r.memorySwap, "memory-swap", "", "swap limit equal to memory plus swap: '-1' to enable unlimited swap")
	f.StringVar(&r.memoryReservation, "memory-reservation", "", "memory soft limit")
	f.StringVar(&r.cpus, "cpus", "", "number of CPUs")
	f.Int64VarP(&r.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	f.StringVar(&r.cpusetCPUs, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	f.StringVar(&r.cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	f.Int64Var(&r.pidsLimit, "pids-limit", 0, "tune container pids limit (set -1 for unlimited)")
	f.StringArrayVar(&r.ulimits, "ulimit", nil, "ulimit options")
	f.StringArrayVar(&r.capAdd, "cap-add", nil, "add Linux capabilities")
	f.StringArrayVar(&r.capDrop, "cap-drop", nil, "drop Linux capabilities")
	f.BoolVar(&r.privileged, "privileged", false, "give extended privileges to this container")
	f.StringArrayVar(&r.securityOpt, "security-opt", nil, "security options")
	f.StringArrayVar(&r.devices, "device", nil, "add a host device to the container")
	f.BoolVar(&r.init, "init", false, "run an init inside the container that forwards signals and reaps processes")
	f.StringVar(&r.restart, "restart", "no", "restart policy to apply when a container exits")
	f.StringVar(&r.stopSignal, "stop-signal", "", "signal to stop the container")
	f.IntVar(&r.stopTimeout, "stop-timeout", 0, "timeout (in seconds) to stop a container")
	f.StringVar(&r.pidMode, "pid", "", "PID namespace to use")
	f.StringVar(&r.ipcMode, "ipc", "", "IPC mode to use")
	f.StringVar(&r.utsMode, "uts", "", "UTS namespace to use")
	f.StringVar(&r.shmSize, "shm-size", "", "size of /dev/shm")
	f.StringArrayVar(&r.sysctls, "sysctl", nil, "sysctl options")
	f.IntVar(&r.oomScoreAdj, "oom-score-adj", 0, "tune host's OOM preferences (-1000 to 1000)")
	f.StringVar(&r.pull, "pull", "missing", `pull image before running ("always", "missing", "never")`)
	f.StringVar(&r.platform, "platform", "", "set platform if server is multi-platform capable")
	f.StringVar(&r.cidfile, "cidfile", "", "write the container ID to the file")
	f.StringVar(&r.logDriver, "log-driver", "", "logging driver for the container (json-file, none)")
	f.StringArrayVar(&r.logOpts, "log-opt", nil, "log driver options (max-size=, max-file=)")
	f.StringVar(&r.healthCmd, "health-cmd", "", "command to run to check health")
	f.StringVar(&r.healthInterval, "health-interval", "", "time between running the check (ms|s|m|h)")
	f.StringVar(&r.healthTimeout, "health-timeout", "", "maximum time to allow one check to run (ms|s|m|h)")
	f.StringVar(&r.healthStart, "health-start-period", "", "start period for the container to initialize before starting health-retries countdown")
	f.IntVar(&r.healthRetries, "health-retries", 0, "consecutive failures needed to report unhealthy")
	f.BoolVar(&r.noHealth, "no-healthcheck", false, "disable any container-specified HEALTHCHECK")
	f.StringVar(&r.network, "network", "", "connect a container to a network (bridge, NAME, none, host, container:NAME)")
	f.StringArrayVar(&r.networkAlias, "network-alias", nil, "add a network-scoped alias for the container")
	f.StringArrayVar(&r.networkAlias, "net-alias", nil, "add a network-scoped alias for the container")
	f.MarkHidden("net-alias")
	f.StringVar(&r.ip, "ip", "", "IPv4 address (e.g., 172.30.100.104)")
	f.StringVar(&r.macAddress, "mac-address", "", "container MAC address (e.g., 92:d0:c6:0a:29:33)")
	f.StringVar(&r.network, "net", "", "connect a container to a network")
	f.MarkHidden("net")
	f.StringArrayVar(&r.addHosts, "add-host", nil, "add a custom host-to-IP mapping (host:ip)")
	f.StringArrayVar(&r.dns, "dns", nil, "set custom DNS servers")
	f.StringArrayVar(&r.dnsSearch, "dns-search", nil, "set custom DNS search domains")
	f.StringArrayVar(&r.dnsOpt, "dns-option", nil, "set DNS options")
	f.StringArrayVarP(&r.publish, "publish", "p", nil, "publish a container's port(s) to the host")
	f.BoolVarP(&r.publishAll, "publish-all", "P", false, "publish all exposed ports to random ports")
	f.StringArrayVar(&r.expose, "expose", nil, "expose a port or a range of ports")
}

// config turns the flags into docker's Config and HostConfig.
func (r *runFlags) config(f *pflag.FlagSet, imageRef string, cmd []string) (*containertypes.Config, *containertypes.HostConfig, error) {
	cfg := &containertypes.Config{
		Image:      imageRef,
		Cmd:        cmd,
		Tty:        r.tty,
		OpenStdin:  r.interactive,
		StdinOnce:  r.interactive && !r.detach,
		WorkingDir: r.workdir,
		User:       r.user,
		Hostname:   r.hostname,
		Domainname: r.domainname,
		StopSignal: r.stopSignal,
	}
	cfg.AttachStdin = r.interactive && !r.detach
	cfg.AttachStdout, cfg.AttachStderr = !r.detach, !r.detach
	if f.Changed("entrypoint") {
		cfg.Entrypoint = []string{}
		if r.entrypoint != "" {
			cfg.Entrypoint = []string{r.entrypoint}
		}
	}
	if f.Changed("stop-timeout") {
		t := r.stopTimeout
		cfg.StopTimeout = &t
	}
	var err error
	for _, ef := range r.envFile {
		env, err := opts.ParseEnvFile(ef)
		if err != nil {
			return nil, nil, err
		}
		cfg.Env = append(cfg.Env, env...)
	}
	env, err := opts.ParseEnv(r.env)
	if err != nil {
		return nil, nil, err
	}
	cfg.Env = append(cfg.Env, env...)
	if cfg.Labels, err = opts.ParseLabels(r.labels); err != nil {
		return nil, nil, err
	}
	if cfg.Healthcheck, err = opts.ParseHealth(opts.HealthFlags{Cmd: r.healthCmd, Interval: r.healthInterval,
		Timeout: r.healthTimeout, StartPeriod: r.healthStart, Retries: r.healthRetries, None: r.noHealth}); err != nil {
		return nil, nil, err
	}
	hc := &containertypes.HostConfig{
		Binds:           r.volumes,
		AutoRemove:      r.rm,
		ReadonlyRootfs:  r.readOnly,
		Privileged:      r.privileged,
		CapAdd:          r.capAdd,
		CapDrop:         r.capDrop,
		OomScoreAdj:     r.oomScoreAdj,
		NetworkMode:     containertypes.NetworkMode(r.network),
		ExtraHosts:      r.addHosts,
		GroupAdd:        r.groupAdd,
		DNSSearch:       r.dnsSearch,
		DNSOptions:      r.dnsOpt,
		ContainerIDFile: r.cidfile,
	}
	for _, d := range r.dns {
		a, err := netip.ParseAddr(d)
		if err != nil {
			return nil, nil, fmt.Errorf("invalid --dns %q: not an IP address", d)
		}
		hc.DNS = append(hc.DNS, a)
	}
	pm, exposed, err := opts.ParsePublish(r.publish)
	if err != nil {
		return nil, nil, err
	}
	if len(pm) > 0 {
		if hc.NetworkMode.IsHost() {
			// docker's behaviour: the container's ports are the host's already.
			fmt.Fprintln(os.Stderr, "WARNING: Published ports are discarded when using host network mode")
		} else {
			hc.PortBindings = pm
		}
	}
	hc.PublishAllPorts = r.publishAll
	more, err := opts.ParseExpose(r.expose)
	if err != nil {
		return nil, nil, err
	}
	for p := range more {
		exposed[p] = struct{}{}
	}
	if len(exposed) > 0 {
		cfg.ExposedPorts = exposed
	}
	if r.macAddress != "" {
		if _, err := net.ParseMAC(r.macAddress); err != nil {
			return nil, nil, fmt.Errorf("invalid --mac-address %q: %v", r.macAddress, err)
		}
	}
	if f.Changed("init") {
		v := r.init
		hc.Init = &v
	}
	if hc.RestartPolicy, err = opts.ParseRestartPolicy(r.restart); err != nil {
		return nil, nil, err
	}
	if r.rm && hc.RestartPolicy.Name != "" && hc.RestartPolicy.Name != "no" {
		return nil, nil, errors.New("conflicting options: cannot specify both --restart and --rm")
	}
	for _, m := range r.mounts {
		mt, err := opts.ParseMount(m)
		if err != nil {
			return nil, nil, err
		}
		hc.Mounts = append(hc.Mounts, mt)
	}
	if len(r.tmpfs) > 0 {
		hc.Tmpfs = map[string]string{}
		for _, t := range r.tmpfs {
			dst, o, err := opts.ParseTmpfs(t)
			if err != nil {
				return nil, nil, err
			}
			hc.Tmpfs[dst] = o
		}
	}
	if hc.SecurityOpt, err = opts.ParseSecurityOpts(r.securityOpt); err != nil {
		return nil, nil, err
	}
	if hc.Sysctls, err = opts.ParseSysctls(r.sysctls); err != nil {
		return nil, nil, err
	}
	for flag, v := range map[string]*string{"pid": &r.pidMode, "ipc": &r.ipcMode, "uts": &r.utsMode} {
		if _, err := opts.ParseNamespaceMode(flag, *v); err != nil {
			return nil, nil, err
		}
	}
	hc.PidMode, hc.IpcMode, hc.UTSMode = containertypes.PidMode(r.pidMode), containertypes.IpcMode(r.ipcMode), containertypes.UTSMode(r.utsMode)
	if r.shmSize != "" {
		if hc.ShmSize, err = opts.ParseMemory(r.shmSize); err != nil {
			return nil, nil, err
		}
	}
	res := &hc.Resources
	for _, m := range []struct {
		flag string
		v    string
		dst  *int64
	}{{"memory", r.memory, &res.Memory}, {"memory-reservation", r.memoryReservation, &res.MemoryReservation}} {
		if m.v != "" {
			if *m.dst, err = opts.ParseMemory(m.v); err != nil {
				return nil, nil, fmt.Errorf("invalid argument %q for \"--%s\" flag: %v", m.v, m.flag, err)
			}
		}
	}
	if r.memorySwap != "" {
		if res.MemorySwap, err = opts.ParseMemorySwap(r.memorySwap); err != nil {
			return nil, nil, err
		}
	}
	if r.cpus != "" {
		if res.NanoCPUs, err = opts.ParseCPUs(r.cpus); err != nil {
			return nil, nil, err
		}
	}
	res.CPUShares = r.cpuShares
	res.CpusetCpus, res.CpusetMems = r.cpusetCPUs, r.cpusetMems
	if f.Changed("pids-limit") {
		v := r.pidsLimit
		res.PidsLimit = &v
	}
	for _, u := range r.ulimits {
		ul, err := opts.ParseUlimit(u)
		if err != nil {
			return nil, nil, err
		}
		res.Ulimits = append(res.Ulimits, ul)
	}
	for _, d := range r.devices {
		dm, err := opts.ParseDevice(d)
		if err != nil {
			return nil, nil, err
		}
		res.Devices = append(res.Devices, dm)
	}
	hc.LogConfig.Type = r.logDriver
	for _, o := range r.logOpts {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			return nil, nil, fmt.Errorf("invalid --log-opt %q: use key=value", o)
		}
		switch k {
		case "max-size":
			if _, err := units.RAMInBytes(v); err != nil {
				return nil, nil, fmt.Errorf("invalid --log-opt max-size=%s: %v", v, err)
			}
		case "max-file":
			var n int
			if _, err := fmt.Sscanf(v, "%d", &n); err != nil || n < 1 {
				return nil, nil, fmt.Errorf("invalid --log-opt max-file=%s: use a number of at least 1", v)
			}
		case "compress", "labels", "env", "tag", "mode":
		default:
			return nil, nil, fmt.Errorf("unknown log opt '%s' for json-file log driver", k)
		}
		if hc.LogConfig.Config == nil {
			hc.LogConfig.Config = map[string]string{}
		}
		hc.LogConfig.Config[k] = v
	}
	return cfg, hc, nil
}

// resolveImage finds the image, pulling it per --pull.
func (o *berthOpts) resolveImage(ctx context.Context, e *engine.Engine, ref string, pull, platform string, stderr io.Writer) (*image.Image, error) {
	switch pull {
	case "missing", "always", "never":
	default:
		return nil, fmt.Errorf(`invalid pull option: %q: must be one of "always", "missing" or "never"`, pull)
	}
	if pull != "always" {
		img, err := e.Images.Resolve(ref)
		if err == nil || pull == "never" || !errors.Is(err, image.ErrNotFound) {
			if err != nil && errors.Is(err, image.ErrNotFound) {
				return nil, fmt.Errorf("unable to find image '%s' locally (and --pull never)", ref)
			}
			return img, err
		}
		fmt.Fprintf(stderr, "Unable to find image '%s' locally\n", ref)
	}
	r, err := image.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	ro := registry.Options{Insecure: o.insecure}
	if platform != "" {
		if ro.Platform, err = image.ParsePlatform(platform); err != nil {
			return nil, err
		}
	}
	err = withProgress(stderr, false, func(w io.Writer) error {
		ro.Progress = w
		_, err := registry.Pull(ctx, e.Images, e.Snapshots, r, ro)
		return err
	})
	if err != nil {
		return nil, err
	}
	return e.Images.Resolve(r.String())
}

// createContainer is the shared part of `create` and `run`.
func (o *berthOpts) createContainer(cmd *cobra.Command, r *runFlags, args []string) (*engine.Engine, *container.Record, error) {
	cfg, hc, err := r.config(cmd.Flags(), args[0], args[1:])
	if err != nil {
		return nil, nil, err
	}
	e, err := o.open()
	if err != nil {
		return nil, nil, err
	}
	img, err := o.resolveImage(cmd.Context(), e, args[0], r.pull, r.platform, cmd.ErrOrStderr())
	if err != nil {
		return nil, nil, err
	}
	icfg, err := e.Images.Config(img)
	if err != nil {
		return nil, nil, err
	}
	if r.cidfile != "" {
		if _, err := os.Stat(r.cidfile); err == nil {
			return nil, nil, fmt.Errorf("container ID file found, make sure the other container isn't running or delete %s", r.cidfile)
		}
	}
	rec, err := e.Containers.Create(cmd.Context(), container.CreateOptions{
		Name: r.name, Config: cfg, HostConfig: hc, Image: img, ImageCfg: icfg,
		Network: container.NetworkOptions{Aliases: r.networkAlias, IP: r.ip, MAC: r.macAddress},
	})
	if err != nil {
		return nil, nil, err
	}
	if r.cidfile != "" {
		if err := os.WriteFile(r.cidfile, []byte(rec.ID), 0o644); err != nil {
			e.Containers.Remove(context.Background(), rec, true, true)
			return nil, nil, fmt.Errorf("write the container ID file: %w", err)
		}
	}
	return e, rec, nil
}

func createCommand(o *berthOpts) *cobra.Command {
	r := &runFlags{}
	cmd := &cobra.Command{
		Use: "create [OPTIONS] IMAGE [COMMAND] [ARG...]", Short: "create a new container", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, rec, err := o.createContainer(cmd, r, args)
			if err != nil {
				return runError(err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), rec.ID)
			return nil
		},
	}
	addRunFlags(cmd.Flags(), r, false)
	return cmd
}

func runCommand(o *berthOpts) *cobra.Command {
	r := &runFlags{}
	cmd := &cobra.Command{
		Use: "run [OPTIONS] IMAGE [COMMAND] [ARG...]", Short: "create and run a new container from an image", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, rec, err := o.createContainer(cmd, r, args)
			if err != nil {
				return runError(err)
			}
			m := e.Containers
			if r.detach {
				if err := startDetached(cmd.Context(), m, rec); err != nil {
					return runError(err)
				}
				fmt.Fprintln(cmd.OutOrStdout(), rec.ID)
				return nil
			}
			code, err := runAttached(cmd.Context(), m, rec, attachOpts{stdin: r.interactive, tty: r.tty, sigProxy: r.sigProxy, cleanup: true})
			if err != nil {
				return runError(err)
			}
			if code != 0 {
				return runtimecli.ExitError{Code: code}
			}
			return nil
		},
	}
	addRunFlags(cmd.Flags(), r, true)
	return cmd
}

// runError gives a start failure docker's exit code: 125 for berth's own errors, 126/127
// for a command that cannot be run.
func runError(err error) error {
	var ce *container.CommandError
	if errors.As(err, &ce) {
		fmt.Fprintln(os.Stderr, "berth: "+ce.Msg)
		return runtimecli.ExitError{Code: ce.Code}
	}
	var ee runtimecli.ExitError
	if errors.As(err, &ee) {
		return err
	}
	fmt.Fprintln(os.Stderr, "berth:", err)
	return runtimecli.ExitError{Code: 125}
}

// startDetached starts a container in the background (run -d, start).
func startDetached(ctx context.Context, m *container.Manager, rec *container.Record) error {
	sess, err := m.Prepare(ctx, rec)
	if err != nil {
		if rec.HostConfig.AutoRemove {
			m.Remove(context.Background(), rec, true, true)
		}
		return err
	}
	if err := sess.Start(); err != nil {
		sess.Abort()
		if rec.HostConfig.AutoRemove {
			m.Remove(context.Background(), rec, true, true)
		}
		return err
	}
	return nil
}

type attachOpts struct {
	stdin, tty, sigProxy bool
	cleanup              bool // a foreground run: clean up (and --rm) ourselves after the exit
}

// runAttached starts a container with our terminal attached and returns its exit code.
func runAttached(ctx context.Context, m *container.Manager, rec *container.Record, a attachOpts) (int, error) {
	sess, err := m.Prepare(ctx, rec)
	if err != nil {
		if rec.HostConfig.AutoRemove {
			m.Remove(context.Background(), rec, true, true)
		}
		return 0, err
	}
	att, err := m.Attach(rec.ID, monitor.Hello{Stdin: a.stdin, Stdout: true, Stderr: true, Cleanup: a.cleanup})
	if err != nil {
		sess.Abort()
		if rec.HostConfig.AutoRemove {
			m.Remove(context.Background(), rec, true, true)
		}
		return 0, err
	}
	defer att.Close()
	restore := rawTerminal(att, a.tty)
	defer restore()
	if err := sess.Start(); err != nil {
		sess.Abort()
		if rec.HostConfig.AutoRemove {
			m.Remove(context.Background(), rec, true, true)
		}
		return 0, err
	}
	if a.stdin {
		go att.SendStdin(os.Stdin)
	}
	if a.sigProxy && !a.tty {
		sigs := make(chan os.Signal, 8)
		signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2)
		defer signal.Stop(sigs)
		go func() {
			for s := range sigs {
				m.Kill(rec, s.(unix.Signal))
			}
		}()
	}
	exit, err := att.Stream(os.Stdout, os.Stderr)
	restore()
	if err != nil {
		return 0, err
	}
	if a.cleanup {
		if err := m.Cleanup(context.Background(), rec, ""); err != nil {
			fmt.Fprintln(os.Stderr, "berth: clean-up:", err)
		}
	}
	return exit.ExitCode, nil
}

// rawTerminal puts our terminal in raw mode for a container with a tty and keeps the
// container's window size in step with ours. The returned restore may be called twice.
func rawTerminal(att *container.Attachment, tty bool) func() {
	fd := int(os.Stdin.Fd())
	if !tty || !term.IsTerminal(fd) {
		return func() {}
	}
	st, err := term.MakeRaw(fd)
	if err != nil {
		return func() {}
	}
	resize := func() {
		if w, h, err := term.GetSize(fd); err == nil {
			att.Resize(uint16(h), uint16(w))
		}
	}
	resize()
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, unix.SIGWINCH)
	go func() {
		for range winch {
			resize()
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			signal.Stop(winch)
			term.Restore(fd, st)
		})
	}
}

package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"sort"
	"strings"

	nettypes "github.com/moby/moby/api/types/network"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/internal/cli/format"
	"github.com/berth-dev/berth/internal/cli/runtimecli"
	"github.com/berth-dev/berth/internal/engine"
	"github.com/berth-dev/berth/network"
)

// networkRow is what `network ls --format` templates see (docker's field names).
type networkRow struct {
	ID, Name, Driver, Scope, IPv4, IPv6, Internal, Labels, CreatedAt string
}

// pseudoNetworks are docker's "host" and "none", which are network modes, not bridges; they
// are listed with ids derived from their names.
func pseudoNetworks() []nettypes.Inspect {
	var out []nettypes.Inspect
	for _, p := range []struct{ name, driver string }{{"host", "host"}, {"none", "null"}} {
		sum := sha256.Sum256([]byte("berth-network-" + p.name))
		out = append(out, nettypes.Inspect{Network: nettypes.Network{Name: p.name, ID: hex.EncodeToString(sum[:]),
			Scope: "local", Driver: p.driver, EnableIPv4: true, IPAM: nettypes.IPAM{Driver: "default"},
			Options: map[string]string{}, Labels: map[string]string{}}, Containers: map[string]nettypes.EndpointResource{}})
	}
	return out
}

func networkInspect(e *engine.Engine, n *network.Network) nettypes.Inspect {
	cfg := nettypes.IPAMConfig{Subnet: n.Subnet, Gateway: n.Gateway, IPRange: n.IPRange}
	opts := map[string]string{}
	for k, v := range n.Options {
		opts[k] = v
	}
	opts[network.OptBridgeName] = n.Bridge
	out := nettypes.Inspect{
		Network: nettypes.Network{Name: n.Name, ID: n.ID, Created: n.Created, Scope: "local", Driver: "bridge",
			EnableIPv4: true, IPAM: nettypes.IPAM{Driver: "default", Options: map[string]string{}, Config: []nettypes.IPAMConfig{cfg}},
			Internal: n.Internal, Attachable: false, Options: opts, Labels: n.Labels},
		Containers: map[string]nettypes.EndpointResource{},
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	eps, _ := e.Networks.Endpoints(n)
	for _, ep := range eps {
		r := nettypes.EndpointResource{Name: ep.Name, EndpointID: ep.HostVeth,
			IPv4Address: netip.PrefixFrom(ep.IP, ep.Prefix)}
		if mac, err := net.ParseMAC(ep.MAC); err == nil {
			r.MacAddress = nettypes.HardwareAddr(mac)
		}
		out.Containers[ep.Container] = r
	}
	return out
}

func networkCommand(o *berthOpts) *cobra.Command {
	c := &cobra.Command{Use: "network", Short: "manage networks"}

	var driver, subnet, gateway, ipRange string
	var internal bool
	var labels, nopts []string
	create := &cobra.Command{
		Use: "create [OPTIONS] NETWORK", Short: "create a network", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := o.open()
			if err != nil {
				return err
			}
			n, err := e.Networks.Create(cmd.Context(), network.CreateOptions{Name: args[0], Driver: driver,
				Subnet: subnet, Gateway: gateway, IPRange: ipRange, Internal: internal,
				Labels: kvMap(labels), Options: kvMap(nopts)})
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), n.ID)
			return nil
		},
	}
	cf := create.Flags()
	cf.StringVarP(&driver, "driver", "d", "bridge", "driver to manage the network (bridge)")
	cf.StringVar(&subnet, "subnet", "", "subnet in CIDR format that represents a network segment")
	cf.StringVar(&gateway, "gateway", "", "IPv4 gateway for the master subnet")
	cf.StringVar(&ipRange, "ip-range", "", "allocate container IPs from a sub-range")
	cf.BoolVar(&internal, "internal", false, "restrict external access to the network")
	cf.StringArrayVar(&labels, "label", nil, "set metadata on a network")
	cf.StringArrayVarP(&nopts, "opt", "o", nil, "set driver specific options")

	var quiet, noTrunc bool
	var formatStr string
	var filters []string
	ls := &cobra.Command{
		Use: "ls [OPTIONS]", Aliases: []string{"list"}, Short: "list networks", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := o.open()
			if err != nil {
				return err
			}
			e.Containers.ReconcileNetwork(cmd.Context())
			nets, err := e.Networks.List()
			if err != nil {
				return err
			}
			var docs []nettypes.Inspect
			for _, n := range nets {
				docs = append(docs, networkInspect(e, n))
			}
			docs = append(docs, pseudoNetworks()...)
			var rows []any
			for _, d := range docs {
				keep := true
				for _, f := range filters {
					k, v, _ := strings.Cut(f, "=")
					switch k {
					case "name":
						keep = keep && strings.Contains(d.Name, v)
					case "id":
						keep = keep && strings.HasPrefix(d.ID, v)
					case "driver":
						keep = keep && d.Driver == v
					case "label":
						keep = keep && labelMatch(d.Labels, v)
					case "type":
						custom := d.Name != "bridge" && d.Name != "host" && d.Name != "none"
						keep = keep && ((v == "custom") == custom)
					default:
						return fmt.Errorf("invalid filter '%s'", k)
					}
				}
				if !keep {
					continue
				}
				id := d.ID
				if !noTrunc {
					id = id[:12]
				}
				if quiet {
					fmt.Fprintln(cmd.OutOrStdout(), id)
					continue
				}
				rows = append(rows, networkRow{ID: id, Name: d.Name, Driver: d.Driver, Scope: d.Scope,
					IPv4: fmt.Sprint(d.EnableIPv4), IPv6: fmt.Sprint(d.EnableIPv6), Internal: fmt.Sprint(d.Internal),
					Labels: joinLabels(d.Labels), CreatedAt: d.Created.Local().Format("2006-01-02 15:04:05.999999999 -0700 MST")})
			}
			if quiet {
				return nil
			}
			return format.Table(cmd.OutOrStdout(), formatStr, "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}", map[string]string{
				"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "IPv4": "IPV4", "IPv6": "IPV6",
				"Internal": "INTERNAL", "Labels": "LABELS", "CreatedAt": "CREATED AT",
			}, rows)
		},
	}
	ls.Flags().BoolVarP(&quiet, "quiet", "q", false, "only display network IDs")
	ls.Flags().BoolVar(&noTrunc, "no-trunc", false, "do not truncate the output")
	ls.Flags().StringVar(&formatStr, "format", "", "format output using a Go template")
	ls.Flags().StringArrayVarP(&filters, "filter", "f", nil, "provide filter values (e.g. 'driver=bridge')")

	var inspFormat string
	inspect := &cobra.Command{
		Use: "inspect [OPTIONS] NETWORK [NETWORK...]", Short: "display detailed information on one or more networks", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := o.open()
			if err != nil {
				return err
			}
			var docs []any
			failed := false
			for _, a := range args {
				if d, ok := pseudoNetwork(a); ok {
					docs = append(docs, d)
					continue
				}
				n, err := e.Networks.Lookup(a)
				if err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "berth: network %s not found\n", a)
					failed = true
					continue
				}
				docs = append(docs, networkInspect(e, n))
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

	var rmForce bool
	rm := &cobra.Command{
		Use: "rm NETWORK [NETWORK...]", Aliases: []string{"remove"}, Short: "remove one or more networks", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := o.open()
			if err != nil {
				return err
			}
			e.Containers.ReconcileNetwork(cmd.Context())
			failed := false
			for _, a := range args {
				if err := removeNetwork(cmd, e, a, rmForce); err != nil {
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
	rm.Flags().BoolVarP(&rmForce, "force", "f", false, "disconnect the containers first (stopped ones too)")

	var pforce bool
	prune := &cobra.Command{
		Use: "prune [OPTIONS]", Short: "remove all unused networks", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := o.open()
			if err != nil {
				return err
			}
			removed, err := pruneNetworks(cmd, e)
			if err != nil {
				return err
			}
			if len(removed) > 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "Deleted Networks:")
				for _, n := range removed {
					fmt.Fprintln(cmd.OutOrStdout(), n)
				}
			}
			return nil
		},
	}
	prune.Flags().BoolVarP(&pforce, "force", "f", false, "do not prompt for confirmation")
	prune.Flags().StringArray("filter", nil, "provide filter values")

	var aliases []string
	var ip string
	connect := &cobra.Command{
		Use: "connect [OPTIONS] NETWORK CONTAINER", Short: "connect a container to a network", Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, rec, err := o.container(args[1])
			if err != nil {
				return err
			}
			n, err := e.Networks.Lookup(args[0])
			if err != nil {
				return err
			}
			return e.Containers.Connect(cmd.Context(), rec, n, container.NetworkOptions{Aliases: aliases, IP: ip})
		},
	}
	connect.Flags().StringArrayVar(&aliases, "alias", nil, "add network-scoped alias for the container")
	connect.Flags().StringVar(&ip, "ip", "", "IPv4 address (e.g., 172.30.100.104)")

	var dforce bool
	disconnect := &cobra.Command{
		Use: "disconnect [OPTIONS] NETWORK CONTAINER", Short: "disconnect a container from a network", Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, rec, err := o.container(args[1])
			if err != nil {
				return err
			}
			n, err := e.Networks.Lookup(args[0])
			if err != nil {
				return err
			}
			return e.Containers.Disconnect(cmd.Context(), rec, n)
		},
	}
	disconnect.Flags().BoolVarP(&dforce, "force", "f", false, "force the container to disconnect from a network")

	dnsServer := &cobra.Command{
		Use: "dns-server NETWORK-ID", Hidden: true, Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := o.open()
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), unix.SIGTERM, unix.SIGINT)
			defer stop()
			// Closed in the child of ensureDNS: fd 3 is where readiness is reported.
			ready := os.NewFile(3, "ready")
			e.Close() // the image store's lock is not needed by a long-lived server
			return e.Networks.ServeDNS(ctx, args[0], ready)
		},
	}
	c.AddCommand(create, ls, inspect, rm, prune, connect, disconnect, dnsServer)
	return c
}

func pseudoNetwork(name string) (nettypes.Inspect, bool) {
	for _, d := range pseudoNetworks() {
		if d.Name == name || (len(name) >= 12 && strings.HasPrefix(d.ID, name)) {
			return d, true
		}
	}
	return nettypes.Inspect{}, false
}

// removeNetwork is `network rm`: refused while containers name the network, unless --force,
// which disconnects them first.
func removeNetwork(cmd *cobra.Command, e *engine.Engine, name string, force bool) error {
	if _, ok := pseudoNetwork(name); ok {
		return fmt.Errorf("%s is a pre-defined network and cannot be removed", name)
	}
	n, err := e.Networks.Lookup(name)
	if err != nil {
		return fmt.Errorf("network %s not found", name)
	}
	if n.Default() {
		return fmt.Errorf("%s is a pre-defined network and cannot be removed", n.Name)
	}
	users, err := e.Containers.NetworkUsers(n)
	if err != nil {
		return err
	}
	if len(users) > 0 && !force {
		var names []string
		for _, u := range users {
			names = append(names, u.Name)
		}
		sort.Strings(names)
		return fmt.Errorf("error while removing network: network %s has active endpoints (%s): disconnect them or use --force", n.Name, strings.Join(names, ", "))
	}
	for _, u := range users {
		if err := e.Containers.Disconnect(cmd.Context(), u, n); err != nil && !errors.Is(err, network.ErrNotConnected) {
			return err
		}
	}
	return e.Networks.Remove(cmd.Context(), n)
}

func portCommand(o *berthOpts) *cobra.Command {
	return &cobra.Command{
		Use: "port CONTAINER [PRIVATE_PORT[/PROTO]]", Short: "list port mappings or a specific mapping for the container",
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, rec, err := o.container(args[0])
			if err != nil {
				return err
			}
			pm := e.Containers.Ports(rec)
			if st := e.Containers.Status(rec); !st.Running() {
				pm = nil
			}
			var keys []nettypes.Port
			for p := range pm {
				keys = append(keys, p)
			}
			sort.Slice(keys, func(i, j int) bool {
				if keys[i].Num() != keys[j].Num() {
					return keys[i].Num() < keys[j].Num()
				}
				return keys[i].Proto() < keys[j].Proto()
			})
			if len(args) == 2 {
				want := args[1]
				if !strings.Contains(want, "/") {
					want += "/tcp"
				}
				p, err := nettypes.ParsePort(want)
				if err != nil {
					return fmt.Errorf("invalid port %q: %v", args[1], err)
				}
				bs, ok := pm[p]
				if !ok || len(bs) == 0 {
					return fmt.Errorf("no public port '%s' published for %s", p, rec.Name)
				}
				for _, b := range bs {
					fmt.Fprintln(cmd.OutOrStdout(), net.JoinHostPort(b.HostIP.String(), b.HostPort))
				}
				return nil
			}
			for _, p := range keys {
				for _, b := range pm[p] {
					fmt.Fprintf(cmd.OutOrStdout(), "%s -> %s\n", p, net.JoinHostPort(b.HostIP.String(), b.HostPort))
				}
			}
			return nil
		},
	}
}

// pruneNetworks removes the user-defined networks no container names (`network prune`,
// `system prune`).
func pruneNetworks(cmd *cobra.Command, e *engine.Engine) ([]string, error) {
	e.Containers.ReconcileNetwork(cmd.Context())
	nets, err := e.Networks.List()
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, n := range nets {
		if n.Default() {
			continue
		}
		if users, _ := e.Containers.NetworkUsers(n); len(users) > 0 {
			continue
		}
		if err := e.Networks.Remove(cmd.Context(), n); err == nil {
			removed = append(removed, n.Name)
		}
	}
	return removed, nil
}

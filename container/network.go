package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	containertypes "github.com/moby/moby/api/types/container"
	nettypes "github.com/moby/moby/api/types/network"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/network"
)

// NetworkAttachment is a network the container joins when it starts, with what the user
// asked for on it (docker's EndpointSettings configuration half).
type NetworkAttachment struct {
	ID      string   `json:"ID"`
	Name    string   `json:"Name"`
	Aliases []string `json:"Aliases,omitempty"`
	IP      string   `json:"IP,omitempty"`  // --ip
	MAC     string   `json:"MAC,omitempty"` // --mac-address
}

// NetworkOptions are run's per-network flags (for the network named by --network).
type NetworkOptions struct {
	Aliases []string
	IP      string
	MAC     string
}

// ErrConflict is an option combination docker refuses too.
var ErrConflict = errors.New("conflicting options")

// resolveNetwork decides the container's network mode at create: the default is the
// "bridge" network; a name must be an existing network.
func (m *Manager) resolveNetwork(rec *Record, o NetworkOptions) error {
	hc := rec.HostConfig
	nm := hc.NetworkMode
	if nm == "" || nm == "default" {
		nm = network.DefaultName
	}
	hc.NetworkMode = nm
	userNet := len(o.Aliases) > 0 || o.IP != ""
	switch {
	case nm == "none" || nm == "host":
		if userNet || o.MAC != "" {
			return fmt.Errorf("%w: --ip, --mac-address and --network-alias need a bridge network", ErrConflict)
		}
		return nil
	case nm.IsContainer():
		if len(hc.PortBindings) > 0 || hc.PublishAllPorts {
			return fmt.Errorf("%w: port publishing and the container type network mode", ErrConflict)
		}
		if userNet || o.MAC != "" {
			return fmt.Errorf("%w: --ip, --mac-address and --network-alias with --network container:NAME", ErrConflict)
		}
		return nil
	}
	n, err := m.Net.Lookup(string(nm))
	if err != nil {
		return fmt.Errorf("network %s not found: %w", nm, err)
	}
	if n.Default() && userNet {
		if o.IP != "" {
			return fmt.Errorf("%w: user specified IP address is supported on user defined networks only", ErrConflict)
		}
		return fmt.Errorf("%w: network-scoped alias is supported only for containers in user defined networks", ErrConflict)
	}
	if o.IP != "" {
		if a, err := netip.ParseAddr(o.IP); err != nil || !a.Is4() {
			return fmt.Errorf("invalid --ip %q: want an IPv4 address", o.IP)
		}
	}
	hc.NetworkMode = containertypes.NetworkMode(n.Name)
	rec.Networks = []NetworkAttachment{{ID: n.ID, Name: n.Name, Aliases: o.Aliases, IP: o.IP, MAC: o.MAC}}
	return nil
}

// bridged tells whether the container gets its own network namespace with bridge networks.
func bridged(rec *Record) bool {
	nm := rec.HostConfig.NetworkMode
	return nm != "none" && nm != "host" && !nm.IsContainer()
}

// netSetup is what setupNetwork made for a start.
type netSetup struct {
	netns     string
	endpoints []*network.Endpoint
	held      []*os.File // reserved host ports, for the monitor to hold
}

func (ns *netSetup) closeHeld() {
	if ns == nil {
		return
	}
	for _, f := range ns.held {
		f.Close()
	}
	ns.held = nil
}

// setupNetwork gives a bridged container its namespace, endpoints and published ports. On
// error nothing of it is left.
func (m *Manager) setupNetwork(ctx context.Context, rec *Record) (_ *netSetup, err error) {
	if rec.HostConfig.NetworkMode == "none" {
		// A namespace of its own with only the loopback, up (docker's "none").
		path, err := m.Net.CreateNetns(rec.ID)
		if err != nil {
			return nil, err
		}
		return &netSetup{netns: path}, nil
	}
	if !bridged(rec) {
		return nil, nil
	}
	if m.Net.FirstUseThisBoot() {
		m.ReconcileNetwork(ctx)
	}
	// A crash of an earlier run may have left pieces: start from nothing.
	if err := m.releaseNetwork(rec); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			m.releaseNetwork(rec)
		}
	}()
	path, err := m.Net.CreateNetns(rec.ID)
	if err != nil {
		return nil, err
	}
	out := &netSetup{netns: path}
	gateway := false
	for i, a := range rec.Networks {
		n, err := m.Net.Lookup(a.ID)
		if err != nil {
			return nil, fmt.Errorf("network %s: %w", a.Name, err)
		}
		var ip netip.Addr
		if a.IP != "" {
			ip, _ = netip.ParseAddr(a.IP)
		}
		ep, err := m.Net.Attach(ctx, rec.ID, path, n, network.EndpointOptions{
			Name: rec.Name, Hostname: rec.Config.Hostname, Aliases: a.Aliases, IP: ip, MAC: a.MAC,
			IfName: "eth" + strconv.Itoa(i), NoGateway: gateway,
		})
		if err != nil {
			return nil, err
		}
		gateway = gateway || !n.Internal
		out.endpoints = append(out.endpoints, ep)
	}
	want := m.portsToPublish(rec)
	if len(want) > 0 && len(out.endpoints) > 0 {
		got, held, err := m.Net.Publish(rec.ID, out.endpoints[0].IP, want)
		if err != nil {
			return nil, err
		}
		out.held = held
		if err := writeFileAtomic(m.portsPath(rec.ID), got); err != nil {
			out.closeHeld()
			return nil, err
		}
	}
	return out, nil
}

// portsToPublish is -p plus, with -P, every exposed port not already published, on an
// ephemeral host port (docker decides -P at start too).
func (m *Manager) portsToPublish(rec *Record) nettypes.PortMap {
	want := nettypes.PortMap{}
	for p, b := range rec.HostConfig.PortBindings {
		want[p] = b
	}
	if rec.HostConfig.PublishAllPorts {
		for p := range rec.Config.ExposedPorts {
			if _, ok := want[p]; !ok {
				want[p] = []nettypes.PortBinding{{}}
			}
		}
	}
	return want
}

func (m *Manager) portsPath(id string) string { return filepath.Join(m.dir(id), "ports.json") }

// releaseNetwork frees what the container's run held on the host's network.
// A record without networks (none, host, or a reclaim that knows only the id) still gets
// the whole release: it is cheap when there is nothing.
func (m *Manager) releaseNetwork(rec *Record) error {
	err := os.Remove(m.portsPath(rec.ID))
	hadPorts := err == nil || rec.HostConfig == nil
	if m.Net == nil {
		return nil
	}
	return m.Net.Release(context.Background(), rec.ID, hadPorts)
}

// Ports returns the container's published ports (host ports as taken at start), nil when it
// is not running.
func (m *Manager) Ports(rec *Record) nettypes.PortMap {
	b, err := os.ReadFile(m.portsPath(rec.ID))
	if err != nil {
		return nil
	}
	var pm nettypes.PortMap
	if json.Unmarshal(b, &pm) != nil {
		return nil
	}
	return pm
}

// PortsText is the PORTS column of `ps`: published ports as "0.0.0.0:8080->80/tcp", exposed
// ones as "80/tcp", consecutive ports folded into ranges as docker does.
func PortsText(rec *Record, published nettypes.PortMap, running bool) string {
	type entry struct {
		ip        string
		hp, cp    int
		proto     string
		published bool
	}
	var es []entry
	seen := map[nettypes.Port]bool{}
	if running {
		for p, bs := range published {
			for _, b := range bs {
				hp, _ := strconv.Atoi(b.HostPort)
				es = append(es, entry{ip: b.HostIP.String(), hp: hp, cp: int(p.Num()), proto: string(p.Proto()), published: true})
				seen[p] = true
			}
		}
		for p := range rec.Config.ExposedPorts {
			if !seen[p] {
				es = append(es, entry{cp: int(p.Num()), proto: string(p.Proto())})
			}
		}
	}
	sort.Slice(es, func(i, j int) bool {
		a, b := es[i], es[j]
		if a.published != b.published {
			return !a.published
		}
		if a.ip != b.ip {
			return a.ip < b.ip
		}
		if a.proto != b.proto {
			return a.proto < b.proto
		}
		return a.cp < b.cp
	})
	var out []string
	for i := 0; i < len(es); {
		j := i
		for j+1 < len(es) && es[j+1].published == es[i].published && es[j+1].ip == es[i].ip &&
			es[j+1].proto == es[i].proto && es[j+1].cp == es[j].cp+1 && (!es[i].published || es[j+1].hp == es[j].hp+1) {
			j++
		}
		rng := func(a, b int) string {
			if a == b {
				return strconv.Itoa(a)
			}
			return strconv.Itoa(a) + "-" + strconv.Itoa(b)
		}
		e := es[i]
		if e.published {
			out = append(out, fmt.Sprintf("%s:%s->%s/%s", e.ip, rng(e.hp, es[j].hp), rng(e.cp, es[j].cp), e.proto))
		} else {
			out = append(out, fmt.Sprintf("%s/%s", rng(e.cp, es[j].cp), e.proto))
		}
		i = j + 1
	}
	return strings.Join(out, ", ")
}

// networkSettings is inspect's NetworkSettings: the networks the container joins, with the
// addresses of the current run.
func (m *Manager) networkSettings(rec *Record, running bool) *containertypes.NetworkSettings {
	ns := &containertypes.NetworkSettings{Networks: map[string]*nettypes.EndpointSettings{}, Ports: nettypes.PortMap{}}
	if !bridged(rec) {
		if nm := string(rec.HostConfig.NetworkMode); nm == "host" || nm == "none" {
			ns.Networks[nm] = &nettypes.EndpointSettings{}
		}
		return ns
	}
	var eps map[string]*network.Endpoint
	if running {
		ns.SandboxKey = m.Net.NetnsPath(rec.ID)
		ns.SandboxID = rec.ID
		eps = map[string]*network.Endpoint{}
		for _, ep := range m.Net.Attachments(rec.ID) {
			eps[ep.Network] = ep
		}
		if p := m.Ports(rec); p != nil {
			ns.Ports = p
		}
	}
	for _, a := range rec.Networks {
		es := &nettypes.EndpointSettings{NetworkID: a.ID, Aliases: a.Aliases}
		if a.IP != "" {
			ip, _ := netip.ParseAddr(a.IP)
			es.IPAMConfig = &nettypes.EndpointIPAMConfig{IPv4Address: ip}
		}
		if ep := eps[a.ID]; ep != nil {
			es.EndpointID = ep.HostVeth
			es.IPAddress, es.IPPrefixLen, es.Gateway = ep.IP, ep.Prefix, ep.Gateway
			if mac, err := net.ParseMAC(ep.MAC); err == nil {
				es.MacAddress = nettypes.HardwareAddr(mac)
			}
			es.DNSNames = ep.DNSNames
		}
		ns.Networks[a.Name] = es
	}
	return ns
}

// Connect attaches a container to one more network (`network connect`): at once when it
// runs, at its next start otherwise.
func (m *Manager) Connect(ctx context.Context, rec *Record, n *network.Network, o NetworkOptions) error {
	if !bridged(rec) {
		return fmt.Errorf("%w: container %s uses network mode %s and cannot join network %s", ErrConflict, rec.Name, rec.HostConfig.NetworkMode, n.Name)
	}
	unlock, err := m.lock(rec.ID)
	if err != nil {
		return err
	}
	defer unlock()
	if rec, err = m.readRecord(rec.ID); err != nil {
		return err
	}
	for _, a := range rec.Networks {
		if a.ID == n.ID {
			return fmt.Errorf("endpoint with name %s already exists in network %s: %w", rec.Name, n.Name, network.ErrExists)
		}
	}
	if n.Default() && (len(o.Aliases) > 0 || o.IP != "") {
		return fmt.Errorf("%w: network-scoped aliases and --ip are supported only on user defined networks", ErrConflict)
	}
	a := NetworkAttachment{ID: n.ID, Name: n.Name, Aliases: o.Aliases, IP: o.IP, MAC: o.MAC}
	if st := m.Status(rec); st.Running() {
		var ip netip.Addr
		if o.IP != "" {
			if ip, err = netip.ParseAddr(o.IP); err != nil {
				return fmt.Errorf("invalid --ip %q: %w", o.IP, err)
			}
		}
		if _, err := m.Net.Attach(ctx, rec.ID, m.Net.NetnsPath(rec.ID), n, network.EndpointOptions{
			Name: rec.Name, Hostname: rec.Config.Hostname, Aliases: o.Aliases, IP: ip, MAC: o.MAC,
			IfName: "eth" + strconv.Itoa(len(rec.Networks)), NoGateway: true,
		}); err != nil {
			return err
		}
	}
	rec.Networks = append(rec.Networks, a)
	return m.writeRecord(rec)
}

// Disconnect detaches a container from a network (`network disconnect`).
func (m *Manager) Disconnect(ctx context.Context, rec *Record, n *network.Network) error {
	unlock, err := m.lock(rec.ID)
	if err != nil {
		return err
	}
	defer unlock()
	if rec, err = m.readRecord(rec.ID); err != nil {
		return err
	}
	i := -1
	for j, a := range rec.Networks {
		if a.ID == n.ID {
			i = j
		}
	}
	if i < 0 {
		return fmt.Errorf("container %s is not connected to network %s: %w", rec.Name, n.Name, network.ErrNotConnected)
	}
	if err := m.Net.Detach(ctx, rec.ID, n); err != nil && !errors.Is(err, network.ErrNotConnected) {
		return err
	}
	rec.Networks = append(rec.Networks[:i:i], rec.Networks[i+1:]...)
	if len(rec.Networks) == 0 {
		rec.HostConfig.NetworkMode = "none"
	} else if i == 0 {
		rec.HostConfig.NetworkMode = containertypes.NetworkMode(rec.Networks[0].Name)
	}
	return m.writeRecord(rec)
}

// NetworkUsers lists the containers that name network n (running or not).
func (m *Manager) NetworkUsers(n *network.Network) ([]*Record, error) {
	recs, err := m.List()
	if err != nil {
		return nil, err
	}
	var out []*Record
	for _, r := range recs {
		for _, a := range r.Networks {
			if a.ID == n.ID {
				out = append(out, r)
				break
			}
		}
	}
	return out, nil
}

// ReconcileNetwork releases the network resources of containers that are gone or whose run
// ended without its clean-up (a killed CLI or monitor): the "next command" of the issue.
func (m *Manager) ReconcileNetwork(ctx context.Context) {
	m.Net.Reconcile(ctx, func(cid string) bool {
		if _, err := os.Stat(filepath.Join(m.dir(cid), "config.json")); err != nil {
			_, derr := os.Stat(m.dir(cid))
			// A create in progress has a directory and no record yet; leave it to reclaim.
			return derr == nil && !m.stale(cid)
		}
		if m.locked(cid) {
			return true
		}
		rec, err := m.readRecord(cid)
		if err != nil {
			return true
		}
		st := m.Status(rec)
		return st.MonitorAlive || st.Running() || st.Status == "restarting"
	})
}

// stale tells whether a container directory without a record is a crash's leftover: no
// create holds its lock (and it is older than the moment between mkdir and flock).
func (m *Manager) stale(id string) bool {
	fi, err := os.Stat(m.dir(id))
	if err != nil {
		return false
	}
	return time.Since(fi.ModTime()) >= 2*time.Second && !m.locked(id)
}

// locked tells whether a berth command holds the container's lock right now.
func (m *Manager) locked(id string) bool {
	fd, err := unix.Open(filepath.Join(m.dir(id), "lock"), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	return unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) != nil
}

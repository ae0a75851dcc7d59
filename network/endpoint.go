package network

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/network/nft"
)

// Endpoint is a container on a network (endpoints/<cid>.json).
type Endpoint struct {
	Container string     `json:"container"`
	Network   string     `json:"network"`
	Name      string     `json:"name"`               // the container's name
	Aliases   []string   `json:"aliases,omitempty"`  // --network-alias, connect --alias
	DNSNames  []string   `json:"dnsNames,omitempty"` // every name the DNS server answers for
	IP        netip.Addr `json:"ip"`
	Prefix    int        `json:"prefix"`
	Gateway   netip.Addr `json:"gateway"`
	MAC       string     `json:"mac"`
	HostVeth  string     `json:"hostVeth"`
	IfName    string     `json:"ifName"`
}

// EndpointOptions are what the container asks of its place on a network.
type EndpointOptions struct {
	Name      string     // container name
	Hostname  string     // answered by DNS too ("--hostname visible to peers")
	Aliases   []string   // --network-alias / --alias
	IP        netip.Addr // --ip: a fixed address
	MAC       string     // --mac-address
	IfName    string     // eth0, eth1, ...
	NoGateway bool       // another network already gives the default route
}

func (s *Store) endpointPath(nid, cid string) string {
	return filepath.Join(s.netDir(nid), "endpoints", cid+".json")
}

func (s *Store) leasePath(nid string, ip netip.Addr) string {
	return filepath.Join(s.netDir(nid), "leases", ip.String())
}

// EndpointsDir is the directory the DNS server of a network watches.
func (s *Store) EndpointsDir(nid string) string { return filepath.Join(s.netDir(nid), "endpoints") }

// Attach connects a container's namespace to a network: address, veth, route. On error
// nothing of it is left.
func (s *Store) Attach(ctx context.Context, cid, nsPath string, n *Network, o EndpointOptions) (_ *Endpoint, err error) {
	unlock, err := lockFile(filepath.Join(s.netDir(n.ID), "lock"), unix.LOCK_SH)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("network %s: %w", n.Name, ErrNotFound)
		}
		return nil, err
	}
	defer unlock()
	if _, err := os.Stat(filepath.Join(s.netDir(n.ID), "network.json")); err != nil {
		return nil, fmt.Errorf("network %s: %w", n.Name, ErrNotFound)
	}
	if _, err := os.Stat(s.endpointPath(n.ID, cid)); err == nil {
		return nil, fmt.Errorf("container %s is already attached to network %s: %w", o.Name, n.Name, ErrExists)
	}
	br, err := s.readyBridge(n)
	if err != nil {
		return nil, err
	}
	ip, err := s.lease(n, cid, o.IP)
	if err != nil {
		return nil, err
	}
	ep := &Endpoint{Container: cid, Network: n.ID, Name: o.Name, Aliases: o.Aliases, IP: ip,
		Prefix: n.Subnet.Bits(), Gateway: n.Gateway, MAC: o.MAC, HostVeth: vethName(cid, n.ID), IfName: o.IfName}
	if ep.MAC == "" {
		ep.MAC = macFor(ip)
	}
	if ep.IfName == "" {
		ep.IfName = "eth0"
	}
	if !n.Default() {
		// Docker answers by name, aliases, short id and (ours) the hostname on user networks
		// only; the default bridge has no DNS by name.
		ep.DNSNames = dedupe(append(append([]string{o.Name}, o.Aliases...), cid[:12], o.Hostname))
	}
	defer func() {
		if err != nil {
			s.detach(n, cid, true)
		}
	}()
	if err := writeJSON(s.endpointPath(n.ID, cid), ep, false); err != nil {
		return nil, err
	}
	if err := plugVeth(nsPath, br, n, ep, o.NoGateway || n.Internal); err != nil {
		return nil, fmt.Errorf("network %s: %w", n.Name, err)
	}
	if !n.Default() {
		if err := s.ensureDNS(n); err != nil {
			return nil, err
		}
	}
	return ep, nil
}

// readyBridge sets the bridge up once per boot; concurrent first users wait for each other.
func (s *Store) readyBridge(n *Network) (netlink.Link, error) {
	marker := filepath.Join(s.run, "ready", n.ID)
	if _, err := os.Stat(marker); err == nil {
		if br, err := netlink.LinkByName(n.Bridge); err == nil {
			return br, nil
		}
	}
	if err := os.MkdirAll(filepath.Join(s.run, "ready"), 0o700); err != nil {
		return nil, err
	}
	unlock, err := lockFile(filepath.Join(s.run, "ready", n.ID+".lock"), unix.LOCK_EX)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return s.ensureBridge(n)
}

// lease takes an address: the fixed one asked for, or the lowest free one (addresses are
// reused after removal, as docker's and the rule).
func (s *Store) lease(n *Network, cid string, want netip.Addr) (netip.Addr, error) {
	// A lease is a symlink whose target is its owner: made in one step with its content, so a
	// setup killed at any point never leaves a lease nobody owns (a file created, then
	// written, could be left empty).
	take := func(ip netip.Addr) error {
		return os.Symlink(cid, s.leasePath(n.ID, ip))
	}
	if want.IsValid() {
		if !want.Is4() || !n.Subnet.Contains(want) || want == n.Gateway || want == n.Subnet.Addr() || want == broadcast(n.Subnet) {
			return netip.Addr{}, fmt.Errorf("invalid address %s: %w: it must be a free host address of subnet %s", want, ErrInvalid, n.Subnet)
		}
		if err := take(want); err != nil {
			if os.IsExist(err) {
				return netip.Addr{}, fmt.Errorf("address %s on network %s: %w", want, n.Name, ErrAddrInUse)
			}
			return netip.Addr{}, err
		}
		return want, nil
	}
	pool := n.Subnet
	if n.IPRange.IsValid() {
		pool = n.IPRange
	}
	used := map[netip.Addr]bool{}
	if ents, err := os.ReadDir(filepath.Join(s.netDir(n.ID), "leases")); err == nil {
		for _, e := range ents {
			if a, err := netip.ParseAddr(e.Name()); err == nil {
				used[a] = true
			}
		}
	}
	last := broadcast(n.Subnet)
	for ip := pool.Addr().Next(); pool.Contains(ip) && ip != last; ip = ip.Next() {
		if ip == n.Gateway || used[ip] {
			continue
		}
		if err := take(ip); err == nil {
			return ip, nil
		} else if !os.IsExist(err) {
			return netip.Addr{}, err
		}
	}
	return netip.Addr{}, fmt.Errorf("network %s (%s): %w", n.Name, pool, ErrNoAddress)
}

func broadcast(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v |= ^uint32(0) >> p.Bits()
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// Detach disconnects a container from one network.
func (s *Store) Detach(ctx context.Context, cid string, n *Network) error {
	if _, err := os.Stat(s.endpointPath(n.ID, cid)); err != nil {
		return fmt.Errorf("container %s, network %s: %w", cid[:12], n.Name, ErrNotConnected)
	}
	return s.detach(n, cid, true)
}

// detach undoes Attach in reverse; every step tolerates its object being gone. unplug
// deletes the veth (not needed when the namespace goes away with it).
func (s *Store) detach(n *Network, cid string, unplug bool) error {
	ep, _ := readEndpoint(s.endpointPath(n.ID, cid))
	if unplug {
		// Deleting the host side deletes the container's side too.
		if err := deleteLink(vethName(cid, n.ID)); err != nil {
			return err
		}
	}
	if ep != nil && ep.IP.IsValid() {
		s.releaseLease(n.ID, ep.IP, cid)
	} else {
		s.releaseLeasesOf(n.ID, cid)
	}
	if err := os.Remove(s.endpointPath(n.ID, cid)); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

// leaseOwner returns the container holding the lease at p ("" when none can be read). Leases
// made before they were symlinks are files holding the id.
func leaseOwner(p string) string {
	if owner, err := os.Readlink(p); err == nil {
		return owner
	}
	b, _ := os.ReadFile(p)
	return string(b)
}

// releaseLease removes a lease only if this container holds it.
func (s *Store) releaseLease(nid string, ip netip.Addr, cid string) {
	p := s.leasePath(nid, ip)
	if leaseOwner(p) == cid {
		os.Remove(p)
	}
}

func (s *Store) releaseLeasesOf(nid, cid string) {
	dir := filepath.Join(s.netDir(nid), "leases")
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if leaseOwner(filepath.Join(dir, e.Name())) == cid {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

func readEndpoint(p string) (*Endpoint, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var ep Endpoint
	if err := json.Unmarshal(b, &ep); err != nil {
		return nil, err
	}
	return &ep, nil
}

// endpoints lists the containers attached to a network.
func (s *Store) endpoints(nid string) ([]*Endpoint, error) {
	dir := s.EndpointsDir(nid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []*Endpoint
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		if ep, err := readEndpoint(filepath.Join(dir, e.Name())); err == nil {
			out = append(out, ep)
		}
	}
	return out, nil
}

// Endpoints lists the containers attached to a network.
func (s *Store) Endpoints(n *Network) ([]*Endpoint, error) { return s.endpoints(n.ID) }

// Attachments lists a container's endpoints on every network.
func (s *Store) Attachments(cid string) []*Endpoint {
	all, _ := s.list()
	var out []*Endpoint
	for _, n := range all {
		if ep, err := readEndpoint(s.endpointPath(n.ID, cid)); err == nil {
			out = append(out, ep)
		}
	}
	return out
}

// Release frees everything a container holds: port rules, its namespace pin, endpoints on
// every network, leases. It is the undo of a whole setup, complete or not.
//
// The veths are not deleted one by one: deleting a veth waits for the kernel's RCU grace
// period (10-25 ms each here), while a namespace whose last pin and process are gone is torn
// down by the kernel's cleanup worker, veths included, in batches and off our clock. Their
// names are unique per container and network, so nothing waits for them; a container that
// still has processes (a reconcile after its monitor died) keeps its veth until they exit.
//
// rules says whether port rules may exist (published ports, or unknown after a crash):
// finding them costs a dump of the table, which a container without ports skips.
func (s *Store) Release(ctx context.Context, cid string, rules bool) error {
	var errs []error
	if rules {
		if err := s.fw.DelTags(nft.ContainerTag(cid)); err != nil {
			errs = append(errs, err)
		}
	}
	pinned := isNsfs(s.NetnsPath(cid))
	if err := s.DeleteNetns(cid); err != nil {
		errs = append(errs, err)
	}
	all, _ := s.list()
	for _, n := range all {
		// A record being written when its writer was killed (writeJSON's temporary).
		os.Remove(s.endpointPath(n.ID, cid) + ".tmp")
		if _, err := os.Stat(s.endpointPath(n.ID, cid)); err != nil {
			// A lease may exist without its record (the setup died between them). Finding
			// one means reading every lease of the network: only when a setup was
			// interrupted (the namespace is still pinned: a finished one is unpinned when the
			// container stops); otherwise Reconcile does it.
			if pinned {
				s.releaseLeasesOf(n.ID, cid)
			}
			continue
		}
		if err := s.detach(n, cid, !pinned); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Reconcile releases what belongs to containers for which keep returns false: endpoints,
// leases, port rules and namespace pins left by a crash. keep is the container package's
// view (the container exists and its run is in progress or running).
func (s *Store) Reconcile(ctx context.Context, keep func(cid string) bool) {
	owners := map[string]bool{}
	all, _ := s.list()
	for _, n := range all {
		ents, _ := os.ReadDir(filepath.Join(s.netDir(n.ID), "leases"))
		for _, e := range ents {
			if owner := leaseOwner(filepath.Join(s.netDir(n.ID), "leases", e.Name())); owner != "" {
				owners[owner] = true
			}
		}
		ents, _ = os.ReadDir(s.EndpointsDir(n.ID))
		for _, e := range ents {
			owners[strings.TrimSuffix(strings.TrimSuffix(e.Name(), ".tmp"), ".json")] = true
		}
	}
	if tags, err := s.fw.Tags(); err == nil {
		for t := range tags {
			if cid, ok := strings.CutPrefix(t, "c:"); ok {
				owners[cid] = true
			}
		}
	}
	ents, _ := os.ReadDir(filepath.Join(s.run, "netns"))
	for _, e := range ents {
		owners[e.Name()] = true
	}
	for cid := range owners {
		if len(cid) == 64 && !keep(cid) {
			s.Release(ctx, cid, true)
			for _, n := range all {
				s.releaseLeasesOf(n.ID, cid)
			}
		}
	}
}

func dedupe(in []string) []string {
	var out []string
	for _, s := range in {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

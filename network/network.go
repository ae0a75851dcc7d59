package network

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/network/nft"
)

// DefaultName is the network a container joins when it names none (docker's "bridge").
const DefaultName = "bridge"

// Docker's option keys for bridge networks.
const (
	OptBridgeName = "com.docker.network.bridge.name"
	OptMTU        = "com.docker.network.driver.mtu"
)

// Network is one bridge network (network.json).
type Network struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Driver   string            `json:"driver"`
	Created  time.Time         `json:"created"`
	Bridge   string            `json:"bridge"`
	Subnet   netip.Prefix      `json:"subnet"`
	Gateway  netip.Addr        `json:"gateway"`
	IPRange  netip.Prefix      `json:"ipRange,omitzero"`
	MTU      int               `json:"mtu"`
	Internal bool              `json:"internal,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	Options  map[string]string `json:"options,omitempty"`
}

// Default tells whether n is the default bridge network (no DNS by name there, as docker).
func (n *Network) Default() bool { return n.Name == DefaultName }

// Store owns the networks of one data root.
type Store struct {
	dir        string // <root>/networks
	run        string // run-time dir (tmpfs)
	fw         nft.Backend
	bridge     string       // the default network's bridge device
	subnet     netip.Prefix // the default network's subnet when the data root chose one
	Self       string       // the berth executable (the DNS server runs as `berth network dns-server`)
	ResolvConf string       // the host's resolver configuration (DNS upstreams)
}

// Open prepares the networks of a data root. The default root uses bridge "berth0", table
// "berth" and /run/berth/net; another root gets names derived from its path, so that test
// roots never meet each other's devices, rules or namespaces.
func Open(dataRoot string) (*Store, error) {
	s := &Store{dir: filepath.Join(dataRoot, "networks"), ResolvConf: "/etc/resolv.conf"}
	suffix := ""
	if dataRoot != "/var/lib/berth" {
		sum := sha256.Sum256([]byte(dataRoot))
		suffix = hex.EncodeToString(sum[:4])
	}
	s.fw = nft.New(nft.TableName(suffix))
	if suffix == "" {
		s.bridge, s.run = "berth0", "/run/berth/net"
	} else {
		s.bridge, s.run = "berth-"+suffix[:6], "/run/berth/net-"+suffix
	}
	if v := os.Getenv("BERTH_DEFAULT_BRIDGE"); v != "" {
		s.bridge = v
	}
	if v := os.Getenv("BERTH_DEFAULT_SUBNET"); v != "" {
		p, err := netip.ParsePrefix(v)
		if err != nil || !p.Addr().Is4() {
			return nil, fmt.Errorf("BERTH_DEFAULT_SUBNET %q: %w: want an IPv4 subnet such as 172.30.0.0/16", v, ErrInvalid)
		}
		s.subnet = p.Masked()
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("networks: %w", err)
	}
	return s, nil
}

// Firewall is the data root's firewall (its nftables table, or the iptables fallback).
func (s *Store) Firewall() nft.Backend { return s.fw }

func (s *Store) netDir(id string) string { return filepath.Join(s.dir, id) }

// lockFile takes an flock on path (exclusive or shared) and returns its release.
func lockFile(path string, how int) (func(), error) {
	fd, err := unix.Open(path, unix.O_CREAT|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(fd, how); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return func() { unix.Close(fd) }, nil
}

func (s *Store) lockAll(how int) (func(), error) { return lockFile(filepath.Join(s.dir, "lock"), how) }

// CreateOptions are `network create`'s flags.
type CreateOptions struct {
	Name     string
	Driver   string
	Subnet   string
	Gateway  string
	IPRange  string
	Internal bool
	Labels   map[string]string
	Options  map[string]string
}

var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// Create makes a user-defined network; its bridge and rules are set up on first use.
func (s *Store) Create(ctx context.Context, o CreateOptions) (*Network, error) {
	if !validName.MatchString(o.Name) {
		return nil, fmt.Errorf("invalid network name %q: %w: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", o.Name, ErrInvalid)
	}
	switch o.Name {
	case DefaultName, "host", "none":
		return nil, fmt.Errorf("network with name %s already exists: %w", o.Name, ErrExists)
	}
	if o.Driver != "" && o.Driver != "bridge" {
		return nil, fmt.Errorf("network driver %q is not supported: %w: use bridge", o.Driver, ErrInvalid)
	}
	// The default network's subnet is chosen first, so a user network cannot take it.
	if _, err := s.DefaultNetwork(); err != nil {
		return nil, err
	}
	unlock, err := s.lockAll(unix.LOCK_EX)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return s.create(o)
}

// create runs under the exclusive store lock.
func (s *Store) create(o CreateOptions) (*Network, error) {
	all, err := s.list()
	if err != nil {
		return nil, err
	}
	for _, n := range all {
		if n.Name == o.Name {
			return nil, fmt.Errorf("network with name %s already exists: %w", o.Name, ErrExists)
		}
	}
	n := &Network{ID: newID(), Name: o.Name, Driver: "bridge", Created: time.Now().UTC(), MTU: 1500,
		Internal: o.Internal, Labels: o.Labels, Options: o.Options}
	if o.Subnet != "" {
		p, err := netip.ParsePrefix(o.Subnet)
		if err != nil || !p.Addr().Is4() {
			return nil, fmt.Errorf("invalid subnet %q: %w: want an IPv4 CIDR such as 10.10.0.0/24", o.Subnet, ErrInvalid)
		}
		if p.Bits() > 30 {
			return nil, fmt.Errorf("subnet %s is too small: %w: it needs room for a gateway and a container (/30 or larger)", p, ErrInvalid)
		}
		n.Subnet = p.Masked()
		for _, other := range all {
			if other.Subnet.Overlaps(n.Subnet) {
				return nil, fmt.Errorf("invalid pool request: %w: %s overlaps %s of network %s", ErrOverlap, n.Subnet, other.Subnet, other.Name)
			}
		}
		if r := routeOverlap(n.Subnet, ""); r != "" {
			return nil, fmt.Errorf("invalid pool request: %w: %s overlaps the host's route %s", ErrOverlap, n.Subnet, r)
		}
	} else {
		if o.Gateway != "" || o.IPRange != "" {
			return nil, fmt.Errorf("%w: --gateway and --ip-range need --subnet", ErrInvalid)
		}
		if n.Subnet, err = s.pickSubnet(all, o.Name == DefaultName); err != nil {
			return nil, err
		}
	}
	if o.Gateway != "" {
		g, err := netip.ParseAddr(o.Gateway)
		if err != nil || !n.Subnet.Contains(g) {
			return nil, fmt.Errorf("invalid gateway %q: %w: it must be an address in subnet %s", o.Gateway, ErrInvalid, n.Subnet)
		}
		n.Gateway = g
	} else {
		n.Gateway = n.Subnet.Addr().Next()
	}
	if o.IPRange != "" {
		r, err := netip.ParsePrefix(o.IPRange)
		if err != nil || !n.Subnet.Contains(r.Masked().Addr()) || r.Bits() < n.Subnet.Bits() {
			return nil, fmt.Errorf("invalid ip range %q: %w: it must be a CIDR inside subnet %s", o.IPRange, ErrInvalid, n.Subnet)
		}
		n.IPRange = r.Masked()
	}
	if v := o.Options[OptMTU]; v != "" {
		mtu, err := strconv.Atoi(v)
		if err != nil || mtu < 68 || mtu > 65535 {
			return nil, fmt.Errorf("invalid %s %q: %w", OptMTU, v, ErrInvalid)
		}
		n.MTU = mtu
	}
	switch {
	case o.Name == DefaultName:
		n.Bridge = s.bridge
	case o.Options[OptBridgeName] != "":
		n.Bridge = o.Options[OptBridgeName]
		if len(n.Bridge) > 15 || strings.ContainsAny(n.Bridge, "/ \t:") {
			return nil, fmt.Errorf("invalid bridge name %q: %w: at most 15 characters, no '/', ':' or spaces", n.Bridge, ErrInvalid)
		}
	default:
		n.Bridge = "br-" + n.ID[:12]
	}
	for _, other := range all {
		if other.Bridge == n.Bridge {
			return nil, fmt.Errorf("bridge name %s is used by network %s: %w", n.Bridge, other.Name, ErrExists)
		}
	}
	if err := os.MkdirAll(filepath.Join(s.netDir(n.ID), "leases"), 0o700); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(s.netDir(n.ID), "endpoints"), 0o700); err != nil {
		return nil, err
	}
	if err := writeJSON(filepath.Join(s.netDir(n.ID), "network.json"), n, true); err != nil {
		os.RemoveAll(s.netDir(n.ID))
		return nil, err
	}
	return n, nil
}

// pickSubnet chooses a free subnet: one that overlaps neither another network of this data
// root nor any route of the host (docker's rule; a host on 172.30/16 gets the next one).
func (s *Store) pickSubnet(all []*Network, dflt bool) (netip.Prefix, error) {
	var cands []netip.Prefix
	if dflt {
		if s.subnet.IsValid() {
			cands = []netip.Prefix{s.subnet}
		} else {
			for _, c := range []string{"172.30.0.0/16", "172.31.0.0/16", "10.230.0.0/16", "10.231.0.0/16", "192.168.230.0/24"} {
				cands = append(cands, netip.MustParsePrefix(c))
			}
		}
	} else {
		for i := 0; i < 256; i++ {
			cands = append(cands, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 210, byte(i), 0}), 24))
		}
	}
next:
	for _, c := range cands {
		for _, n := range all {
			if n.Subnet.Overlaps(c) {
				continue next
			}
		}
		if routeOverlap(c, "") != "" {
			continue
		}
		return c, nil
	}
	return netip.Prefix{}, fmt.Errorf("%w: no free subnet left in berth's pools; give one with --subnet", ErrOverlap)
}

func newID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// writeJSON writes a file atomically; durable adds the fsync that a record which must survive
// a power loss needs (a network). Endpoints and leases describe veths and namespaces, which a
// reboot removes anyway: they skip it.
func writeJSON(path string, v any, durable bool) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if durable {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	f.Close()
	return os.Rename(tmp, path)
}

func readNetwork(dir string) (*Network, error) {
	b, err := os.ReadFile(filepath.Join(dir, "network.json"))
	if err != nil {
		return nil, err
	}
	var n Network
	if err := json.Unmarshal(b, &n); err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return &n, nil
}

func (s *Store) list() ([]*Network, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var out []*Network
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		n, err := readNetwork(filepath.Join(s.dir, e.Name()))
		if err != nil {
			continue // a create that crashed before its record: Remove's leftovers
		}
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

// List returns every network of the data root, the default one first (created on first
// call, as docker always has its "bridge").
func (s *Store) List() ([]*Network, error) {
	if _, err := s.DefaultNetwork(); err != nil {
		return nil, err
	}
	all, err := s.list()
	if err != nil {
		return nil, err
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Default() && !all[j].Default() })
	return all, nil
}

// DefaultNetwork returns the "bridge" network, creating its record on first use.
func (s *Store) DefaultNetwork() (*Network, error) {
	if n, err := s.lookup(DefaultName); err == nil {
		return n, nil
	}
	unlock, err := s.lockAll(unix.LOCK_EX)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if n, err := s.lookup(DefaultName); err == nil {
		return n, nil
	}
	return s.create(CreateOptions{Name: DefaultName})
}

// Lookup finds a network by name, full id or unique id prefix.
func (s *Store) Lookup(query string) (*Network, error) {
	if query == DefaultName {
		return s.DefaultNetwork()
	}
	return s.lookup(query)
}

func (s *Store) lookup(query string) (*Network, error) {
	all, err := s.list()
	if err != nil {
		return nil, err
	}
	for _, n := range all {
		if n.Name == query || n.ID == query {
			return n, nil
		}
	}
	var found *Network
	for _, n := range all {
		if len(query) >= 1 && strings.HasPrefix(n.ID, query) {
			if found != nil {
				return nil, fmt.Errorf("network %s is ambiguous: %w", query, ErrNotFound)
			}
			found = n
		}
	}
	if found == nil {
		return nil, fmt.Errorf("network %s: %w", query, ErrNotFound)
	}
	return found, nil
}

// Remove deletes a user-defined network: its DNS server, rules, bridge and records. A network
// with containers attached is refused (the caller disconnects them first for --force).
func (s *Store) Remove(ctx context.Context, n *Network) error {
	if n.Default() {
		return fmt.Errorf("%s is a pre-defined network and cannot be removed: %w", n.Name, ErrPredefined)
	}
	unlock, err := s.lockAll(unix.LOCK_EX)
	if err != nil {
		return err
	}
	defer unlock()
	unlockNet, err := lockFile(filepath.Join(s.netDir(n.ID), "lock"), unix.LOCK_EX)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	defer unlockNet()
	if eps, _ := s.endpoints(n.ID); len(eps) > 0 {
		return fmt.Errorf("error while removing network: network %s id %s has active endpoints: %w", n.Name, n.ID, ErrInUse)
	}
	return s.teardownNetwork(n)
}

// teardownNetwork undoes a network's host side and removes its records.
func (s *Store) teardownNetwork(n *Network) error {
	s.stopDNS(n.ID)
	if err := s.fw.DelNetwork(n.ID, n.Bridge); err != nil {
		return err
	}
	s.fw.DropForward(n.Bridge)
	if err := deleteLink(n.Bridge); err != nil {
		return err
	}
	os.Remove(filepath.Join(s.run, "ready", n.ID))
	// The record goes first: a crash after it leaves a directory that list() skips.
	if err := os.Remove(filepath.Join(s.netDir(n.ID), "network.json")); err != nil && !os.IsNotExist(err) {
		return err
	}
	return os.RemoveAll(s.netDir(n.ID))
}

// Reset removes every network of the data root (including the default bridge) and the
// firewall table: `system reset` and tests. Containers must be gone.
func (s *Store) Reset(ctx context.Context) error {
	all, err := s.list()
	if err != nil {
		return err
	}
	for _, n := range all {
		eps, _ := s.endpoints(n.ID)
		for _, ep := range eps {
			s.Release(ctx, ep.Container, true)
		}
		if err := s.teardownNetwork(n); err != nil {
			return err
		}
	}
	if err := s.fw.Delete(); err != nil {
		return err
	}
	s.removeRunDir()
	return nil
}

// Leftovers lists what of this data root is on the host outside the data root: bridges,
// the firewall table, the run-time dir. After Reset it must be empty (the tests' leak check).
func (s *Store) Leftovers() []string {
	var out []string
	names := map[string]bool{s.bridge: true}
	if all, err := s.list(); err == nil {
		for _, n := range all {
			names[n.Bridge] = true
		}
	}
	for name := range names {
		if _, err := netlink.LinkByName(name); err == nil {
			out = append(out, "bridge "+name)
		}
	}
	if tags, err := s.fw.Tags(); err == nil && s.fw.Exists() {
		out = append(out, fmt.Sprintf("firewall %s (%d owners)", s.fw.Name(), len(tags)))
	}
	if _, err := os.Stat(s.run); err == nil {
		out = append(out, "run dir "+s.run)
	}
	return out
}

// FirstUseThisBoot tells whether this is the first container setup since the host booted
// (the run-time dir is on tmpfs), and marks it done: the caller reconciles then, so that the
// leases of containers a reboot stopped are free before the first new container takes one.
func (s *Store) FirstUseThisBoot() bool {
	p := filepath.Join(s.run, "booted")
	if _, err := os.Stat(p); err == nil {
		return false
	}
	if err := os.MkdirAll(s.run, 0o711); err != nil {
		return false
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return false // another berth command won: it reconciles
	}
	f.Close()
	return true
}

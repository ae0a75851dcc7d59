package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/network/nft"
)

// NetnsPath is where the container's network namespace is pinned.
func (s *Store) NetnsPath(cid string) string { return filepath.Join(s.run, "netns", cid) }

// CreateNetns makes a new network namespace for the container, pinned at NetnsPath, with its
// loopback up. An existing one (a restart of the same run) is kept.
func (s *Store) CreateNetns(cid string) (string, error) {
	p := s.NetnsPath(cid)
	if isNsfs(p) {
		return p, nil
	}
	if err := s.sharedNetnsDir(); err != nil {
		return "", err
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDONLY|unix.O_CLOEXEC, 0o444)
	if err != nil {
		return "", fmt.Errorf("network namespace: %w", err)
	}
	f.Close()
	errc := make(chan error, 1)
	go func() {
		// This thread moves to the new namespace for good: it stays locked, so the Go runtime
		// ends it when the goroutine returns instead of reusing it elsewhere.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare: %w", err)
			return
		}
		src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
		if err := unix.Mount(src, p, "", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("pin %s: %w", p, err)
			return
		}
		// Loopback up here, while we are inside: no netlink handle into the namespace needed.
		lo, err := netlink.LinkByName("lo")
		if err == nil {
			err = netlink.LinkSetUp(lo)
		}
		errc <- err
	}()
	if err := <-errc; err != nil {
		s.DeleteNetns(cid)
		return "", fmt.Errorf("network namespace: %w", err)
	}
	return p, nil
}

// DeleteNetns unpins the container's network namespace; the kernel frees it (and the
// container side of every veth in it) once no process is left inside.
func (s *Store) DeleteNetns(cid string) error {
	p := s.NetnsPath(cid)
	if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unpin network namespace %s: %w", p, err)
	}
	if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}

func isNsfs(p string) bool {
	var st unix.Statfs_t
	return unix.Statfs(p, &st) == nil && st.Type == unix.NSFS_MAGIC
}

// sharedNetnsDir makes <run>/netns a shared mount point of its own (iproute2 does the same
// for /run/netns): mount namespaces copied from the host get the pins as peers, and an
// unpin reaches them too instead of keeping the namespace alive there.
func (s *Store) sharedNetnsDir() error {
	d := filepath.Join(s.run, "netns")
	if err := os.MkdirAll(d, 0o711); err != nil {
		return err
	}
	if err := unix.Mount("", d, "", unix.MS_SHARED|unix.MS_REC, ""); err == nil {
		return nil
	} else if !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("make %s shared: %w", d, err)
	}
	// EINVAL: not a mount point yet.
	if err := unix.Mount(d, d, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s: %w", d, err)
	}
	if err := unix.Mount("", d, "", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make %s shared: %w", d, err)
	}
	return nil
}

// removeRunDir unmounts the shared netns dir and removes the run-time dir (Reset).
func (s *Store) removeRunDir() {
	d := filepath.Join(s.run, "netns")
	for unix.Unmount(d, unix.MNT_DETACH) == nil {
	}
	os.RemoveAll(s.run)
}

// ensureBridge brings up the network's bridge with its gateway address, the sysctls it needs
// and its firewall rules. A marker in the run dir makes it a cheap check after the first
// container of the boot (the bridge's existence is still checked: an operator may delete it).
func (s *Store) ensureBridge(n *Network) (netlink.Link, error) {
	marker := filepath.Join(s.run, "ready", n.ID)
	br, err := netlink.LinkByName(n.Bridge)
	if err == nil {
		if _, err := os.Stat(marker); err == nil {
			return br, nil
		}
	} else {
		if r := routeOverlap(n.Subnet, n.Bridge); r != "" {
			return nil, fmt.Errorf("network %s: %w: its subnet %s overlaps the host's route %s", n.Name, ErrOverlap, n.Subnet, r)
		}
		la := netlink.NewLinkAttrs()
		la.Name, la.MTU = n.Bridge, n.MTU
		// A MAC of its own, fixed: without one the kernel gives a bridge the lowest MAC of its
		// ports, which changes as containers come and go, and the containers' ARP entry for
		// the gateway goes stale (their traffic out and to the DNS server is lost).
		la.HardwareAddr, _ = net.ParseMAC(macFor(n.Gateway))
		if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: la}); err != nil && !errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("create bridge %s: %w", n.Bridge, err)
		}
		if br, err = netlink.LinkByName(n.Bridge); err != nil {
			return nil, fmt.Errorf("bridge %s: %w", n.Bridge, err)
		}
	}
	if mac, _ := net.ParseMAC(macFor(n.Gateway)); br.Attrs().HardwareAddr.String() != mac.String() {
		if err := netlink.LinkSetHardwareAddr(br, mac); err != nil {
			return nil, fmt.Errorf("bridge %s mac: %w", n.Bridge, err)
		}
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: n.Gateway.AsSlice(), Mask: net.CIDRMask(n.Subnet.Bits(), 32)}}
	if err := netlink.AddrAdd(br, addr); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("address %s on bridge %s: %w", n.Gateway, n.Bridge, err)
	}
	if err := netlink.LinkSetUp(br); err != nil {
		return nil, fmt.Errorf("bridge %s up: %w", n.Bridge, err)
	}
	// route_localnet lets the output hook DNAT 127.0.0.1:PORT to a container on this bridge.
	if err := writeSysctl("net/ipv4/conf/"+n.Bridge+"/route_localnet", "1"); err != nil {
		return nil, err
	}
	if !n.Internal {
		if err := writeSysctl("net/ipv4/ip_forward", "1"); err != nil {
			return nil, err
		}
	}
	var all []nft.Network
	if nets, err := s.list(); err == nil {
		for _, o := range nets {
			all = append(all, fwNetwork(o))
		}
	}
	if err := s.fw.AddNetwork(fwNetwork(n), all); err != nil {
		return nil, err
	}
	if err := s.fw.AcceptForward(n.Bridge); err != nil {
		return nil, fmt.Errorf("network %s: %w", n.Name, err)
	}
	if err := os.MkdirAll(filepath.Dir(marker), 0o700); err != nil {
		return nil, err
	}
	f, err := os.Create(marker)
	if err != nil {
		return nil, err
	}
	f.Close()
	return br, nil
}

func writeSysctl(key, val string) error {
	p := "/proc/sys/" + key
	if b, err := os.ReadFile(p); err == nil && strings.TrimSpace(string(b)) == val {
		return nil
	}
	if err := os.WriteFile(p, []byte(val), 0o644); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", strings.ReplaceAll(key, "/", "."), val, err)
	}
	return nil
}

func deleteLink(name string) error {
	l, err := netlink.LinkByName(name)
	if err != nil {
		return nil
	}
	if err := netlink.LinkDel(l); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete link %s: %w", name, err)
	}
	return nil
}

// vethName is the host side of a container's veth on a network: derived from both ids, so a
// release finds it even when the setup died before recording it.
func vethName(cid, nid string) string { return "vb" + cid[:8] + nid[:5] }

// plugVeth creates the veth pair with its container side already in the namespace (one
// netlink request), attaches the host side to the bridge, and configures the container side:
// name, MAC, address, default route (unless noGateway).
func plugVeth(nsPath string, br netlink.Link, n *Network, ep *Endpoint, noGateway bool) error {
	ns, err := netns.GetFromPath(nsPath)
	if err != nil {
		return fmt.Errorf("network namespace %s: %w", nsPath, err)
	}
	defer ns.Close()
	mac, err := net.ParseMAC(ep.MAC)
	if err != nil {
		return fmt.Errorf("mac address %q: %w", ep.MAC, err)
	}
	la := netlink.NewLinkAttrs()
	la.Name, la.MTU, la.MasterIndex = ep.HostVeth, n.MTU, br.Attrs().Index
	la.Flags = net.FlagUp
	veth := &netlink.Veth{LinkAttrs: la, PeerName: ep.IfName, PeerHardwareAddr: mac,
		PeerNamespace: netlink.NsFd(int(ns)), PeerMTU: uint32(n.MTU)}
	err = netlink.LinkAdd(veth)
	if errors.Is(err, unix.EEXIST) {
		// The name comes from this container's and network's ids: the link is a leftover of
		// this container's earlier run, killed before its clean-up released it.
		if old, lerr := netlink.LinkByName(ep.HostVeth); lerr == nil {
			netlink.LinkDel(old)
		}
		err = netlink.LinkAdd(veth)
	}
	if err != nil {
		return fmt.Errorf("create veth %s: %w", ep.HostVeth, err)
	}
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", nsPath, err)
	}
	defer h.Close()
	peer, err := h.LinkByName(ep.IfName)
	if err != nil {
		return fmt.Errorf("container side of %s: %w", ep.HostVeth, err)
	}
	ipn := &net.IPNet{IP: ep.IP.AsSlice(), Mask: net.CIDRMask(n.Subnet.Bits(), 32)}
	if err := h.AddrAdd(peer, &netlink.Addr{IPNet: ipn}); err != nil {
		return fmt.Errorf("address %s: %w", ep.IP, err)
	}
	if err := h.LinkSetUp(peer); err != nil {
		return fmt.Errorf("%s up: %w", ep.IfName, err)
	}
	if !noGateway {
		r := &netlink.Route{LinkIndex: peer.Attrs().Index, Gw: n.Gateway.AsSlice()}
		if err := h.RouteAdd(r); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("default route via %s: %w", n.Gateway, err)
		}
	}
	return nil
}

// routeOverlap names a host route that overlaps p (ignoring routes through the network's own
// bridge), or "".
func routeOverlap(p netip.Prefix, ownBridge string) string {
	routes, err := netlink.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return ""
	}
	for _, r := range routes {
		if r.Dst == nil {
			continue // the default route overlaps everything by design
		}
		ones, _ := r.Dst.Mask.Size()
		if ones == 0 {
			continue
		}
		if ownBridge != "" {
			if l, err := netlink.LinkByIndex(r.LinkIndex); err == nil && l.Attrs().Name == ownBridge {
				continue
			}
		}
		rp, ok := netip.AddrFromSlice(r.Dst.IP)
		if !ok {
			continue
		}
		if netip.PrefixFrom(rp.Unmap(), ones).Overlaps(p) {
			return r.Dst.String()
		}
	}
	return ""
}

// macFor derives a locally administered MAC from the address, as docker did: stable for an
// address, so a neighbour's ARP cache stays right when an address is reused.
func macFor(ip netip.Addr) string {
	b := ip.As4()
	return net.HardwareAddr{0x02, 0x42, b[0], b[1], b[2], b[3]}.String()
}

func fwNetwork(n *Network) nft.Network {
	return nft.Network{ID: n.ID, Bridge: n.Bridge, Subnet: n.Subnet, Internal: n.Internal}
}

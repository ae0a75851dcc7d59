package network

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/network"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/network/nft"
)

// Publish makes a container's published ports reachable: for each binding it reserves the
// host port by binding a socket to it (so that the port is really the container's: another
// program cannot take it, and a port already in use fails the run here), then adds the DNAT
// rules in one transaction. The sockets are returned for the container's monitor to hold for
// the container's life; they are never listened on, the kernel's NAT carries the traffic.
// It returns the bindings with the host ports actually taken (ephemeral ones chosen).
func (s *Store) Publish(cid string, ip netip.Addr, want network.PortMap) (network.PortMap, []*os.File, error) {
	got := network.PortMap{}
	var held []*os.File
	var rules []nft.DNAT
	fail := func(err error) (network.PortMap, []*os.File, error) {
		for _, f := range held {
			f.Close()
		}
		return nil, nil, err
	}
	ports := make([]network.Port, 0, len(want))
	for p := range want {
		ports = append(ports, p)
	}
	sort.Slice(ports, func(i, j int) bool { return ports[i].String() < ports[j].String() })
	for _, p := range ports {
		for _, b := range want[p] {
			hip := b.HostIP
			if hip.IsValid() && !hip.Is4() {
				if hip.IsUnspecified() {
					continue // "::" next to "0.0.0.0": IPv4 only for now (see the note)
				}
				return fail(fmt.Errorf("publish %s on %s: %w: IPv6 host addresses are not supported", p, hip, ErrInvalid))
			}
			if !hip.IsValid() {
				hip = netip.IPv4Unspecified()
			}
			f, port, err := reserve(string(p.Proto()), hip, b.HostPort)
			if err != nil {
				return fail(err)
			}
			held = append(held, f)
			got[p] = append(got[p], network.PortBinding{HostIP: hip, HostPort: strconv.Itoa(int(port))})
			rules = append(rules, nft.DNAT{Proto: string(p.Proto()), HostIP: hip, HostPort: port,
				ContainerIP: ip, ContainerPort: p.Num()})
		}
		if len(want[p]) == 0 {
			got[p] = nil
		}
	}
	if err := s.fw.AddPorts(cid, rules); err != nil {
		return fail(err)
	}
	return got, held, nil
}

// reserve binds a socket to hostIP:hostPort ("" = ephemeral, "A-B" = the first free in the
// range). No SO_REUSEADDR: with it two bound, non-listening sockets could share a port.
func reserve(proto string, hip netip.Addr, hostPort string) (*os.File, uint16, error) {
	lo, hi := 0, 0
	if hostPort != "" {
		a, b, isRange := strings.Cut(hostPort, "-")
		var err1, err2 error
		lo, err1 = strconv.Atoi(a)
		hi = lo
		if isRange {
			hi, err2 = strconv.Atoi(b)
		}
		if err1 != nil || err2 != nil || lo < 1 || hi > 65535 || hi < lo {
			return nil, 0, fmt.Errorf("invalid host port %q: %w", hostPort, ErrInvalid)
		}
	}
	typ := unix.SOCK_STREAM
	if proto == "udp" {
		typ = unix.SOCK_DGRAM
	}
	for port := lo; port <= hi; port++ {
		fd, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, 0, err
		}
		if err := unix.Bind(fd, &unix.SockaddrInet4{Port: port, Addr: hip.As4()}); err != nil {
			unix.Close(fd)
			if errors.Is(err, unix.EADDRINUSE) {
				continue
			}
			if errors.Is(err, unix.EADDRNOTAVAIL) {
				return nil, 0, fmt.Errorf("publish %s:%d/%s: %w: %s is not an address of this host", hip, port, proto, ErrInvalid, hip)
			}
			return nil, 0, fmt.Errorf("publish %s:%d/%s: %w", hip, port, proto, err)
		}
		sa, err := unix.Getsockname(fd)
		if err != nil {
			unix.Close(fd)
			return nil, 0, err
		}
		return os.NewFile(uintptr(fd), "port"), uint16(sa.(*unix.SockaddrInet4).Port), nil
	}
	what := hostPort
	if lo != hi {
		what = "any port of " + hostPort
	}
	return nil, 0, fmt.Errorf("bind for %s:%s failed: %w: stop the program using it or publish another port", hip, what, ErrPortInUse)
}

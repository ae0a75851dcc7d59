package opts

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/network"
)

// ParsePublish parses -p values with docker's grammar:
//
//	[[IP:][HOSTPORT[-END]]:]CPORT[-END][/PROTO]     IPv6 addresses in brackets: [::1]:80:80
//
// A container range needs a host range of the same size (or no host port); one container
// port with a host range takes the first free host port of the range at start. Every
// published port is exposed too, as docker does.
func ParsePublish(values []string) (network.PortMap, network.PortSet, error) {
	pm, exposed := network.PortMap{}, network.PortSet{}
	for _, v := range values {
		if err := parsePublish(v, pm, exposed); err != nil {
			return nil, nil, err
		}
	}
	return pm, exposed, nil
}

func parsePublish(v string, pm network.PortMap, exposed network.PortSet) error {
	bad := func(why string) error {
		return fmt.Errorf("invalid port specification %q: %s; use [IP:][HOSTPORT:]CONTAINERPORT[/tcp|/udp]", v, why)
	}
	rest, proto := v, "tcp"
	if i := strings.LastIndexByte(rest, '/'); i >= 0 {
		rest, proto = rest[:i], strings.ToLower(rest[i+1:])
	}
	if proto != "tcp" && proto != "udp" {
		return bad("protocol must be tcp or udp")
	}
	var ipPart, hostPart, ctrPart string
	if strings.HasPrefix(rest, "[") {
		end := strings.Index(rest, "]")
		if end < 0 || len(rest) < end+2 || rest[end+1] != ':' {
			return bad("unterminated IPv6 address")
		}
		ipPart = rest[1:end]
		rest = rest[end+2:]
		h, c, ok := strings.Cut(rest, ":")
		if !ok {
			return bad("missing container port")
		}
		hostPart, ctrPart = h, c
	} else {
		parts := strings.Split(rest, ":")
		switch len(parts) {
		case 1:
			ctrPart = parts[0]
		case 2:
			hostPart, ctrPart = parts[0], parts[1]
		case 3:
			ipPart, hostPart, ctrPart = parts[0], parts[1], parts[2]
		default:
			return bad("too many colons")
		}
	}
	var hostIP netip.Addr
	if ipPart != "" {
		a, err := netip.ParseAddr(ipPart)
		if err != nil {
			return bad(fmt.Sprintf("%q is not an IP address", ipPart))
		}
		hostIP = a.Unmap()
	}
	clo, chi, err := portRange(ctrPart)
	if err != nil {
		return bad("container port " + err.Error())
	}
	hlo, hhi := 0, 0
	if hostPart != "" {
		if hlo, hhi, err = portRange(hostPart); err != nil {
			return bad("host port " + err.Error())
		}
	}
	n := chi - clo
	if hostPart != "" && n > 0 && hhi-hlo != n {
		return bad("the host and container port ranges differ in size")
	}
	for i := 0; i <= n; i++ {
		p, ok := network.PortFrom(uint16(clo+i), network.IPProtocol(proto))
		if !ok {
			return bad("bad port")
		}
		exposed[p] = struct{}{}
		b := network.PortBinding{HostIP: hostIP}
		switch {
		case hostPart == "":
		case n > 0:
			b.HostPort = strconv.Itoa(hlo + i)
		case hlo == hhi:
			b.HostPort = strconv.Itoa(hlo)
		default:
			b.HostPort = strconv.Itoa(hlo) + "-" + strconv.Itoa(hhi)
		}
		pm[p] = append(pm[p], b)
	}
	return nil
}

// ParseExpose parses --expose values: PORT[-END][/PROTO].
func ParseExpose(values []string) (network.PortSet, error) {
	out := network.PortSet{}
	for _, v := range values {
		rest, proto := v, "tcp"
		if i := strings.LastIndexByte(rest, '/'); i >= 0 {
			rest, proto = rest[:i], strings.ToLower(rest[i+1:])
		}
		lo, hi, err := portRange(rest)
		if err != nil || (proto != "tcp" && proto != "udp" && proto != "sctp") {
			return nil, fmt.Errorf("invalid range format for --expose: %s", v)
		}
		for p := lo; p <= hi; p++ {
			pp, _ := network.PortFrom(uint16(p), network.IPProtocol(proto))
			out[pp] = struct{}{}
		}
	}
	return out, nil
}

func portRange(s string) (int, int, error) {
	a, b, isRange := strings.Cut(s, "-")
	lo, err := strconv.Atoi(a)
	if err != nil || lo < 1 || lo > 65535 {
		return 0, 0, fmt.Errorf("%q is not a port number (1-65535)", s)
	}
	hi := lo
	if isRange {
		if hi, err = strconv.Atoi(b); err != nil || hi < lo || hi > 65535 {
			return 0, 0, fmt.Errorf("%q is not a port range", s)
		}
	}
	return lo, hi, nil
}

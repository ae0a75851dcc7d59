package container

import (
	"net/netip"
	"testing"

	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

func TestPortsText(t *testing.T) {
	rec := &Record{Config: &containertypes.Config{ExposedPorts: network.PortSet{
		network.MustParsePort("80/tcp"): {}, network.MustParsePort("443/tcp"): {}, network.MustParsePort("9000/udp"): {},
	}}}
	any4 := netip.IPv4Unspecified()
	lo := netip.MustParseAddr("127.0.0.1")
	pm := network.PortMap{
		network.MustParsePort("80/tcp"):   {{HostIP: any4, HostPort: "8080"}},
		network.MustParsePort("8000/tcp"): {{HostIP: lo, HostPort: "18000"}},
		network.MustParsePort("8001/tcp"): {{HostIP: lo, HostPort: "18001"}},
	}
	got := PortsText(rec, pm, true)
	want := "443/tcp, 9000/udp, 0.0.0.0:8080->80/tcp, 127.0.0.1:18000-18001->8000-8001/tcp"
	if got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	if got := PortsText(rec, pm, false); got != "" {
		t.Fatalf("stopped container: %q", got)
	}
}

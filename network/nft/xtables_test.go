package nft

import (
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The iptables fallback writes the same rules; read back with iptables-save.
func TestXTables(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := exec.LookPath("iptables-save"); err != nil {
		t.Skip("no iptables")
	}
	x := NewXTables(TableName("xtest"))
	x.Delete()
	t.Cleanup(func() { x.Delete() })
	save := func() string {
		var b strings.Builder
		for _, table := range []string{"nat", "filter"} {
			out, err := exec.Command("iptables-save", "-t", table).Output()
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range strings.Split(string(out), "\n") {
				if strings.Contains(l, x.Prefix) {
					b.WriteString(l + "\n")
				}
			}
		}
		return b.String()
	}
	a := Network{ID: "na", Bridge: "xbr0", Subnet: netip.MustParsePrefix("10.254.3.0/24")}
	b := Network{ID: "nb", Bridge: "xbr1", Subnet: netip.MustParsePrefix("10.254.4.0/24"), Internal: true}
	if err := x.AddNetwork(a, nil); err != nil {
		t.Fatal(err)
	}
	if err := x.AddNetwork(b, []Network{a, b}); err != nil {
		t.Fatal(err)
	}
	if err := x.AddPorts("c1", []DNAT{{Proto: "tcp", HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 18081,
		ContainerIP: netip.MustParseAddr("10.254.3.2"), ContainerPort: 80}}); err != nil {
		t.Fatal(err)
	}
	out := save()
	for _, want := range []string{
		"-A PREROUTING -m addrtype --dst-type LOCAL -j " + x.ports(),
		"-A FORWARD -j " + x.iso(),
		"-d 127.0.0.1/32 -p tcp -m tcp --dport 18081 -m comment --comment \"c:c1\" -j DNAT --to-destination 10.254.3.2:80",
		"-s 10.254.3.0/24 ! -o xbr0 -m comment --comment \"n:na\" -j MASQUERADE",
		"-i xbr1 -o xbr0 -m comment --comment \"n:nb,n:na\" -j DROP",
		"-i xbr1 ! -o xbr1 -m comment --comment \"n:nb\" -j DROP",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	tags, err := x.Tags()
	if err != nil || !tags["c:c1"] || !tags["n:na"] || !tags["n:nb"] {
		t.Fatalf("tags %v %v", tags, err)
	}
	if err := x.DelTags(ContainerTag("c1")); err != nil {
		t.Fatal(err)
	}
	if err := x.DelNetwork("na", "xbr0"); err != nil {
		t.Fatal(err)
	}
	out = save()
	if strings.Contains(out, "c:c1") || strings.Contains(out, "n:na") {
		t.Fatalf("rules left:\n%s", out)
	}
	if err := x.Delete(); err != nil {
		t.Fatal(err)
	}
	if out := save(); out != "" || x.Exists() {
		t.Fatalf("left after Delete:\n%s", out)
	}
}

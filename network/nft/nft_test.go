package nft

import (
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The table is written through netlink and read back with the nft tool (what an operator
// sees); the test's own table name keeps it away from any real one.
func TestTable(t *testing.T) {
	if os.Geteuid() != 0 || !Available() {
		t.Skip("needs root and nf_tables")
	}
	f := &Firewall{Table: TableName("test" + strings.ReplaceAll(t.Name(), "/", ""))}
	f.Delete()
	t.Cleanup(func() { f.Delete() })
	list := func() string {
		out, err := exec.Command("nft", "list", "table", "ip", f.Table).CombinedOutput()
		if err != nil {
			t.Skipf("nft: %v %s", err, out)
		}
		return string(out)
	}
	if err := f.Ensure(); err != nil {
		t.Fatal(err)
	}
	if err := f.Ensure(); err != nil { // idempotent
		t.Fatal(err)
	}
	n := Network{ID: "n1", Bridge: "tbr0", Subnet: netip.MustParsePrefix("10.254.1.0/24")}
	in := Network{ID: "n2", Bridge: "tbr1", Subnet: netip.MustParsePrefix("10.254.2.0/24"), Internal: true}
	for _, x := range []Network{n, in, n} { // n twice: replaced, not doubled
		if err := f.AddNetwork(x, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.AddPorts("c1", []DNAT{
		{Proto: "tcp", HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: 18080, ContainerIP: netip.MustParseAddr("10.254.1.2"), ContainerPort: 80},
		{Proto: "udp", HostIP: netip.IPv4Unspecified(), HostPort: 5353, ContainerIP: netip.MustParseAddr("10.254.1.2"), ContainerPort: 53},
	}); err != nil {
		t.Fatal(err)
	}
	out := list()
	for _, want := range []string{
		"fib daddr type local jump ports",
		"ip daddr 127.0.0.1 tcp dport 18080 dnat to 10.254.1.2:80",
		"udp dport 5353 dnat to 10.254.1.2:53",
		`ip saddr 10.254.1.0/24 oifname != "tbr0" masquerade`,
		`iifname "tbr0" oifname "tbr0" ct status dnat masquerade`,
		`iifname "tbr1" oifname != "tbr1" drop`,
		`"tbr0"`, `"tbr1" }`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, `ip saddr 10.254.2.0/24 oifname != "tbr1" masquerade`) {
		t.Error("an internal network got a masquerade rule")
	}
	if c := strings.Count(out, `ip saddr 10.254.1.0/24 oifname != "tbr0" masquerade`); c != 1 {
		t.Errorf("masquerade rule %d times after two adds", c)
	}
	tags, err := f.Tags()
	if err != nil || !tags["c:c1"] || !tags["n:n1"] || !tags["n:n2"] {
		t.Fatalf("tags %v %v", tags, err)
	}
	if err := f.DelTags(ContainerTag("c1")); err != nil {
		t.Fatal(err)
	}
	if err := f.DelNetwork("n2", "tbr1"); err != nil {
		t.Fatal(err)
	}
	out = list()
	if strings.Contains(out, "dnat to") || strings.Contains(out, "tbr1") {
		t.Fatalf("rules left after removal:\n%s", out)
	}
	if err := f.Delete(); err != nil || f.Exists() {
		t.Fatalf("delete: %v", err)
	}
}

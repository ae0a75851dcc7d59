package nft

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"
)

// Coexisting with an iptables FORWARD policy of DROP (dockerd sets one, and loads
// br_netfilter, so that even traffic between two containers on one bridge crosses the
// iptables FORWARD chain). An accept in our own nftables table does not override a drop in
// another table: a packet must pass every base chain of its hook. So when the host's FORWARD
// chain drops by default, berth adds a chain of accepts for its bridges in front of it, as
// podman's CNI firewall plugin and netavark do, through the iptables command (iptables-nft or
// legacy, whichever the host uses: rules written through nftables into a table iptables-nft
// owns would break that tool). This runs once per network setup, never per container.
//
//	-I FORWARD -j BERTH-FWD[-suffix]
//	-A BERTH-FWD -i BR -j ACCEPT                                          # out of, and within, BR
//	-A BERTH-FWD -o BR -m conntrack --ctstate RELATED,ESTABLISHED,DNAT -j ACCEPT   # answers, published ports

func (f *Firewall) fwdChain() string {
	return strings.ToUpper(strings.Replace(f.Table, "berth", "BERTH-FWD", 1))
}

func iptables(args ...string) (string, error) {
	var out bytes.Buffer
	cmd := exec.Command("iptables", append([]string{"-w"}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// forwardDrops tells whether the host's iptables FORWARD chain drops by default.
func forwardDrops() bool {
	if _, err := exec.LookPath("iptables"); err != nil {
		return false
	}
	out, err := iptables("-S", "FORWARD")
	return err == nil && strings.Contains(out, "-P FORWARD DROP")
}

func bridgeRules(bridge string) [][]string {
	return [][]string{
		{"-i", bridge, "-j", "ACCEPT"},
		{"-o", bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED,DNAT", "-j", "ACCEPT"},
	}
}

// AcceptForward lets a bridge's traffic through an iptables FORWARD policy of DROP (a no-op
// on hosts without one).
func (f *Firewall) AcceptForward(bridge string) error { return acceptForward(f.fwdChain(), bridge) }

// DropForward removes a bridge's accepts, and the chain with its jump once it is empty.
func (f *Firewall) DropForward(bridge string) { dropForward(f.fwdChain(), bridge) }

// AcceptForward: see Firewall.AcceptForward.
func (x *XTables) AcceptForward(bridge string) error { return acceptForward(x.Prefix+"-FWD", bridge) }

// DropForward: see Firewall.DropForward.
func (x *XTables) DropForward(bridge string) { dropForward(x.Prefix+"-FWD", bridge) }

func acceptForward(ch, bridge string) error {
	if !forwardDrops() {
		return nil
	}
	if _, err := iptables("-S", ch); err != nil {
		if out, err := iptables("-N", ch); err != nil && !strings.Contains(out, "exists") {
			return fmt.Errorf("iptables -N %s: %s", ch, strings.TrimSpace(out))
		}
	}
	if _, err := iptables("-C", "FORWARD", "-j", ch); err != nil {
		if out, err := iptables("-I", "FORWARD", "-j", ch); err != nil {
			return fmt.Errorf("iptables -I FORWARD -j %s: %s", ch, strings.TrimSpace(out))
		}
	}
	for _, r := range bridgeRules(bridge) {
		if _, err := iptables(append([]string{"-C", ch}, r...)...); err == nil {
			continue
		}
		if out, err := iptables(append([]string{"-A", ch}, r...)...); err != nil {
			return fmt.Errorf("iptables -A %s %s: %s", ch, strings.Join(r, " "), strings.TrimSpace(out))
		}
	}
	return nil
}

func dropForward(ch, bridge string) {
	if _, err := exec.LookPath("iptables"); err != nil {
		return
	}
	if _, err := iptables("-S", ch); err != nil {
		return
	}
	for _, r := range bridgeRules(bridge) {
		for {
			if _, err := iptables(append([]string{"-D", ch}, r...)...); err != nil {
				break
			}
		}
	}
	if out, err := iptables("-S", ch); err == nil && strings.Count(strings.TrimSpace(out), "\n") == 0 {
		for {
			if _, err := iptables("-D", "FORWARD", "-j", ch); err != nil {
				break
			}
		}
		iptables("-X", ch)
	}
}

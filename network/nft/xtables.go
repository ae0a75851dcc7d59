package nft

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// XTables is the fallback for hosts whose kernel has no nf_tables: the same rules as the
// nftables table, written with the iptables command into chains of berth's own (one set of
// chains per data root), each rule tagged with a comment naming its owner. It forks iptables
// per change, so it is slower than the nftables path; it is only used where that one cannot be.
//
//	nat:    PREROUTING, OUTPUT -m addrtype --dst-type LOCAL -j <P>-PORTS
//	        <P>-PORTS:  [-d HOSTIP] -p tcp --dport HP -j DNAT --to-destination CIP:CP   (c:ID)
//	        POSTROUTING -j <P>-POST
//	        <P>-POST:   -s SUBNET ! -o BR -j MASQUERADE; -s 127.0.0.0/8 -o BR -j MASQUERADE;
//	                    -i BR -o BR -m conntrack --ctstate DNAT -j MASQUERADE            (n:ID)
//	filter: FORWARD -j <P>-ISO (first)
//	        <P>-ISO:    -i BR -o OTHER -j DROP for every other berth bridge             (n:ID,n:OTHER)
//	                    -i BR ! -o BR -j DROP; -o BR ! -i BR -j DROP on --internal      (n:ID)
type XTables struct {
	Prefix string // chain prefix, e.g. "BERTH" or "BERTH-1A2B3C4D"
}

// NewXTables is the fallback firewall of the table name f would use.
func NewXTables(table string) *XTables {
	return &XTables{Prefix: strings.ToUpper(table)}
}

func (x *XTables) ports() string { return x.Prefix + "-PORTS" }
func (x *XTables) post() string  { return x.Prefix + "-POST" }
func (x *XTables) iso() string   { return x.Prefix + "-ISO" }

func ipt(table string, args ...string) error {
	out, err := exec.Command("iptables", append([]string{"-w", "-t", table}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables -t %s %s: %s", table, strings.Join(args, " "), strings.TrimSpace(string(out)))
	}
	return nil
}

// Ensure creates the chains and the jumps to them.
func (x *XTables) Ensure() error {
	if _, err := exec.LookPath("iptables"); err != nil {
		return fmt.Errorf("neither nf_tables nor the iptables command is available: berth cannot publish ports or NAT")
	}
	for _, c := range []struct{ table, chain string }{{"nat", x.ports()}, {"nat", x.post()}, {"filter", x.iso()}} {
		if ipt(c.table, "-S", c.chain) != nil {
			if err := ipt(c.table, "-N", c.chain); err != nil {
				return err
			}
		}
	}
	jumps := []struct {
		table, chain string
		rule         []string
		insert       bool
	}{
		{"nat", "PREROUTING", []string{"-m", "addrtype", "--dst-type", "LOCAL", "-j", x.ports()}, false},
		{"nat", "OUTPUT", []string{"-m", "addrtype", "--dst-type", "LOCAL", "-j", x.ports()}, false},
		{"nat", "POSTROUTING", []string{"-j", x.post()}, false},
		{"filter", "FORWARD", []string{"-j", x.iso()}, true},
	}
	for _, j := range jumps {
		if ipt(j.table, append([]string{"-C", j.chain}, j.rule...)...) == nil {
			continue
		}
		op := "-A"
		if j.insert {
			op = "-I"
		}
		if err := ipt(j.table, append([]string{op, j.chain}, j.rule...)...); err != nil {
			return err
		}
	}
	return nil
}

func tagged(rule []string, tag string) []string {
	return append(rule, "-m", "comment", "--comment", tag)
}

// AddNetwork adds a network's rules (replacing any it had).
func (x *XTables) AddNetwork(n Network, others []Network) error {
	if err := x.Ensure(); err != nil {
		return err
	}
	if err := x.DelTags(NetworkTag(n.ID)); err != nil {
		return err
	}
	tag := NetworkTag(n.ID)
	var rules [][]string
	if !n.Internal {
		rules = append(rules, []string{"nat", "-A", x.post(), "-s", n.Subnet.String(), "!", "-o", n.Bridge, "-j", "MASQUERADE"})
	}
	rules = append(rules,
		[]string{"nat", "-A", x.post(), "-s", "127.0.0.0/8", "-o", n.Bridge, "-j", "MASQUERADE"},
		[]string{"nat", "-A", x.post(), "-i", n.Bridge, "-o", n.Bridge, "-m", "conntrack", "--ctstate", "DNAT", "-j", "MASQUERADE"})
	for _, o := range others {
		if o.ID == n.ID {
			continue
		}
		pair := tag + "," + NetworkTag(o.ID)
		rules = append(rules,
			tagged([]string{"filter", "-A", x.iso(), "-i", n.Bridge, "-o", o.Bridge, "-j", "DROP"}, pair),
			tagged([]string{"filter", "-A", x.iso(), "-i", o.Bridge, "-o", n.Bridge, "-j", "DROP"}, pair))
	}
	if n.Internal {
		rules = append(rules,
			[]string{"filter", "-A", x.iso(), "-i", n.Bridge, "!", "-o", n.Bridge, "-j", "DROP"},
			[]string{"filter", "-A", x.iso(), "-o", n.Bridge, "!", "-i", n.Bridge, "-j", "DROP"})
	}
	for _, r := range rules {
		if !strings.Contains(strings.Join(r, " "), "--comment") {
			r = tagged(r, tag)
		}
		if err := ipt(r[0], r[1:]...); err != nil {
			return err
		}
	}
	return nil
}

// DelNetwork removes a network's rules.
func (x *XTables) DelNetwork(id, bridge string) error { return x.DelTags(NetworkTag(id)) }

// AddPorts adds a container's DNAT rules.
func (x *XTables) AddPorts(containerID string, ports []DNAT) error {
	if len(ports) == 0 {
		return nil
	}
	if err := x.Ensure(); err != nil {
		return err
	}
	for _, p := range ports {
		r := []string{"-A", x.ports()}
		if p.HostIP.IsValid() && !p.HostIP.IsUnspecified() {
			r = append(r, "-d", p.HostIP.String()+"/32")
		}
		r = append(r, "-p", p.Proto, "-m", p.Proto, "--dport", strconv.Itoa(int(p.HostPort)), "-j", "DNAT",
			"--to-destination", p.ContainerIP.String()+":"+strconv.Itoa(int(p.ContainerPort)))
		if err := ipt("nat", tagged(r, ContainerTag(containerID))...); err != nil {
			x.DelTags(ContainerTag(containerID))
			return err
		}
	}
	return nil
}

// rules lists the tagged rules of berth's chains as iptables-save prints them.
func (x *XTables) rules() (map[string][][]string, error) {
	out := map[string][][]string{}
	for _, table := range []string{"nat", "filter"} {
		b, err := exec.Command("iptables-save", "-t", table).Output()
		if err != nil {
			return nil, fmt.Errorf("iptables-save -t %s: %w", table, err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) < 2 || f[0] != "-A" || !strings.HasPrefix(f[1], x.Prefix+"-") {
				continue
			}
			out[table] = append(out[table], f)
		}
	}
	return out, nil
}

func commentOf(rule []string) string {
	for i := 0; i+1 < len(rule); i++ {
		if rule[i] == "--comment" {
			return strings.Trim(rule[i+1], `"`)
		}
	}
	return ""
}

// DelTags removes the rules owned by any of tags.
func (x *XTables) DelTags(tags ...string) error {
	all, err := x.rules()
	if err != nil {
		return err
	}
	for table, rules := range all {
		for _, r := range rules {
			owners := strings.Split(commentOf(r), ",")
			match := false
			for _, o := range owners {
				for _, t := range tags {
					match = match || o == t
				}
			}
			if !match {
				continue
			}
			args := append([]string{"-D"}, r[1:]...)
			for i := range args {
				args[i] = strings.Trim(args[i], `"`)
			}
			if err := ipt(table, args...); err != nil {
				return err
			}
		}
	}
	return nil
}

// Tags lists the owners that have rules.
func (x *XTables) Tags() (map[string]bool, error) {
	all, err := x.rules()
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, rules := range all {
		for _, r := range rules {
			for _, o := range strings.Split(commentOf(r), ",") {
				if o != "" {
					out[o] = true
				}
			}
		}
	}
	return out, nil
}

// Name is the chain prefix.
func (x *XTables) Name() string { return x.Prefix }

// Exists tells whether berth's chains are there.
func (x *XTables) Exists() bool { return ipt("nat", "-S", x.ports()) == nil }

// Delete removes the chains and the jumps to them.
func (x *XTables) Delete() error {
	for _, j := range []struct{ table, chain string }{{"nat", "PREROUTING"}, {"nat", "OUTPUT"}, {"nat", "POSTROUTING"}, {"filter", "FORWARD"}} {
		b, err := exec.Command("iptables", "-w", "-t", j.table, "-S", j.chain).Output()
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) > 2 && f[0] == "-A" && strings.HasPrefix(f[len(f)-1], x.Prefix+"-") && f[len(f)-2] == "-j" {
				ipt(j.table, append([]string{"-D"}, f[1:]...)...)
			}
		}
	}
	for _, c := range []struct{ table, chain string }{{"nat", x.ports()}, {"nat", x.post()}, {"filter", x.iso()}} {
		if ipt(c.table, "-S", c.chain) == nil {
			ipt(c.table, "-F", c.chain)
			if err := ipt(c.table, "-X", c.chain); err != nil {
				return err
			}
		}
	}
	return nil
}

// Package nft keeps berth's firewall rules in one nftables table of its own, through
// netlink (github.com/google/nftables): no `nft` or `iptables` process per `run -p`.
//
// The table (family ip, one per data root: "berth" for the default root) looks like this
// in `nft list table ip berth`:
//
//	table ip berth {
//		set bridges { type ifname }                       # every berth bridge
//		chain prerouting  { type nat hook prerouting priority dstnat; fib daddr type local jump ports }
//		chain output      { type nat hook output priority dstnat;     fib daddr type local jump ports }
//		chain ports       { [ip daddr HOSTIP] tcp dport HP dnat to CIP:CP          # per published port
//		                    ... }
//		chain postrouting { type nat hook postrouting priority srcnat;
//		                    ip saddr SUBNET oifname != BR masquerade              # per network, not --internal
//		                    ip saddr 127.0.0.0/8 oifname BR masquerade            # per network: 127.0.0.1 -> published port
//		                    iifname BR oifname BR ct status dnat masquerade       # per network: via a published port
//		                  }
//		chain forward     { type filter hook forward priority filter;
//		                    iifname BR oifname != BR oifname @bridges drop        # per network: no way into another network
//		                    iifname BR oifname != BR drop; oifname BR iifname != BR drop   # --internal: no way out or in
//		                  }
//	}
//
// Published ports are DNAT rules, not a proxy process: the kernel forwards at full speed and
// a container costs no extra process per port. Traffic from the host to 127.0.0.1:HP is
// DNATed in the output hook; it needs route_localnet on the bridge (set by the network
// package) and the loopback masquerade above, because a reply to 127.0.0.1 cannot come from
// the container.
//
// Every rule carries user data naming its owner ("n:" + network id, "c:" + container id), so
// removal finds exactly the rules of a network or a container, and a reconcile can remove
// the rules of owners that no longer exist.
package nft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Backend is what the network package asks of the host's firewall: the nftables table
// (Firewall) or, where the kernel has no nf_tables, the iptables fallback (XTables).
type Backend interface {
	AddNetwork(n Network, all []Network) error // all: every network of the data root (isolation)
	DelNetwork(id, bridge string) error
	AddPorts(containerID string, ports []DNAT) error
	DelTags(tags ...string) error
	Tags() (map[string]bool, error)
	Exists() bool
	Delete() error
	AcceptForward(bridge string) error
	DropForward(bridge string)
	Name() string // the table (nftables) or chain prefix (iptables)
}

// New picks the backend for a table name: nftables when the kernel speaks it, iptables
// otherwise (or when BERTH_FIREWALL=iptables asks for it, which the tests use to cover the
// fallback on an nf_tables host).
func New(table string) Backend {
	if os.Getenv("BERTH_FIREWALL") == "iptables" || !Available() {
		return NewXTables(table)
	}
	return &Firewall{Table: table}
}

// Firewall is the nftables table of one data root.
type Firewall struct {
	Table string
}

// Network is what the firewall needs to know of a bridge network.
type Network struct {
	ID       string
	Bridge   string
	Subnet   netip.Prefix
	Internal bool
}

// DNAT is one published port: HostIP (unspecified = any local address):HostPort ->
// ContainerIP:ContainerPort.
type DNAT struct {
	Proto         string // "tcp" or "udp"
	HostIP        netip.Addr
	HostPort      uint16
	ContainerIP   netip.Addr
	ContainerPort uint16
}

// NetworkTag and ContainerTag are the user data of the rules a network or a container owns.
func NetworkTag(id string) string   { return "n:" + id }
func ContainerTag(id string) string { return "c:" + id }

// ipsDstNAT is the conntrack status bit of a DNATed connection (IPS_DST_NAT).
const ipsDstNAT = 1 << 5

const (
	chainPrerouting  = "prerouting"
	chainOutput      = "output"
	chainPorts       = "ports"
	chainPostrouting = "postrouting"
	chainForward     = "forward"
	setBridges       = "bridges"
)

func (f *Firewall) table() *nftables.Table {
	return &nftables.Table{Name: f.Table, Family: nftables.TableFamilyIPv4}
}

func chain(t *nftables.Table, name string) *nftables.Chain {
	return &nftables.Chain{Name: name, Table: t}
}

// Ensure creates the table, its chains and the jumps to the ports chain when the table is
// missing, in one transaction: a table that exists is complete. Two berth commands racing
// here both succeed (the loser's transaction fails with EEXIST as a whole).
func (f *Firewall) Ensure() error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	if _, err := c.ListTableOfFamily(f.Table, nftables.TableFamilyIPv4); err == nil {
		return nil
	}
	t := c.CreateTable(f.table())
	accept := nftables.ChainPolicyAccept
	nat := func(name string, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
		return c.AddChain(&nftables.Chain{Name: name, Table: t, Type: nftables.ChainTypeNAT,
			Hooknum: hook, Priority: prio, Policy: &accept})
	}
	pre := nat(chainPrerouting, nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest)
	out := nat(chainOutput, nftables.ChainHookOutput, nftables.ChainPriorityNATDest)
	nat(chainPostrouting, nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource)
	c.AddChain(&nftables.Chain{Name: chainForward, Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	c.AddChain(&nftables.Chain{Name: chainPorts, Table: t})
	if err := c.AddSet(bridgeSet(t), nil); err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	for _, ch := range []*nftables.Chain{pre, out} {
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: []expr.Any{
			&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
			&expr.Verdict{Kind: expr.VerdictJump, Chain: chainPorts},
		}})
	}
	if err := c.Flush(); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return nil
		}
		return fmt.Errorf("nftables: create table %s: %w", f.Table, err)
	}
	return nil
}

// AddNetwork adds a network's rules (replacing any it had) and its bridge to the set (which
// isolates it from the others: all is not needed).
func (f *Firewall) AddNetwork(n Network, _ []Network) error {
	if err := f.Ensure(); err != nil {
		return err
	}
	if err := f.DelTags(NetworkTag(n.ID)); err != nil {
		return err
	}
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	t := f.table()
	tag := []byte(NetworkTag(n.ID))
	if err := c.SetAddElements(bridgeSet(t), []nftables.SetElement{{Key: ifname(n.Bridge)}}); err != nil {
		return err
	}
	post, fwd := chain(t, chainPostrouting), chain(t, chainForward)
	add := func(ch *nftables.Chain, e ...expr.Any) {
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: e, UserData: tag})
	}
	if !n.Internal {
		add(post, append(append(srcPrefix(n.Subnet), oif(expr.CmpOpNeq, n.Bridge)...), &expr.Masq{})...)
	}
	add(post, append(append(srcPrefix(netip.MustParsePrefix("127.0.0.0/8")), oif(expr.CmpOpEq, n.Bridge)...), &expr.Masq{})...)
	// A container reaching a published port (its own or a neighbour's) through a host address
	// is DNATed back onto its own bridge; the answer would go straight back over the bridge,
	// around the NAT, unless the source is the gateway.
	add(post, append(append(append(iif(expr.CmpOpEq, n.Bridge), oif(expr.CmpOpEq, n.Bridge)...),
		&expr.Ct{Key: expr.CtKeySTATUS, Register: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(ipsDstNAT), Xor: binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(0)}), &expr.Masq{})...)
	drop := &expr.Verdict{Kind: expr.VerdictDrop}
	add(fwd, append(append(append(iif(expr.CmpOpEq, n.Bridge), oif(expr.CmpOpNeq, n.Bridge)...),
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Lookup{SourceRegister: 1, SetName: setBridges}), drop)...)
	if n.Internal {
		add(fwd, append(append(iif(expr.CmpOpEq, n.Bridge), oif(expr.CmpOpNeq, n.Bridge)...), drop)...)
		add(fwd, append(append(oif(expr.CmpOpEq, n.Bridge), iif(expr.CmpOpNeq, n.Bridge)...), drop)...)
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: rules of network %s: %w", n.Bridge, err)
	}
	return nil
}

// DelNetwork removes a network's rules and its bridge from the set.
func (f *Firewall) DelNetwork(id, bridge string) error {
	if err := f.DelTags(NetworkTag(id)); err != nil {
		return err
	}
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	if err := c.SetDeleteElements(bridgeSet(f.table()), []nftables.SetElement{{Key: ifname(bridge)}}); err != nil {
		return err
	}
	if err := c.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("nftables: %w", err)
	}
	return nil
}

// AddPorts adds the DNAT and hairpin rules of a container's published ports, in one
// transaction.
func (f *Firewall) AddPorts(containerID string, ports []DNAT) error {
	if len(ports) == 0 {
		return nil
	}
	if err := f.Ensure(); err != nil {
		return err
	}
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	t := f.table()
	tag := []byte(ContainerTag(containerID))
	for _, p := range ports {
		proto := byte(unix.IPPROTO_TCP)
		if p.Proto == "udp" {
			proto = unix.IPPROTO_UDP
		}
		var e []expr.Any
		if p.HostIP.IsValid() && !p.HostIP.IsUnspecified() {
			e = append(e, dstAddr(p.HostIP)...)
		}
		e = append(e, l4(proto, p.HostPort)...)
		e = append(e,
			&expr.Immediate{Register: 1, Data: p.ContainerIP.AsSlice()},
			&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(p.ContainerPort)},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true})
		c.AddRule(&nftables.Rule{Table: t, Chain: chain(t, chainPorts), Exprs: e, UserData: tag})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: publish ports: %w", err)
	}
	return nil
}

// DelTags removes every rule whose user data is one of tags, in one transaction.
func (f *Firewall) DelTags(tags ...string) error {
	return f.delRules(func(tag string) bool {
		for _, t := range tags {
			if t == tag {
				return true
			}
		}
		return false
	})
}

// Tags lists the owners that have rules in the table.
func (f *Firewall) Tags() (map[string]bool, error) {
	out := map[string]bool{}
	err := f.eachRule(func(c *nftables.Conn, r *nftables.Rule) {
		if len(r.UserData) > 0 {
			out[string(r.UserData)] = true
		}
	})
	return out, err
}

func (f *Firewall) delRules(match func(tag string) bool) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	n := 0
	err = f.eachRule(func(_ *nftables.Conn, r *nftables.Rule) {
		if len(r.UserData) > 0 && match(string(r.UserData)) {
			c.DelRule(r)
			n++
		}
	})
	if err != nil || n == 0 {
		return err
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nftables: delete rules: %w", err)
	}
	return nil
}

func (f *Firewall) eachRule(fn func(*nftables.Conn, *nftables.Rule)) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	t, err := c.ListTableOfFamily(f.Table, nftables.TableFamilyIPv4)
	if err != nil {
		return nil // no table, no rules
	}
	for _, name := range []string{chainPorts, chainPostrouting, chainForward} {
		rules, err := c.GetRules(t, chain(t, name))
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return fmt.Errorf("nftables: list %s: %w", name, err)
		}
		for _, r := range rules {
			fn(c, r)
		}
	}
	return nil
}

// Delete drops the whole table (when the data root's last network is gone, and in tests).
func (f *Firewall) Delete() error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	if _, err := c.ListTableOfFamily(f.Table, nftables.TableFamilyIPv4); err != nil {
		return nil
	}
	c.DelTable(f.table())
	if err := c.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("nftables: delete table %s: %w", f.Table, err)
	}
	return nil
}

// Name is the table's name.
func (f *Firewall) Name() string { return f.Table }

// Exists tells whether the table is there.
func (f *Firewall) Exists() bool {
	c, err := nftables.New()
	if err != nil {
		return false
	}
	_, err = c.ListTableOfFamily(f.Table, nftables.TableFamilyIPv4)
	return err == nil
}

// Available tells whether the kernel speaks nf_tables.
func Available() bool {
	c, err := nftables.New()
	if err != nil {
		return false
	}
	_, err = c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	return err == nil
}

// bridgeSet is the set of the data root's bridges. Strings are host-endian to nft: with that
// in the set's user data, `nft list` prints the names.
func bridgeSet(t *nftables.Table) *nftables.Set {
	return &nftables.Set{Table: t, Name: setBridges, KeyType: nftables.TypeIFName, KeyByteOrder: binaryutil.NativeEndian}
}

func ifname(n string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, n)
	return b
}

func iif(op expr.CmpOp, n string) []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: ifname(n)}}
}

func oif(op expr.CmpOp, n string) []expr.Any {
	return []expr.Any{&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: ifname(n)}}
}

// IPv4 header offsets: destination address at 16 (the source at 12: srcPrefix).
func dstAddr(a netip.Addr) []expr.Any { return addrMatch(16, a) }

func addrMatch(off uint32, a netip.Addr) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a.AsSlice()},
	}
}

func srcPrefix(p netip.Prefix) []expr.Any {
	mask := make([]byte, 4)
	binary.BigEndian.PutUint32(mask, ^uint32(0)<<(32-p.Bits()))
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p.Masked().Addr().AsSlice()},
	}
}

// l4 matches the transport protocol and destination port.
func l4(proto byte, port uint16) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
	}
}

// TableName is the table of a data root: "berth" for the default root, "berth-" + a short
// hash otherwise, so that test roots never touch each other's rules.
func TableName(suffix string) string {
	if suffix == "" {
		return "berth"
	}
	return "berth-" + strings.ToLower(suffix)
}

package network

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func openTemp(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCreateValidates(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	n, err := s.Create(ctx, CreateOptions{Name: "a", Subnet: "10.253.1.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	if n.Gateway != netip.MustParseAddr("10.253.1.1") || n.Bridge != "br-"+n.ID[:12] || n.MTU != 1500 {
		t.Fatalf("network %+v", n)
	}
	for _, c := range []struct {
		o    CreateOptions
		want error
	}{
		{CreateOptions{Name: "a", Subnet: "10.253.2.0/24"}, ErrExists},
		{CreateOptions{Name: "bridge"}, ErrExists},
		{CreateOptions{Name: "b", Subnet: "10.253.1.128/25"}, ErrOverlap},
		{CreateOptions{Name: "b", Subnet: "10.253.3.0/24", Gateway: "10.253.4.1"}, ErrInvalid},
		{CreateOptions{Name: "b", Subnet: "10.253.3.0/24", IPRange: "10.253.5.0/28"}, ErrInvalid},
		{CreateOptions{Name: "b", Subnet: "nonsense"}, ErrInvalid},
		{CreateOptions{Name: "b", Subnet: "10.253.3.0/31"}, ErrInvalid},
		{CreateOptions{Name: "b", Gateway: "10.253.3.1"}, ErrInvalid},
		{CreateOptions{Name: "b c"}, ErrInvalid},
		{CreateOptions{Name: "b", Driver: "overlay"}, ErrInvalid},
		{CreateOptions{Name: "b", Options: map[string]string{OptMTU: "9"}}, ErrInvalid},
		{CreateOptions{Name: "b", Options: map[string]string{OptBridgeName: "a/b"}}, ErrInvalid},
	} {
		if _, err := s.Create(ctx, c.o); !errors.Is(err, c.want) {
			t.Errorf("create %+v: %v, want %v", c.o, err, c.want)
		}
	}
	// Auto subnets never overlap each other.
	x, err := s.Create(ctx, CreateOptions{Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	y, err := s.Create(ctx, CreateOptions{Name: "y"})
	if err != nil {
		t.Fatal(err)
	}
	if x.Subnet.Overlaps(y.Subnet) || x.Subnet.Overlaps(n.Subnet) {
		t.Fatalf("auto subnets overlap: %s %s", x.Subnet, y.Subnet)
	}
	if got, err := s.Lookup(x.ID[:6]); err != nil || got.Name != "x" {
		t.Fatalf("lookup by id prefix: %v %v", got, err)
	}
	if _, err := s.Lookup("nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("lookup nope: %v", err)
	}
	d, err := s.DefaultNetwork()
	if err != nil || !d.Default() || d.Bridge != s.bridge {
		t.Fatalf("default network: %+v %v", d, err)
	}
	if err := s.Remove(ctx, d); !errors.Is(err, ErrPredefined) {
		t.Fatalf("remove default: %v", err)
	}
}

func TestLeases(t *testing.T) {
	s := openTemp(t)
	n, err := s.Create(context.Background(), CreateOptions{Name: "n", Subnet: "10.253.9.0/29"})
	if err != nil {
		t.Fatal(err)
	}
	ip := func(cid string, want string) netip.Addr {
		t.Helper()
		var w netip.Addr
		if want != "" {
			w = netip.MustParseAddr(want)
		}
		a, err := s.lease(n, cid, w)
		if err != nil {
			t.Fatalf("lease for %s: %v", cid, err)
		}
		return a
	}
	// .0 network, .1 gateway, .7 broadcast: .2 to .6 are the pool.
	got := []netip.Addr{ip("c1", ""), ip("c2", ""), ip("c3", "10.253.9.6")}
	if got[0].String() != "10.253.9.2" || got[1].String() != "10.253.9.3" {
		t.Fatalf("leases %v", got)
	}
	if _, err := s.lease(n, "c4", netip.MustParseAddr("10.253.9.6")); !errors.Is(err, ErrAddrInUse) {
		t.Fatalf("static address twice: %v", err)
	}
	for _, bad := range []string{"10.253.9.1", "10.253.9.7", "10.253.9.0", "10.253.10.2"} {
		if _, err := s.lease(n, "c4", netip.MustParseAddr(bad)); !errors.Is(err, ErrInvalid) {
			t.Errorf("static %s: %v", bad, err)
		}
	}
	s.releaseLease(n.ID, got[0], "someone-else")
	if _, err := os.Lstat(s.leasePath(n.ID, got[0])); err != nil {
		t.Fatal("a lease was released by a container that does not hold it")
	}
	s.releaseLease(n.ID, got[0], "c1")
	if a := ip("c5", ""); a != got[0] {
		t.Fatalf("released address not reused: got %s", a)
	}
	ip("c6", "")
	ip("c7", "")
	if _, err := s.lease(n, "c8", netip.Addr{}); !errors.Is(err, ErrNoAddress) {
		t.Fatalf("full network: %v", err)
	}
}

// Leases taken at once by many goroutines (as by many berth processes: the O_EXCL create is
// the only arbiter) are all different.
func TestLeasesConcurrent(t *testing.T) {
	s := openTemp(t)
	n, err := s.Create(context.Background(), CreateOptions{Name: "n", Subnet: "10.253.10.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[netip.Addr]bool{}
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			a, err := s.lease(n, "c"+string(rune('A'+i)), netip.Addr{})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if seen[a] {
				t.Errorf("address %s leased twice", a)
			}
			seen[a] = true
		}(i)
	}
	wg.Wait()
	ents, _ := os.ReadDir(filepath.Join(s.netDir(n.ID), "leases"))
	if len(ents) != 50 {
		t.Fatalf("%d lease files, want 50", len(ents))
	}
}

func TestIPRange(t *testing.T) {
	s := openTemp(t)
	n, err := s.Create(context.Background(), CreateOptions{Name: "n", Subnet: "10.253.11.0/24", IPRange: "10.253.11.128/25"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.lease(n, "c1", netip.Addr{})
	if err != nil || a.String() != "10.253.11.129" {
		t.Fatalf("lease in range: %s %v", a, err)
	}
}

func TestBroadcastAndMAC(t *testing.T) {
	if b := broadcast(netip.MustParsePrefix("172.30.0.0/16")); b.String() != "172.30.255.255" {
		t.Fatal(b)
	}
	if m := macFor(netip.MustParseAddr("172.30.0.2")); m != "02:42:ac:1e:00:02" {
		t.Fatal(m)
	}
	if v := vethName("0123456789abcdef", "fedcba9876543210"); v != "vb01234567fedcb" || len(v) > 15 {
		t.Fatal(v)
	}
}

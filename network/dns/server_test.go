package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	miekg "github.com/miekg/dns"
)

// TestMain fails the run if any test leaves a goroutine behind: the server is meant to
// live for days, so a leak per Serve or per relay would add up.
func TestMain(m *testing.M) {
	before := runtime.NumGoroutine()
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(3 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<20)
			fmt.Fprintf(os.Stderr, "leaked goroutines: %d before, %d after\n%s\n", before, n, buf[:runtime.Stack(buf, true)])
			code = 1
		}
	}
	os.Exit(code)
}

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

var testRecords = []Record{
	{Names: []string{"web", "Web-Host", "0123456789ab"}, IPv4: ip("10.0.0.2")},
	{Names: []string{"db1", "db"}, IPv4: ip("10.0.0.3")},
	{Names: []string{"db2", "DB."}, IPv4: ip("10.0.0.4")},
	{Names: []string{"api."}, IPv4: ip("10.0.0.5")},
}

func static(recs []Record) func() ([]Record, error) {
	return func() ([]Record, error) { return recs, nil }
}

// startServer serves cfg on 127.0.0.1:<ephemeral> until the test ends.
func startServer(t *testing.T, cfg Config) string {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Logf == nil {
		cfg.Logf = t.Logf
	}
	s, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s.Addr()
}

// upstream is a fake resolver: example.test. has one A record, big.test. has 60 and is
// truncated over UDP, everything else is NXDOMAIN; with servfail it fails everything.
type upstream struct {
	addr     string
	servfail bool
	udp, tcp atomic.Int32
}

func startUpstream(t *testing.T, servfail bool) *upstream {
	t.Helper()
	u := &upstream{servfail: servfail}
	l, p, err := bind("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.addr = l.Addr().String()
	h := miekg.HandlerFunc(func(w miekg.ResponseWriter, r *miekg.Msg) {
		tcp := isTCP(w)
		if tcp {
			u.tcp.Add(1)
		} else {
			u.udp.Add(1)
		}
		m := new(miekg.Msg)
		m.SetReply(r)
		m.RecursionAvailable = true
		q := r.Question[0]
		switch {
		case u.servfail:
			m.Rcode = miekg.RcodeServerFailure
		case q.Name == "example.test.":
			if q.Qtype == miekg.TypeA {
				m.Answer = append(m.Answer, &miekg.A{
					Hdr: miekg.RR_Header{Name: q.Name, Rrtype: miekg.TypeA, Class: miekg.ClassINET, Ttl: 30},
					A:   net.IPv4(192, 0, 2, 1),
				})
			}
		case q.Name == "big.test.":
			if !tcp {
				m.Truncated = true
				break
			}
			for i := range 60 {
				m.Answer = append(m.Answer, &miekg.A{
					Hdr: miekg.RR_Header{Name: q.Name, Rrtype: miekg.TypeA, Class: miekg.ClassINET, Ttl: 30},
					A:   net.IPv4(198, 51, 100, byte(i+1)),
				})
			}
		default:
			m.Rcode = miekg.RcodeNameError
		}
		if opt := r.IsEdns0(); opt != nil {
			m.SetEdns0(opt.UDPSize(), false)
		}
		_ = w.WriteMsg(m)
	})
	ru := start(&miekg.Server{PacketConn: p, Handler: h})
	rt := start(&miekg.Server{Listener: l, Handler: h})
	t.Cleanup(func() {
		ru.stop()
		rt.stop()
	})
	return u
}

// closedPort returns a 127.0.0.1 address nobody listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, p, err := bind("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	p.Close()
	return addr
}

type q struct {
	name  string
	qtype uint16
	net   string // "udp" (default) or "tcp"
	edns  uint16 // advertised size; 0 = no OPT
	do    bool
}

func ask(t *testing.T, addr string, qq q) *miekg.Msg {
	t.Helper()
	m := new(miekg.Msg)
	m.SetQuestion(qq.name, qq.qtype)
	if qq.edns != 0 {
		m.SetEdns0(qq.edns, qq.do)
	}
	c := &miekg.Client{Net: qq.net, Timeout: 5 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s: %v", qq.name, miekg.TypeToString[qq.qtype], err)
	}
	if r.Id != m.Id {
		t.Fatalf("%s: answer id %d, query id %d", qq.name, r.Id, m.Id)
	}
	return r
}

func addrs(t *testing.T, r *miekg.Msg) []string {
	t.Helper()
	var out []string
	for _, rr := range r.Answer {
		a, ok := rr.(*miekg.A)
		if !ok {
			t.Fatalf("answer %v is not an A record", rr)
		}
		if a.Hdr.Ttl != recordTTL && a.Hdr.Ttl != 30 {
			t.Errorf("ttl %d", a.Hdr.Ttl)
		}
		out = append(out, a.A.String())
	}
	slices.Sort(out)
	return out
}

// wireLen is the size the answer had on the wire (a parsed message packs uncompressed).
func wireLen(r *miekg.Msg) int {
	r.Compress = true
	return r.Len()
}

func wantRcode(t *testing.T, r *miekg.Msg, rcode int) {
	t.Helper()
	if r.Rcode != rcode {
		t.Fatalf("rcode %s, want %s\n%v", miekg.RcodeToString[r.Rcode], miekg.RcodeToString[rcode], r)
	}
}

func TestLocalNames(t *testing.T) {
	up := startUpstream(t, false)
	addr := startServer(t, Config{Load: static(testRecords), Upstreams: []string{up.addr}, Forward: true})

	for _, tc := range []struct {
		name string
		want []string
	}{
		{"web.", []string{"10.0.0.2"}},
		{"WEB.", []string{"10.0.0.2"}},
		{"web-host.", []string{"10.0.0.2"}},
		{"0123456789ab.", []string{"10.0.0.2"}},
		{"api.", []string{"10.0.0.5"}},
		{"Db.", []string{"10.0.0.3", "10.0.0.4"}},
	} {
		for _, netw := range []string{"udp", "tcp"} {
			r := ask(t, addr, q{name: tc.name, qtype: miekg.TypeA, net: netw})
			wantRcode(t, r, miekg.RcodeSuccess)
			if got := addrs(t, r); !slices.Equal(got, tc.want) {
				t.Errorf("%s over %s: %v, want %v", tc.name, netw, got, tc.want)
			}
			if !r.RecursionAvailable || !r.Authoritative {
				t.Errorf("%s: RA %v AA %v", tc.name, r.RecursionAvailable, r.Authoritative)
			}
			if r.Answer[0].Header().Name != tc.name {
				t.Errorf("answer owner %q, want the query's %q", r.Answer[0].Header().Name, tc.name)
			}
		}
	}

	// Other types of a known name: NODATA, never the upstream.
	for _, qt := range []uint16{miekg.TypeAAAA, miekg.TypeMX, miekg.TypeTXT, miekg.TypeANY} {
		r := ask(t, addr, q{name: "web.", qtype: qt})
		wantRcode(t, r, miekg.RcodeSuccess)
		if len(r.Answer) != 0 {
			t.Errorf("%s web.: %v", miekg.TypeToString[qt], r.Answer)
		}
	}

	// PTR: the container name first, as an FQDN, then its other names.
	r := ask(t, addr, q{name: "2.0.0.10.in-addr.arpa.", qtype: miekg.TypePTR})
	wantRcode(t, r, miekg.RcodeSuccess)
	var ptrs []string
	for _, rr := range r.Answer {
		ptrs = append(ptrs, rr.(*miekg.PTR).Ptr)
	}
	if want := []string{"web.", "Web-Host.", "0123456789ab."}; !slices.Equal(ptrs, want) {
		t.Errorf("PTR 10.0.0.2: %v, want %v", ptrs, want)
	}
	r = ask(t, addr, q{name: "4.0.0.10.IN-ADDR.ARPA.", qtype: miekg.TypePTR})
	if len(r.Answer) == 0 || r.Answer[0].(*miekg.PTR).Ptr != "db2." {
		t.Errorf("PTR 10.0.0.4: %v", r.Answer)
	}

	// Only exact names: a known name under a domain is someone else's.
	r = ask(t, addr, q{name: "web.example.com.", qtype: miekg.TypeA})
	wantRcode(t, r, miekg.RcodeNameError)
	if n := up.udp.Load() + up.tcp.Load(); n != 1 {
		t.Errorf("upstream asked %d times, want once (web.example.com only)", n)
	}
}

func TestEDNS(t *testing.T) {
	addr := startServer(t, Config{Load: static(testRecords)})

	r := ask(t, addr, q{name: "web.", qtype: miekg.TypeA})
	if r.IsEdns0() != nil {
		t.Error("OPT in the answer to a query without one")
	}
	r = ask(t, addr, q{name: "web.", qtype: miekg.TypeA, edns: 4096, do: true})
	opt := r.IsEdns0()
	if opt == nil || opt.UDPSize() != ednsSize || !opt.Do() {
		t.Errorf("OPT %v, want size %d with DO", opt, ednsSize)
	}
	if len(r.Answer) != 1 {
		t.Errorf("answer %v", r.Answer)
	}

	m := new(miekg.Msg)
	m.SetQuestion("web.", miekg.TypeA)
	m.SetEdns0(1232, false)
	m.IsEdns0().SetVersion(1)
	r, _, err := new(miekg.Client).Exchange(m, addr)
	if err != nil {
		t.Fatal(err)
	}
	wantRcode(t, r, miekg.RcodeBadVers)
}

func TestLocalTruncation(t *testing.T) {
	var recs []Record
	for i := range 100 {
		recs = append(recs, Record{Names: []string{fmt.Sprintf("c%d", i), "many"}, IPv4: netip.AddrFrom4([4]byte{10, 1, 0, byte(i + 1)})})
	}
	addr := startServer(t, Config{Load: static(recs)})

	r := ask(t, addr, q{name: "many.", qtype: miekg.TypeA})
	if !r.Truncated || len(r.Answer) >= 100 {
		t.Errorf("UDP without EDNS: TC %v, %d answers", r.Truncated, len(r.Answer))
	}
	if n := wireLen(r); n > miekg.MinMsgSize {
		t.Errorf("UDP answer is %d bytes", n)
	}
	r = ask(t, addr, q{name: "many.", qtype: miekg.TypeA, net: "tcp"})
	if r.Truncated || len(r.Answer) != 100 {
		t.Errorf("TCP: TC %v, %d answers", r.Truncated, len(r.Answer))
	}
}

func TestForward(t *testing.T) {
	up := startUpstream(t, false)
	addr := startServer(t, Config{Load: static(testRecords), Upstreams: []string{up.addr}, Forward: true})

	r := ask(t, addr, q{name: "example.test.", qtype: miekg.TypeA})
	wantRcode(t, r, miekg.RcodeSuccess)
	if got := addrs(t, r); !slices.Equal(got, []string{"192.0.2.1"}) {
		t.Errorf("example.test.: %v", got)
	}
	if up.udp.Load() != 1 || up.tcp.Load() != 0 {
		t.Errorf("UDP query went upstream as udp %d tcp %d", up.udp.Load(), up.tcp.Load())
	}

	r = ask(t, addr, q{name: "example.test.", qtype: miekg.TypeA, net: "tcp"})
	if got := addrs(t, r); !slices.Equal(got, []string{"192.0.2.1"}) {
		t.Errorf("example.test. over TCP: %v", got)
	}
	if up.udp.Load() != 1 || up.tcp.Load() != 1 {
		t.Errorf("TCP query went upstream as udp %d tcp %d", up.udp.Load()-1, up.tcp.Load())
	}

	// The upstream's NXDOMAIN is relayed as is.
	r = ask(t, addr, q{name: "nothing.test.", qtype: miekg.TypeA})
	wantRcode(t, r, miekg.RcodeNameError)

	// A truncated UDP answer is asked again over TCP and fits the client's EDNS buffer.
	up.udp.Store(0)
	up.tcp.Store(0)
	r = ask(t, addr, q{name: "big.test.", qtype: miekg.TypeA, edns: 4096})
	if r.Truncated || len(r.Answer) != 60 {
		t.Errorf("big.test. with EDNS 4096: TC %v, %d answers", r.Truncated, len(r.Answer))
	}
	if up.udp.Load() != 1 || up.tcp.Load() != 1 {
		t.Errorf("truncated answer: upstream asked udp %d tcp %d, want 1 and 1", up.udp.Load(), up.tcp.Load())
	}
	// Without EDNS the full answer is cut to 512 bytes, so the client retries over TCP.
	r = ask(t, addr, q{name: "big.test.", qtype: miekg.TypeA})
	if !r.Truncated || len(r.Answer) == 0 || len(r.Answer) >= 60 || wireLen(r) > miekg.MinMsgSize {
		t.Errorf("big.test. without EDNS: TC %v, %d answers, %d bytes", r.Truncated, len(r.Answer), wireLen(r))
	}
	r = ask(t, addr, q{name: "big.test.", qtype: miekg.TypeA, net: "tcp"})
	if r.Truncated || len(r.Answer) != 60 {
		t.Errorf("big.test. over TCP: TC %v, %d answers", r.Truncated, len(r.Answer))
	}
}

func TestForwardFallsThrough(t *testing.T) {
	bad := startUpstream(t, true)
	good := startUpstream(t, false)
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	addr := startServer(t, Config{
		Load:      static(testRecords),
		Upstreams: []string{closedPort(t), silent.LocalAddr().String(), bad.addr, good.addr},
		Forward:   true,
		Timeout:   200 * time.Millisecond,
	})
	for _, netw := range []string{"udp", "tcp"} {
		r := ask(t, addr, q{name: "example.test.", qtype: miekg.TypeA, net: netw})
		wantRcode(t, r, miekg.RcodeSuccess)
		if got := addrs(t, r); !slices.Equal(got, []string{"192.0.2.1"}) {
			t.Errorf("over %s: %v", netw, got)
		}
	}
	if bad.udp.Load() != 1 || bad.tcp.Load() != 1 {
		t.Errorf("SERVFAIL upstream asked udp %d tcp %d", bad.udp.Load(), bad.tcp.Load())
	}
}

func TestNoForward(t *testing.T) {
	up := startUpstream(t, false)
	addr := startServer(t, Config{Load: static(testRecords), Upstreams: []string{up.addr}, Forward: false})
	r := ask(t, addr, q{name: "example.test.", qtype: miekg.TypeA})
	wantRcode(t, r, miekg.RcodeNameError)
	r = ask(t, addr, q{name: "8.8.8.8.in-addr.arpa.", qtype: miekg.TypePTR})
	wantRcode(t, r, miekg.RcodeNameError)
	if got := addrs(t, ask(t, addr, q{name: "web.", qtype: miekg.TypeA})); !slices.Equal(got, []string{"10.0.0.2"}) {
		t.Errorf("web.: %v", got)
	}
	if n := up.udp.Load() + up.tcp.Load(); n != 0 {
		t.Errorf("internal network asked the upstream %d times", n)
	}
}

func TestNoUpstream(t *testing.T) {
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	for _, tc := range []struct {
		name      string
		upstreams []string
	}{
		{"none", nil},
		{"closed port", []string{closedPort(t)}},
		{"silent", []string{silent.LocalAddr().String()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := startServer(t, Config{Load: static(testRecords), Upstreams: tc.upstreams, Forward: true, Timeout: 200 * time.Millisecond})
			for _, netw := range []string{"udp", "tcp"} {
				begin := time.Now()
				r := ask(t, addr, q{name: "example.test.", qtype: miekg.TypeA, net: netw})
				wantRcode(t, r, miekg.RcodeServerFailure)
				if d := time.Since(begin); d > 2*time.Second {
					t.Errorf("SERVFAIL over %s took %v", netw, d)
				}
			}
		})
	}
}

func TestReload(t *testing.T) {
	var (
		mu      sync.Mutex
		recs    = testRecords
		loadErr error
		loads   int
		stamp   atomic.Int64
		logs    []string
	)
	cfg := Config{
		Load: func() ([]Record, error) {
			mu.Lock()
			defer mu.Unlock()
			loads++
			return recs, loadErr
		},
		Stamp: func() string { return fmt.Sprint(stamp.Load()) },
		Logf: func(format string, args ...any) {
			mu.Lock()
			defer mu.Unlock()
			logs = append(logs, fmt.Sprintf(format, args...))
		},
	}
	addr := startServer(t, cfg)
	set := func(r []Record, err error) {
		mu.Lock()
		recs, loadErr = r, err
		mu.Unlock()
		stamp.Add(1)
	}
	lookup := func(name string) []string {
		return addrs(t, ask(t, addr, q{name: name, qtype: miekg.TypeA}))
	}

	wantRcode(t, ask(t, addr, q{name: "new.", qtype: miekg.TypeA}), miekg.RcodeNameError)
	for range 3 {
		lookup("web.")
	}
	mu.Lock()
	if loads != 1 {
		t.Errorf("Load called %d times with an unchanged stamp", loads)
	}
	mu.Unlock()

	set(append(slices.Clone(testRecords), Record{Names: []string{"new"}, IPv4: ip("10.0.0.9")}), nil)
	if got := lookup("new."); !slices.Equal(got, []string{"10.0.0.9"}) {
		t.Errorf("after the stamp changed: new. = %v", got)
	}

	// A failing Load keeps the records it had, logs once, and is retried later.
	set([]Record{{Names: []string{"other"}, IPv4: ip("10.0.0.10")}}, errors.New("disk on fire"))
	for range 3 {
		if got := lookup("new."); !slices.Equal(got, []string{"10.0.0.9"}) {
			t.Errorf("after a failed reload: new. = %v", got)
		}
	}
	mu.Lock()
	if n := len(logs); n != 1 || !strings.Contains(logs[0], "disk on fire") {
		t.Errorf("logs %q, want the Load error once", logs)
	}
	loadErr = nil
	mu.Unlock()
	time.Sleep(loadRetry + 20*time.Millisecond)
	if got := lookup("other."); !slices.Equal(got, []string{"10.0.0.10"}) {
		t.Errorf("after the retry: other. = %v", got)
	}
	wantRcode(t, ask(t, addr, q{name: "web.", qtype: miekg.TypeA}), miekg.RcodeNameError)
}

func TestLoadOnceWithoutStamp(t *testing.T) {
	var loads atomic.Int32
	addr := startServer(t, Config{Load: func() ([]Record, error) { loads.Add(1); return testRecords, nil }})
	for range 3 {
		ask(t, addr, q{name: "web.", qtype: miekg.TypeA})
	}
	if n := loads.Load(); n != 1 {
		t.Errorf("Load called %d times", n)
	}
}

// TestConcurrent is for the race detector: queries over both transports while the records
// change underneath.
func TestConcurrent(t *testing.T) {
	var stamp atomic.Int64
	addr := startServer(t, Config{
		Load: func() ([]Record, error) {
			n := stamp.Load()
			return append(slices.Clone(testRecords), Record{Names: []string{"moving"}, IPv4: netip.AddrFrom4([4]byte{10, 2, 0, byte(n)})}), nil
		},
		Stamp: func() string { return fmt.Sprint(stamp.Load()) },
	})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			netw := []string{"udp", "tcp"}[i%2]
			c := &miekg.Client{Net: netw, Timeout: 5 * time.Second}
			for j := range 30 {
				if i == 0 {
					stamp.Add(1)
				}
				m := new(miekg.Msg)
				m.SetQuestion([]string{"web.", "moving.", "db."}[j%3], miekg.TypeA)
				r, _, err := c.Exchange(m, addr)
				if err != nil || r.Rcode != miekg.RcodeSuccess || len(r.Answer) == 0 {
					t.Errorf("%v: %v %v", m.Question, err, r)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestMalformed(t *testing.T) {
	addr := startServer(t, Config{Load: static(testRecords)})

	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, junk := range [][]byte{
		{1, 2, 3},
		[]byte("this is not a dns message at all, not even close"),
		{0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0x3f}, // question cut off
	} {
		if _, err := c.Write(junk); err != nil {
			t.Fatal(err)
		}
	}
	// No question at all: FORMERR.
	m := &miekg.Msg{MsgHdr: miekg.MsgHdr{Id: 7}}
	r, _, err := new(miekg.Client).Exchange(m, addr)
	if err != nil {
		t.Fatal(err)
	}
	wantRcode(t, r, miekg.RcodeFormatError)
	// NOTIFY passes miekg's filter but is not ours to answer.
	m = new(miekg.Msg)
	m.SetNotify("web.")
	r, _, err = new(miekg.Client).Exchange(m, addr)
	if err != nil {
		t.Fatal(err)
	}
	wantRcode(t, r, miekg.RcodeNotImplemented)

	tc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	tc.Write([]byte{0, 5, 1, 2, 3, 4, 5})
	tc.Close()

	if got := addrs(t, ask(t, addr, q{name: "web.", qtype: miekg.TypeA})); !slices.Equal(got, []string{"10.0.0.2"}) {
		t.Errorf("after junk: web. = %v", got)
	}
}

func TestServe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var ready atomic.Bool
	errc := make(chan error, 1)
	go func() {
		errc <- Serve(ctx, Config{Addr: "127.0.0.1:0", Load: static(testRecords)}, func() { ready.Store(true) })
	}()
	deadline := time.Now().Add(5 * time.Second)
	for !ready.Load() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if !ready.Load() {
		t.Fatal("ready not called")
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Serve after cancel: %v", err)
	}

	for _, cfg := range []Config{
		{Addr: "nonsense", Load: static(nil)},
		{Addr: "127.0.0.1:0"},
	} {
		if err := Serve(context.Background(), cfg, func() { t.Error("ready called") }); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v, want ErrConfig", cfg, err)
		}
	}
	if err := Serve(context.Background(), Config{Addr: "127.0.0.1:0", Load: func() ([]Record, error) {
		return nil, errors.New("no records")
	}}, nil); err == nil {
		t.Error("Serve with a failing Load succeeded")
	}
}

func TestListenAddrInUse(t *testing.T) {
	s, err := Listen(Config{Addr: "127.0.0.1:0", Load: static(nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := Listen(Config{Addr: s.Addr(), Load: static(nil)}); err == nil {
		t.Error("second Listen on the same address succeeded")
	}
}

func TestClose(t *testing.T) {
	s, err := Listen(Config{Addr: "127.0.0.1:0", Load: static(testRecords)})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(context.Background()) }()
	ask(t, s.Addr(), q{name: "web.", qtype: miekg.TypeA})
	s.Close()
	if err := <-errc; err != nil {
		t.Fatalf("Serve after Close: %v", err)
	}
	if err := s.Serve(context.Background()); !errors.Is(err, ErrServing) {
		t.Errorf("second Serve: %v", err)
	}
	// Close before Serve, and twice.
	s, err = Listen(Config{Addr: "127.0.0.1:0", Load: static(nil)})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s.Close()
}

// TestStopDuringRelay: Serve must not wait out an upstream's timeout when it is stopped.
func TestStopDuringRelay(t *testing.T) {
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	s, err := Listen(Config{Addr: "127.0.0.1:0", Load: static(nil), Upstreams: []string{silent.LocalAddr().String()}, Forward: true, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ctx) }()

	c, err := net.Dial("udp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m := new(miekg.Msg)
	m.SetQuestion("example.test.", miekg.TypeA)
	b, _ := m.Pack()
	c.Write(b)
	// Wait until the relay is in flight, then stop.
	buf := make([]byte, 512)
	if n, _, err := silent.ReadFrom(buf); err != nil || n == 0 {
		t.Fatalf("upstream read: %v", err)
	}
	begin := time.Now()
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if d := time.Since(begin); d > time.Second {
		t.Errorf("Serve took %v to stop with a relay in flight", d)
	}
}

func TestBadUpstreamSkipped(t *testing.T) {
	up := startUpstream(t, false)
	addr := startServer(t, Config{Load: static(testRecords), Upstreams: []string{"8.8.8.8", "garbage:53", up.addr}, Forward: true})
	if got := addrs(t, ask(t, addr, q{name: "example.test.", qtype: miekg.TypeA})); !slices.Equal(got, []string{"192.0.2.1"}) {
		t.Errorf("example.test.: %v", got)
	}
}

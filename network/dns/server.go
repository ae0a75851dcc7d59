package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	miekg "github.com/miekg/dns"
)

// Sentinel errors.
var (
	// ErrConfig: the Config cannot be served as given.
	ErrConfig = errors.New("invalid dns server config")
	// ErrServing: Serve was called twice on one Server.
	ErrServing = errors.New("dns server already serving")
)

const (
	// recordTTL is docker's: long enough that stub caches help, and a container whose IP
	// changes gets a new name record anyway when it is recreated.
	recordTTL = 600

	defaultTimeout = 2 * time.Second

	// ednsSize is what we advertise and the most we put in a local UDP answer: the DNS flag
	// day 2020 value, which avoids IP fragmentation on any sane link.
	ednsSize = 1232

	// loadRetry spaces out calls to a failing Load so a broken record directory does not
	// turn every query into a directory scan.
	loadRetry = 100 * time.Millisecond

	// maxForwards bounds the queries relayed at once. miekg/dns runs each UDP packet in its
	// own goroutine and each relay holds a socket for up to Timeout per upstream, so without
	// a bound a container flooding us while the upstreams are down could exhaust our fds.
	maxForwards = 256

	// bindTries is how often Listen retries when the UDP half of an ephemeral port is taken.
	bindTries = 8

	// Header bits read straight from a relayed answer, which we never unpack.
	hdrQR = 0x80 // byte 2
	hdrTC = 0x02 // byte 2
)

// Record is one container on the network.
type Record struct {
	// Names are the container name (first: it is what a PTR query returns first), aliases,
	// short id and hostname; matched case-insensitively, with or without a trailing dot.
	Names []string
	// IPv4 is the container's address on the network; a zero Addr makes the names known
	// (NODATA for A) without an address.
	IPv4 netip.Addr
}

// Config says what one server serves.
type Config struct {
	// Addr is "IP:port" to listen on, UDP and TCP. With port 0 both get the same ephemeral
	// port.
	Addr string
	// Load returns the records; called by Listen and whenever Stamp's value changes.
	Load func() ([]Record, error)
	// Stamp is a cheap change detector (berth passes a directory's mtime+size), called before
	// each answer; nil loads once.
	Stamp func() string
	// Upstreams are "IP:port" resolvers for other names, tried in order; unparsable ones are
	// logged and skipped.
	Upstreams []string
	// Forward relays other names to Upstreams; false (--internal networks) answers NXDOMAIN.
	Forward bool
	// Timeout bounds each attempt at one upstream; 0 means 2s.
	Timeout time.Duration
	// Logf, when set, gets load failures and (at most once a second) relay failures.
	Logf func(format string, args ...any)
}

// Server is a bound DNS server. Listen binds it and Serve answers. Serve releases the
// sockets when it returns; Close is for a Server that will not be served, or to stop Serve
// without its context.
type Server struct {
	cfg       Config
	upstreams []string
	tcp       net.Listener
	udp       net.PacketConn

	records atomic.Pointer[table]

	mu          sync.Mutex // serializes Stamp+Load, so one change loads once
	stamp       string     // Stamp's value when records were loaded
	failedStamp string     // Stamp's value at the last failed Load, to log it once
	retryAt     time.Time  // no Load before this after a failure

	forwards  chan struct{} // semaphore of maxForwards
	bufs      sync.Pool     // *[]byte of the largest datagram, for reading upstream answers
	lastLog   atomic.Int64  // unix nanos of the last rate-limited log line
	serving   atomic.Bool
	closeOnce sync.Once
	closed    chan struct{}
}

// Serve listens on cfg.Addr and answers until ctx is done. It returns an error if it cannot
// listen or load the records; ready, if not nil, is called once both sockets are bound
// (queries sent from then on are answered). Use Listen and Server.Serve to learn the
// address bound for port 0.
func Serve(ctx context.Context, cfg Config, ready func()) error {
	s, err := Listen(cfg)
	if err != nil {
		return err
	}
	if ready != nil {
		ready()
	}
	return s.Serve(ctx)
}

// Listen loads the records and binds cfg.Addr over TCP and UDP. A failing first Load is an
// error rather than an empty table: serving nothing would send every container name to the
// upstreams.
func Listen(cfg Config) (*Server, error) {
	if cfg.Load == nil {
		return nil, fmt.Errorf("%w: no Load", ErrConfig)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultTimeout
	}
	s := &Server{
		cfg:      cfg,
		forwards: make(chan struct{}, maxForwards),
		closed:   make(chan struct{}),
	}
	s.bufs.New = func() any {
		b := make([]byte, miekg.MaxMsgSize)
		return &b
	}
	// The stamp is read before Load so that a change racing with Load is seen next time.
	if cfg.Stamp != nil {
		s.stamp = cfg.Stamp()
	}
	recs, err := cfg.Load()
	if err != nil {
		return nil, fmt.Errorf("dns: load records: %w", err)
	}
	s.records.Store(buildTable(recs, s.logf))

	s.tcp, s.udp, err = bind(cfg.Addr)
	if err != nil {
		return nil, err
	}
	// Upstreams come from the host's resolv.conf, so a bad one is skipped rather than
	// refused: failing here would take the containers' own names away with it. Relaying to
	// ourselves would loop until every query timed out.
	self := s.tcp.Addr().(*net.TCPAddr).AddrPort()
	for _, u := range cfg.Upstreams {
		ap, err := netip.ParseAddrPort(u)
		if err != nil {
			s.logf("dns: upstream %q skipped: %v", u, err)
			continue
		}
		if ap.Addr().Unmap() == self.Addr().Unmap() && ap.Port() == self.Port() {
			s.logf("dns: upstream %s is this server; skipped", ap)
			continue
		}
		s.upstreams = append(s.upstreams, ap.String())
	}
	return s, nil
}

// bind binds TCP first: with port 0 the kernel picks a port free for TCP, and UDP then
// takes the same number, retrying with another port when a UDP socket already has it.
func bind(addr string) (net.Listener, net.PacketConn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: address %q: %v", ErrConfig, addr, err)
	}
	n, perr := strconv.ParseUint(port, 10, 16)
	ephemeral := perr == nil && n == 0
	for try := 1; ; try++ {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("dns: %w", err)
		}
		uaddr := addr
		if ephemeral {
			uaddr = net.JoinHostPort(host, strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
		}
		p, err := net.ListenPacket("udp", uaddr)
		if err == nil {
			return l, p, nil
		}
		l.Close()
		if !ephemeral || !errors.Is(err, syscall.EADDRINUSE) || try == bindTries {
			return nil, nil, fmt.Errorf("dns: %w", err)
		}
	}
}

// Addr is the bound "IP:port", the same for UDP and TCP.
func (s *Server) Addr() string { return s.tcp.Addr().String() }

// Close releases the sockets and makes a running Serve return. It always returns nil.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		// Serve's shutdown may have closed them already; that error means nothing.
		s.tcp.Close()
		s.udp.Close()
	})
	return nil
}

func (s *Server) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// Serve answers until ctx is done or Close is called, then waits for the queries in
// flight (relays are cancelled) and releases the sockets. It returns nil then, and an
// error if a socket fails on its own.
func (s *Server) Serve(ctx context.Context) error {
	if !s.serving.CompareAndSwap(false, true) {
		return ErrServing
	}
	defer s.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	h := handler{s: s, ctx: ctx}
	udp := start(&miekg.Server{PacketConn: s.udp, Handler: h, UDPSize: ednsSize})
	tcp := start(&miekg.Server{Listener: s.tcp, Handler: h})

	var err error
	select {
	case <-ctx.Done():
	case <-s.closed:
	case <-udp.done:
		err = udp.err
	case <-tcp.done:
		err = tcp.err
	}
	cancel()
	err = errors.Join(err, udp.stop(), tcp.stop())
	if err == nil || s.isClosed() {
		return nil
	}
	return fmt.Errorf("dns: serve %s: %w", s.Addr(), err)
}

// run is one miekg server goroutine. miekg's Shutdown fails on a server that has not
// started yet, which would leave the goroutine serving forever, so stop waits for either
// the start or the end.
type run struct {
	srv     *miekg.Server
	started chan struct{}
	done    chan struct{}
	err     error // valid once done is closed
}

func start(srv *miekg.Server) *run {
	r := &run{srv: srv, started: make(chan struct{}), done: make(chan struct{})}
	srv.NotifyStartedFunc = func() { close(r.started) }
	go func() {
		r.err = srv.ActivateAndServe()
		close(r.done)
	}()
	return r
}

func (r *run) stop() error {
	select {
	case <-r.done:
		return r.err
	case <-r.started:
	}
	// Returns once the handlers in flight are done; Serve cancelled their relays first.
	_ = r.srv.Shutdown()
	<-r.done
	return r.err
}

func (s *Server) logf(format string, args ...any) {
	if s.cfg.Logf != nil {
		s.cfg.Logf(format, args...)
	}
}

// logLimited logs at most once a second: relay failures come per query, and a dead
// upstream must not flood the log.
func (s *Server) logLimited(format string, args ...any) {
	now := time.Now().UnixNano()
	last := s.lastLog.Load()
	if now-last < int64(time.Second) || !s.lastLog.CompareAndSwap(last, now) {
		return
	}
	s.logf(format, args...)
}

// refresh reloads the records when Stamp changed. It runs before every answer, holding the
// mutex through Load, so that a query arriving just after a container joined waits for
// the new records instead of being relayed upstream with a stale table; Stamp is meant
// to be a single stat, cheap enough for that.
func (s *Server) refresh() {
	if s.cfg.Stamp == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	stamp := s.cfg.Stamp()
	if stamp == s.stamp {
		return
	}
	now := time.Now()
	if now.Before(s.retryAt) {
		return
	}
	recs, err := s.cfg.Load()
	if err != nil {
		s.retryAt = now.Add(loadRetry)
		if stamp != s.failedStamp {
			s.failedStamp = stamp
			s.logf("dns: reload records (keeping the old ones): %v", err)
		}
		return
	}
	s.records.Store(buildTable(recs, s.logf))
	s.stamp, s.failedStamp = stamp, ""
}

// table is an immutable snapshot of the records, swapped whole on reload so that lookups
// take no lock.
type table struct {
	addrs map[string][]netip.Addr // lower-case FQDN -> IPv4s
	ptrs  map[string][]string     // in-addr.arpa name -> FQDNs as given, container names first
}

func buildTable(recs []Record, logf func(string, ...any)) *table {
	t := &table{addrs: map[string][]netip.Addr{}, ptrs: map[string][]string{}}
	for _, r := range recs {
		ip := r.IPv4.Unmap()
		var rev string
		if ip.Is4() {
			rev, _ = miekg.ReverseAddr(ip.String())
		}
		for _, name := range r.Names {
			fqdn := miekg.Fqdn(name)
			if _, ok := miekg.IsDomainName(fqdn); !ok || fqdn == "." {
				logf("dns: record name %q is not a domain name; skipped", name)
				continue
			}
			key := strings.ToLower(fqdn)
			addrs := t.addrs[key]
			if ip.Is4() && !slices.Contains(addrs, ip) {
				addrs = append(addrs, ip)
			}
			t.addrs[key] = addrs
			if rev != "" && !slices.ContainsFunc(t.ptrs[rev], func(n string) bool { return strings.EqualFold(n, fqdn) }) {
				t.ptrs[rev] = append(t.ptrs[rev], fqdn)
			}
		}
	}
	return t
}

// answer returns the local answer to q, and whether q's name is ours at all.
func (t *table) answer(q miekg.Question) ([]miekg.RR, bool) {
	if q.Qclass != miekg.ClassINET {
		return nil, false
	}
	name := strings.ToLower(q.Name)
	if addrs, ok := t.addrs[name]; ok {
		if q.Qtype != miekg.TypeA || len(addrs) == 0 {
			return nil, true
		}
		hdr := miekg.RR_Header{Name: q.Name, Rrtype: miekg.TypeA, Class: miekg.ClassINET, Ttl: recordTTL}
		rrs := make([]miekg.RR, len(addrs))
		for i, a := range addrs {
			b := a.As4()
			rrs[i] = &miekg.A{Hdr: hdr, A: net.IP(b[:])}
		}
		// Shuffled so that clients taking the first address spread over an alias's members.
		rand.Shuffle(len(rrs), func(i, j int) { rrs[i], rrs[j] = rrs[j], rrs[i] })
		return rrs, true
	}
	if names, ok := t.ptrs[name]; ok {
		if q.Qtype != miekg.TypePTR {
			return nil, true
		}
		hdr := miekg.RR_Header{Name: q.Name, Rrtype: miekg.TypePTR, Class: miekg.ClassINET, Ttl: recordTTL}
		rrs := make([]miekg.RR, len(names))
		for i, n := range names {
			rrs[i] = &miekg.PTR{Hdr: hdr, Ptr: n}
		}
		return rrs, true
	}
	return nil, false
}

// handler carries Serve's context so that relays in flight end when Serve does.
type handler struct {
	s   *Server
	ctx context.Context
}

func (h handler) ServeDNS(w miekg.ResponseWriter, req *miekg.Msg) {
	s := h.s
	defer func() {
		// A bug answering one query must not take DNS away from the whole network.
		if p := recover(); p != nil {
			s.logf("dns: panic answering %v: %v", req.Question, p)
			reply(w, req, req.IsEdns0(), isTCP(w), newReply(req, miekg.RcodeServerFailure))
		}
	}()

	opt := req.IsEdns0()
	tcp := isTCP(w)
	switch {
	case req.Opcode != miekg.OpcodeQuery:
		reply(w, req, opt, tcp, newReply(req, miekg.RcodeNotImplemented))
		return
	case len(req.Question) != 1:
		reply(w, req, opt, tcp, newReply(req, miekg.RcodeFormatError))
		return
	case opt != nil && opt.Version() != 0:
		reply(w, req, opt, tcp, newReply(req, miekg.RcodeBadVers))
		return
	}

	s.refresh()
	if rrs, ok := s.records.Load().answer(req.Question[0]); ok {
		m := newReply(req, miekg.RcodeSuccess)
		m.Authoritative = true
		m.Answer = rrs
		reply(w, req, opt, tcp, m)
		return
	}
	if !s.cfg.Forward {
		reply(w, req, opt, tcp, newReply(req, miekg.RcodeNameError))
		return
	}
	s.forward(h.ctx, w, req, opt, tcp)
}

func isTCP(w miekg.ResponseWriter) bool {
	_, ok := w.RemoteAddr().(*net.TCPAddr)
	return ok
}

func newReply(req *miekg.Msg, rcode int) *miekg.Msg {
	m := new(miekg.Msg)
	m.SetRcode(req, rcode)
	m.RecursionAvailable = true
	return m
}

// reply sends a locally made answer, with EDNS0 echoed and cut to what a UDP client takes.
func reply(w miekg.ResponseWriter, req *miekg.Msg, opt *miekg.OPT, tcp bool, m *miekg.Msg) {
	size := miekg.MinMsgSize
	if opt != nil {
		m.SetEdns0(ednsSize, opt.Do())
		size = min(max(int(opt.UDPSize()), miekg.MinMsgSize), ednsSize)
	}
	if tcp {
		m.Compress = true
	} else {
		m.Truncate(size)
	}
	_ = w.WriteMsg(m)
}

// forward relays req to the upstreams (see the package comment).
func (s *Server) forward(ctx context.Context, w miekg.ResponseWriter, req *miekg.Msg, opt *miekg.OPT, tcp bool) {
	fail := func(format string, args ...any) {
		s.logLimited(format, args...)
		reply(w, req, opt, tcp, newReply(req, miekg.RcodeServerFailure))
	}
	q := req.Question[0]
	if len(s.upstreams) == 0 {
		fail("dns: %s: no upstream resolver", q.Name)
		return
	}
	select {
	case s.forwards <- struct{}{}:
		defer func() { <-s.forwards }()
	default:
		fail("dns: %s: %d queries already relayed; answering SERVFAIL", q.Name, maxForwards)
		return
	}

	id := req.Id
	req.Id = miekg.Id()
	query, err := req.Pack()
	req.Id = id
	if err != nil {
		fail("dns: %s: pack query: %v", q.Name, err)
		return
	}

	var errs []error
	for _, up := range s.upstreams {
		raw, err := s.ask(ctx, up, query, tcp)
		if err == nil {
			if rc := int(raw[3] & 0x0f); rc == miekg.RcodeServerFailure || rc == miekg.RcodeRefused {
				err = fmt.Errorf("%s answered %s", up, miekg.RcodeToString[rc])
			}
		}
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		binary.BigEndian.PutUint16(raw, id)
		relay(w, req, raw, opt, tcp)
		return
	}
	fail("dns: relay %s %s: %v", q.Name, miekg.TypeToString[q.Qtype], errors.Join(errs...))
}

// ask gets one upstream's answer, switching to TCP when its UDP answer is truncated. If
// the TCP attempt fails the truncated answer still goes back: the client can retry over
// TCP itself.
func (s *Server) ask(ctx context.Context, upstream string, query []byte, tcp bool) ([]byte, error) {
	if tcp {
		return s.exchange(ctx, "tcp", upstream, query)
	}
	raw, err := s.exchange(ctx, "udp", upstream, query)
	if err != nil || raw[2]&hdrTC == 0 {
		return raw, err
	}
	if full, err := s.exchange(ctx, "tcp", upstream, query); err == nil {
		return full, nil
	}
	return raw, nil
}

// exchange sends one packed query and returns the raw answer with a matching id. Cancelling
// ctx (Serve stopping) ends it at once through the connection's deadline.
func (s *Server) exchange(ctx context.Context, network, addr string, query []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	c.SetDeadline(deadline)
	defer context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })()

	id := binary.BigEndian.Uint16(query)
	if network == "tcp" {
		msg := make([]byte, 2+len(query))
		binary.BigEndian.PutUint16(msg, uint16(len(query)))
		copy(msg[2:], query)
		if _, err := c.Write(msg); err != nil {
			return nil, err
		}
		var l [2]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return nil, err
		}
		raw := make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(c, raw); err != nil {
			return nil, err
		}
		if !isAnswer(raw, id) {
			return nil, fmt.Errorf("%s: answer does not match the query", addr)
		}
		return raw, nil
	}

	if _, err := c.Write(query); err != nil {
		return nil, err
	}
	// The socket is connected, so only the upstream's datagrams arrive; a wrong id is a late
	// answer to an earlier attempt, or spoofing, and is skipped.
	bp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bp)
	buf := *bp
	for {
		n, err := c.Read(buf)
		if err != nil {
			return nil, err
		}
		if isAnswer(buf[:n], id) {
			return slices.Clone(buf[:n]), nil
		}
	}
}

func isAnswer(raw []byte, id uint16) bool {
	return len(raw) >= 12 && binary.BigEndian.Uint16(raw) == id && raw[2]&hdrQR != 0
}

// relay returns an upstream's answer to the client. Only an answer larger than a UDP client
// can take (one fetched over TCP after truncation) is unpacked, to cut it down.
func relay(w miekg.ResponseWriter, req *miekg.Msg, raw []byte, opt *miekg.OPT, tcp bool) {
	size := miekg.MinMsgSize
	if opt != nil {
		size = max(int(opt.UDPSize()), miekg.MinMsgSize)
	}
	if tcp || len(raw) <= size {
		_, _ = w.Write(raw)
		return
	}
	m := new(miekg.Msg)
	if err := m.Unpack(raw); err != nil {
		reply(w, req, opt, tcp, newReply(req, miekg.RcodeServerFailure))
		return
	}
	m.Truncate(size)
	_ = w.WriteMsg(m)
}

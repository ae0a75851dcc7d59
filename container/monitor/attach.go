package monitor

import (
	"encoding/binary"
	"os"
	"sync"
	"time"

	"github.com/berth-dev/berth/container/jsonlite"
)

const (
	// clientQueue is how many frames may wait for one client (frames carry at most pumpBuf
	// bytes: at most 1 MiB per client). When it is full the output waits for the client up
	// to clientStall, then the client is dropped: a client that stops reading cannot block
	// the container for longer.
	clientQueue = 128
	clientStall = 5 * time.Second
	pumpBuf     = 8 * 1024
	maxFrame    = 1 << 20 // largest frame a client may send
	helloMax    = 4096
)

// client is one connection to attach.sock.
type client struct {
	m     *supervisor
	conn  *os.File
	hello Hello
	out   chan []byte   // frames for the writer
	quit  chan struct{} // closed when the client is gone or dropped
	once  sync.Once
	// stdinDone: the client sent FrameStdinClose (guarded by m.mu).
	stdinDone bool
	cleanup   bool // counted in m.cleanupN (guarded by m.mu)
}

func makeFrame(typ byte, p []byte) []byte {
	f := make([]byte, 5+len(p))
	f[0] = typ
	binary.BigEndian.PutUint32(f[1:5], uint32(len(p)))
	copy(f[5:], p)
	return f
}

func (m *supervisor) acceptLoop() {
	for {
		c, err := accept(m.lnAtt)
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		go m.serve(c)
	}
}

// serve reads the client's Hello, registers it and reads its frames until it goes.
func (m *supervisor) serve(conn *os.File) {
	c := &client{m: m, conn: conn}
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	r := &frameReader{f: conn, buf: make([]byte, 0, 512)}
	line, err := r.line(helloMax)
	if err != nil || c.hello.unmarshal(line) != nil {
		conn.Close()
		return
	}
	conn.SetReadDeadline(time.Time{})

	m.mu.Lock()
	if m.final != nil {
		// The container exited for good: FrameExit at once.
		frame := makeFrame(FrameExit, m.final.marshal())
		m.mu.Unlock()
		conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		conn.Write(frame)
		if c.hello.Cleanup {
			shutdownWrite(conn)
			m.cleanupJoin(c)
			r.discard()
			m.cleanupLeave(c)
		}
		conn.Close()
		return
	}
	c.out = make(chan []byte, clientQueue)
	c.quit = make(chan struct{})
	// The first frame says the client is registered: a client that waits for it before it
	// lets the container start cannot miss the first bytes of output.
	c.out <- makeFrame(FrameAttached, nil)
	m.clients = append(m.clients, c)
	if c.hello.Cleanup {
		c.cleanup = true
		m.cleanupN++
	}
	m.writers.Add(1)
	m.mu.Unlock()
	go c.writeLoop()

	for {
		typ, p, err := r.frame()
		if err != nil {
			break
		}
		switch typ {
		case FrameStdin:
			if c.hello.Stdin {
				m.writeStdin(p)
			}
		case FrameStdinClose:
			if c.hello.Stdin {
				m.mu.Lock()
				c.stdinDone = true
				m.maybeCloseStdinLocked(c)
				m.mu.Unlock()
			}
		case FrameResize:
			var rs Resize
			if rs.unmarshal(p) == nil {
				m.mu.Lock()
				m.resize = &rs
				if m.master != nil {
					setWinsize(m.master, rs.Rows, rs.Cols)
				}
				m.mu.Unlock()
			}
		}
	}
	// Gone.
	m.mu.Lock()
	for i, x := range m.clients {
		if x == c {
			m.clients = append(m.clients[:i], m.clients[i+1:]...)
			break
		}
	}
	if c.hello.Stdin && !c.stdinDone && m.cfg.StdinOnce {
		c.stdinDone = true
		m.maybeCloseStdinLocked(c)
	}
	m.mu.Unlock()
	c.stop()
	m.cleanupLeave(c)
}

// maybeCloseStdinLocked closes the container's stdin once no client that writes stdin is
// left without having closed it. m.mu is held.
func (m *supervisor) maybeCloseStdinLocked(c *client) {
	for _, x := range m.clients {
		if x != c && x.hello.Stdin && !x.stdinDone {
			return
		}
	}
	if m.stdin != nil && m.stdin != m.master {
		m.stdin.Close()
		m.stdin = nil
	}
}

func (m *supervisor) cleanupJoin(c *client) {
	m.mu.Lock()
	c.cleanup = true
	m.cleanupN++
	m.mu.Unlock()
}

func (m *supervisor) cleanupLeave(c *client) {
	m.mu.Lock()
	if c.cleanup {
		c.cleanup = false
		m.cleanupN--
		if m.cleanupCh != nil {
			close(m.cleanupCh)
			m.cleanupCh = nil
		}
	}
	m.mu.Unlock()
}

func (m *supervisor) writeStdin(p []byte) {
	m.mu.Lock()
	f := m.stdin
	m.mu.Unlock()
	if f != nil {
		f.Write(p) // a closed stdin (the container exited) only fails the write
	}
}

// writeLoop sends the client's frames; FrameExit is the last.
func (c *client) writeLoop() {
	defer c.m.writers.Done()
	for {
		var f []byte
		select {
		case f = <-c.out:
		case <-c.quit:
			return
		}
		if _, err := c.conn.Write(f); err != nil {
			c.stop()
			return
		}
		if f[0] == FrameExit {
			if c.hello.Cleanup {
				shutdownWrite(c.conn) // it tells us it is done by closing
			} else {
				c.stop()
			}
			return
		}
	}
}

// stop ends the client: its writer stops and its connection closes (which ends its reader).
func (c *client) stop() {
	c.once.Do(func() {
		close(c.quit)
		c.conn.Close()
	})
}

// send queues a frame for the client; a client that does not make room within clientStall
// is dropped.
func (c *client) send(frame []byte) {
	select {
	case c.out <- frame:
		return
	case <-c.quit:
		return
	default:
	}
	t := time.NewTimer(clientStall)
	defer t.Stop()
	select {
	case c.out <- frame:
	case <-c.quit:
	case <-t.C:
		c.stop()
	}
}

func (c *client) wants(stream byte) bool {
	if stream == FrameStderr {
		return c.hello.Stderr
	}
	return c.hello.Stdout
}

// pump copies one output stream of the container to the log and to the clients until EOF
// (or the read deadline endRun sets).
func (m *supervisor) pump(f *os.File, stream byte, name string, done *sync.WaitGroup) {
	defer done.Done()
	buf := make([]byte, pumpBuf)
	var cs []*client
	for {
		n, err := f.Read(buf)
		if n > 0 {
			cs = m.output(stream, name, buf[:n], cs[:0])
		}
		if err != nil {
			return
		}
	}
}

// output logs p and sends it to the clients that want stream; cs is scratch space.
func (m *supervisor) output(stream byte, name string, p []byte, cs []*client) []*client {
	if m.log != nil {
		m.log.Write(name, p, time.Now())
	}
	m.mu.Lock()
	for _, c := range m.clients {
		if c.wants(stream) {
			cs = append(cs, c)
		}
	}
	m.mu.Unlock()
	if len(cs) == 0 {
		return cs
	}
	frame := makeFrame(stream, p)
	for _, c := range cs {
		c.send(frame)
	}
	clear(cs)
	return cs
}

// frameReader reads the client's Hello line and frames.
type frameReader struct {
	f   *os.File
	buf []byte // read but not consumed
}

func (r *frameReader) fill() error {
	if len(r.buf) == cap(r.buf) {
		nb := make([]byte, len(r.buf), 2*cap(r.buf))
		copy(nb, r.buf)
		r.buf = nb
	}
	n, err := r.f.Read(r.buf[len(r.buf):cap(r.buf)])
	r.buf = r.buf[:len(r.buf)+n]
	if n > 0 {
		return nil
	}
	return err
}

// line returns the first line (without '\n').
func (r *frameReader) line(max int) ([]byte, error) {
	for {
		for i, b := range r.buf {
			if b == '\n' {
				l := append([]byte(nil), r.buf[:i]...)
				r.consume(i + 1)
				return l, nil
			}
		}
		if len(r.buf) > max {
			return nil, jsonlite.ErrSyntax
		}
		if err := r.fill(); err != nil {
			return nil, err
		}
	}
}

func (r *frameReader) consume(n int) {
	k := copy(r.buf, r.buf[n:])
	r.buf = r.buf[:k]
}

func (r *frameReader) frame() (byte, []byte, error) {
	for len(r.buf) < 5 {
		if err := r.fill(); err != nil {
			return 0, nil, err
		}
	}
	n := int(binary.BigEndian.Uint32(r.buf[1:5]))
	if n > maxFrame {
		return 0, nil, jsonlite.ErrSyntax
	}
	for len(r.buf) < 5+n {
		if err := r.fill(); err != nil {
			return 0, nil, err
		}
	}
	typ := r.buf[0]
	p := append([]byte(nil), r.buf[5:5+n]...)
	r.consume(5 + n)
	if cap(r.buf) > 64*1024 && len(r.buf) < 512 {
		r.buf = append(make([]byte, 0, 512), r.buf...)
	}
	return typ, p, nil
}

// discard reads until the client closes.
func (r *frameReader) discard() {
	for {
		r.buf = r.buf[:0]
		if err := r.fill(); err != nil {
			return
		}
	}
}

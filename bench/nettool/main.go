// Command nettool is the traffic generator of bench/network.sh: a TCP server that runs inside
// each engine's container, and the host-side clients that measure throughput and connections
// per second through each engine's published-port path, plus a userland TCP proxy (the
// alternative to DNAT for 127.0.0.1). Standard library only, built static:
//
//	CGO_ENABLED=0 go build -o /tmp/nettool ./bench/nettool
//
// Modes (each measuring mode prints one line: a key, its value, then informational pairs):
//
//	nettool serve -l :8080
//	    TCP server. Per connection, a 1-byte header: 'S' (sink) reads and discards until EOF,
//	    then closes; 'C' (connection) writes one byte back and closes.
//	nettool throughput -a ADDR [-d 5s] [-P 1]
//	    P connections, each sends 'S' then 128 KiB writes for the duration, then shuts down its
//	    write side and waits for the server's close (so every byte counted has been read by the
//	    server). Prints "throughput_MBps <MB/s, 10^6 bytes> streams P bytes N seconds S".
//	nettool connrate -a ADDR [-d 5s] [-c 8]
//	    c workers each loop: connect, write 'C', read 1 byte and EOF, close. Prints
//	    "connrate_cps <completed connections/s> conns N errors E seconds S slow N max_ms M"
//	    (slow: exchanges that took over 200 ms; max_ms: the slowest).
//	nettool proxy -l 127.0.0.1:PORT -t ADDR
//	    Userland TCP proxy: accept, dial the target, copy both ways with io.Copy (splice(2) on
//	    Linux between two TCP sockets). Prints "proxy_listening ADDR" once listening; runs
//	    until killed.
//	nettool probe -a ADDR [-t 10s]
//	    Repeats a 'C' exchange until one succeeds (exit 0) or the timeout passes (exit 1):
//	    the bench's readiness check for a published port.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

const chunk = 128 << 10

func usage() {
	fmt.Fprintln(os.Stderr, "usage: nettool serve|throughput|connrate|proxy|probe [flags] (see -h of each)")
	os.Exit(2)
}

func fatal(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "nettool: "+format+"\n", a...)
	os.Exit(1)
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	mode, args := os.Args[1], os.Args[2:]
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	switch mode {
	case "serve":
		l := fs.String("l", ":8080", "listen address")
		fs.Parse(args)
		serve(*l)
	case "throughput":
		a := fs.String("a", "", "server address")
		d := fs.Duration("d", 5*time.Second, "duration")
		p := fs.Int("P", 1, "parallel connections")
		fs.Parse(args)
		if *a == "" || *p < 1 {
			fatal("throughput: -a ADDR and -P >= 1 needed")
		}
		throughput(*a, *d, *p)
	case "connrate":
		a := fs.String("a", "", "server address")
		d := fs.Duration("d", 5*time.Second, "duration")
		c := fs.Int("c", 8, "concurrent workers")
		fs.Parse(args)
		if *a == "" || *c < 1 {
			fatal("connrate: -a ADDR and -c >= 1 needed")
		}
		connrate(*a, *d, *c)
	case "proxy":
		l := fs.String("l", "127.0.0.1:0", "listen address")
		t := fs.String("t", "", "target address")
		fs.Parse(args)
		if *t == "" {
			fatal("proxy: -t ADDR needed")
		}
		proxy(*l, *t)
	case "probe":
		a := fs.String("a", "", "server address")
		t := fs.Duration("t", 10*time.Second, "give up after")
		fs.Parse(args)
		if *a == "" {
			fatal("probe: -a ADDR needed")
		}
		deadline := time.Now().Add(*t)
		var err error
		for {
			if err = exchange(*a, time.Second); err == nil {
				return
			}
			if time.Now().After(deadline) {
				fatal("probe %s: %v", *a, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	default:
		usage()
	}
}

func serve(addr string) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fatal("serve: %v", err)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			fatal("serve: accept: %v", err)
		}
		go handle(c)
	}
}

func handle(c net.Conn) {
	defer c.Close()
	var h [1]byte
	if _, err := io.ReadFull(c, h[:]); err != nil {
		return
	}
	switch h[0] {
	case 'S':
		buf := make([]byte, 256<<10)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	case 'C':
		c.Write([]byte{'c'})
	}
}

func dialer() *net.Dialer { return &net.Dialer{Timeout: 5 * time.Second, KeepAlive: -1} }

func throughput(addr string, d time.Duration, streams int) {
	conns := make([]*net.TCPConn, streams)
	for i := range conns {
		c, err := dialer().Dial("tcp", addr)
		if err != nil {
			fatal("throughput: %v", err)
		}
		conns[i] = c.(*net.TCPConn)
		if _, err := c.Write([]byte{'S'}); err != nil {
			fatal("throughput: %v", err)
		}
	}
	var total atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	start := time.Now()
	stop := start.Add(d)
	for _, c := range conns {
		wg.Add(1)
		go func(c *net.TCPConn) {
			defer wg.Done()
			defer c.Close()
			buf := make([]byte, chunk)
			for i := range buf {
				buf[i] = byte(i)
			}
			c.SetWriteDeadline(stop)
			for {
				n, err := c.Write(buf)
				total.Add(int64(n))
				if err != nil {
					if !errors.Is(err, os.ErrDeadlineExceeded) {
						errs <- err
						return
					}
					break
				}
			}
			// every byte counted must have reached the server: it closes once it has read EOF
			if err := c.CloseWrite(); err != nil {
				errs <- err
				return
			}
			c.SetReadDeadline(time.Now().Add(60 * time.Second))
			if _, err := io.Copy(io.Discard, c); err != nil {
				errs <- err
			}
		}(c)
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	close(errs)
	for err := range errs {
		fatal("throughput: %v", err)
	}
	b := total.Load()
	fmt.Printf("throughput_MBps %.1f streams %d bytes %d seconds %.3f\n", float64(b)/secs/1e6, streams, b, secs)
}

// exchange: connect, write 'C', read the 1-byte answer and the server's close, close. Waiting
// for the server's FIN makes the server the active closer: the TIME_WAIT state stays on its side
// (in the container), so the client's ephemeral ports do not run out to a non-loopback address.
func exchange(addr string, timeout time.Duration) error {
	c, err := (&net.Dialer{Timeout: timeout, KeepAlive: -1}).Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte{'C'}); err != nil {
		return err
	}
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return err
	}
	if n, err := c.Read(b[:]); n != 0 || err != io.EOF {
		return fmt.Errorf("expected EOF after the answer, got %d bytes, %v", n, err)
	}
	return nil
}

func connrate(addr string, d time.Duration, workers int) {
	var ok, bad, slow, maxNs atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	stop := start.Add(d)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				t0 := time.Now()
				if !t0.Before(stop) {
					return
				}
				err := exchange(addr, 5*time.Second)
				dt := int64(time.Since(t0))
				for m := maxNs.Load(); dt > m && !maxNs.CompareAndSwap(m, dt); m = maxNs.Load() {
				}
				if dt > int64(200*time.Millisecond) {
					slow.Add(1) // typically a SYN retransmitted after 1 s
				}
				if err != nil {
					bad.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	if e := firstErr.Load(); e != nil {
		fmt.Fprintf(os.Stderr, "nettool: connrate: %d errors, first: %s\n", bad.Load(), e)
	}
	fmt.Printf("connrate_cps %.1f conns %d errors %d seconds %.3f slow %d max_ms %.1f\n",
		float64(ok.Load())/secs, ok.Load(), bad.Load(), secs, slow.Load(), float64(maxNs.Load())/1e6)
	if ok.Load() == 0 {
		os.Exit(1)
	}
}

func proxy(listen, target string) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		fatal("proxy: %v", err)
	}
	fmt.Printf("proxy_listening %s\n", ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			fatal("proxy: accept: %v", err)
		}
		go relay(c.(*net.TCPConn), target)
	}
}

func relay(down *net.TCPConn, target string) {
	defer down.Close()
	c, err := dialer().Dial("tcp", target)
	if err != nil {
		fmt.Fprintf(os.Stderr, "nettool: proxy: dial %s: %v\n", target, err)
		return
	}
	up := c.(*net.TCPConn)
	defer up.Close()
	done := make(chan struct{})
	go func() {
		io.Copy(up, down) // *TCPConn.ReadFrom: splice(2)
		up.CloseWrite()
		close(done)
	}()
	io.Copy(down, up)
	down.CloseWrite()
	<-done
}

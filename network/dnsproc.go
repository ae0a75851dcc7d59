package network

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/network/dns"
)

// The DNS server of a user-defined network is a process of its own (`berth network
// dns-server ID`), like podman's aardvark-dns: berth has no daemon to host it. It listens on
// the network's gateway address, port 53, which every container of the network has as its
// nameserver, and reads the network's endpoints directory whenever it changes. It runs while
// the network exists: started by the first attach of a boot (or after a crash), stopped by
// `network rm`. Its lock file tells whether it runs; its pid file whom to stop.

func (s *Store) dnsFiles(nid string) (lock, pid, log string) {
	d := filepath.Join(s.run, "dns")
	return filepath.Join(d, nid+".lock"), filepath.Join(d, nid+".pid"), filepath.Join(d, nid+".log")
}

// dnsRunning tells whether a server holds the network's lock.
func dnsRunning(lock string) bool {
	fd, err := unix.Open(lock, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return true
	}
	return false
}

// ensureDNS starts the network's DNS server unless it runs, and waits until it answers.
func (s *Store) ensureDNS(n *Network) error {
	lock, _, logPath := s.dnsFiles(n.ID)
	if dnsRunning(lock) {
		return nil
	}
	if s.Self == "" {
		return errors.New("dns server: the berth executable is unknown")
	}
	if err := os.MkdirAll(filepath.Dir(lock), 0o700); err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		w.Close()
		return err
	}
	cmd := exec.Command(s.Self, "--root", filepath.Dir(s.dir), "network", "dns-server", n.ID)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = "/"
	cmd.ExtraFiles = []*os.File{w}
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "GOMAXPROCS=1"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	w.Close()
	logf.Close()
	if err != nil {
		return fmt.Errorf("start the DNS server of network %s: %w", n.Name, err)
	}
	go cmd.Wait()
	done := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(r).ReadString('\n')
		done <- strings.TrimSpace(line)
	}()
	select {
	case msg := <-done:
		if msg != "ok" {
			if msg == "" {
				msg = "it exited (see " + logPath + ")"
			}
			return fmt.Errorf("DNS server of network %s: %s", n.Name, msg)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		return fmt.Errorf("DNS server of network %s did not start in 10s (see %s)", n.Name, logPath)
	}
	return nil
}

// stopDNS ends the network's DNS server and waits for it to go.
func (s *Store) stopDNS(nid string) {
	lock, pidf, logf := s.dnsFiles(nid)
	if dnsRunning(lock) {
		if b, err := os.ReadFile(pidf); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
				unix.Kill(pid, unix.SIGTERM)
			}
		}
		for i := 0; i < 200 && dnsRunning(lock); i++ {
			time.Sleep(10 * time.Millisecond)
		}
	}
	os.Remove(pidf)
	os.Remove(lock)
	os.Remove(logf)
}

// ServeDNS is the DNS server process of network nid (`berth network dns-server`). ready is
// told "ok" once it listens, or the error; it is closed either way.
func (s *Store) ServeDNS(ctx context.Context, nid string, ready *os.File) error {
	report := func(msg string) {
		if ready != nil {
			ready.WriteString(msg + "\n")
			ready.Close()
			ready = nil
		}
	}
	defer report("exited")
	n, err := s.lookup(nid)
	if err != nil {
		report(err.Error())
		return err
	}
	lock, pidf, _ := s.dnsFiles(n.ID)
	if err := os.MkdirAll(filepath.Dir(lock), 0o700); err != nil {
		report(err.Error())
		return err
	}
	fd, err := unix.Open(lock, unix.O_CREAT|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		report(err.Error())
		return err
	}
	defer unix.Close(fd)
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		report("ok") // another server won the race: it serves
		return nil
	}
	if err := os.WriteFile(pidf, []byte(strconv.Itoa(os.Getpid())), 0o600); err != nil {
		report(err.Error())
		return err
	}
	dir := s.EndpointsDir(n.ID)
	cfg := dns.Config{
		Addr:      net.JoinHostPort(n.Gateway.String(), "53"),
		Upstreams: upstreams(s.ResolvConf),
		Forward:   !n.Internal,
		Stamp: func() string {
			var st unix.Stat_t
			if unix.Stat(dir, &st) != nil {
				return ""
			}
			return fmt.Sprint(st.Mtim.Nano(), st.Size, st.Nlink)
		},
		Load: func() ([]dns.Record, error) {
			eps, err := s.endpoints(n.ID)
			if err != nil {
				return nil, err
			}
			recs := make([]dns.Record, 0, len(eps))
			for _, ep := range eps {
				recs = append(recs, dns.Record{Names: ep.DNSNames, IPv4: ep.IP})
			}
			return recs, nil
		},
		Logf: func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) },
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The network's removal stops the server; a server whose network vanished without that
	// (a crash during removal) notices here.
	go func() {
		for ctx.Err() == nil {
			time.Sleep(30 * time.Second)
			if _, err := os.Stat(filepath.Join(s.netDir(n.ID), "network.json")); err != nil {
				cancel()
			}
		}
	}()
	return dns.Serve(ctx, cfg, func() { report("ok") })
}

// upstreams are the host's nameservers (loopback ones included: the server runs in the
// host's network namespace).
func upstreams(resolvConf string) []string {
	b, err := os.ReadFile(resolvConf)
	if err != nil {
		return nil
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == "nameserver" {
			out = append(out, net.JoinHostPort(f[1], "53"))
		}
	}
	return out
}

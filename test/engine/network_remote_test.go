package engine_test

import (
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestNetRemoteClient reaches a published port from "another host": a network namespace of
// the test's own, joined to the host by a veth pair on a private /30, as a second machine on
// the host's LAN would be. Its packets enter through the prerouting hook and the forward
// path, not the host's output hook that 127.0.0.1 uses.
func TestNetRemoteClient(t *testing.T) {
	t.Parallel()
	e := newBusyboxEnv(t)
	ns := fmt.Sprintf("berthtest%d", subnetSeq.Add(1))
	hostIf, peerIf := ns[len(ns)-6:]+"h", ns[len(ns)-6:]+"p"
	n := subnetSeq.Add(1) % 256
	hostIP, peerIP := fmt.Sprintf("10.250.%d.1", n), fmt.Sprintf("10.250.%d.2", n)
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	run("ip", "netns", "add", ns)
	t.Cleanup(func() {
		exec.Command("ip", "link", "del", hostIf).Run()
		exec.Command("ip", "netns", "del", ns).Run()
	})
	run("ip", "link", "add", hostIf, "type", "veth", "peer", "name", peerIf)
	run("ip", "link", "set", peerIf, "netns", ns)
	run("ip", "addr", "add", hostIP+"/30", "dev", hostIf)
	run("ip", "link", "set", hostIf, "up")
	run("ip", "-n", ns, "addr", "add", peerIP+"/30", "dev", peerIf)
	run("ip", "-n", ns, "link", "set", peerIf, "up")
	run("ip", "-n", ns, "link", "set", "lo", "up")

	port := strconv.Itoa(anyFreePort4(t))
	e.must("run", "-d", "--name", "web", "-p", port+":80", "busybox", "httpd", "-f", "-p", "80", "-h", "/etc")
	want := e.id("web")[:12]
	var out []byte
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		// The busybox of the test image is a static binary: it runs in the namespace as is.
		cmd := exec.Command("ip", "netns", "exec", ns, bundleRootfs+"/bin/busybox", "wget", "-q", "-O-",
			"http://"+hostIP+":"+port+"/hostname")
		out, err = cmd.CombinedOutput()
		if err == nil {
			break
		}
	}
	if err != nil || strings.TrimSpace(string(out)) != want {
		t.Fatalf("GET from another host: %v: %q, want %q", err, out, want)
	}
}

// anyFreePort4 is a TCP port nothing listens on right now (on any address).
func anyFreePort4(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

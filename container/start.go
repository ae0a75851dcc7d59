package container

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/docker/go-units"
	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/container/monitor"
	"github.com/berth-dev/berth/container/spec"
	"github.com/berth-dev/berth/volume"
)

// Session is a container whose monitor has created it and waits for the go-ahead, so that the
// caller can attach before the first byte of output.
type Session struct {
	m          *Manager
	rec        *Record
	sync       *os.File
	rd         *bufio.Reader
	unlock     func()
	Pid        int
	MonitorPid int
}

func (m *Manager) bundle(id string) string { return filepath.Join(m.dir(id), "bundle") }
func (m *Manager) rootfs(id string) string { return filepath.Join(m.dir(id), "bundle", "rootfs") }

// Prepare brings a created or exited container up to "created in the runtime": rootfs
// mounted, spec written, monitor running. Call Session.Start to let it run.
func (m *Manager) Prepare(ctx context.Context, rec *Record) (sess *Session, err error) {
	unlock, err := m.lock(rec.ID)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			unlock()
		}
	}()
	for {
		st := m.Status(rec)
		switch st.Status {
		case "running", "paused", "restarting":
			return nil, fmt.Errorf("%w: %s", ErrRunning, rec.Name)
		}
		if !st.MonitorAlive {
			break
		}
		// The previous run's monitor is still cleaning up (its exit command needs this lock).
		unlock()
		m.waitMonitorGone(rec.ID, 30*time.Second)
		if unlock, err = m.lock(rec.ID); err != nil {
			unlock = func() {}
			return nil, err
		}
	}
	// From here on a failure is this start's: record it as docker does (the container stays
	// "created" with the failure's exit code and message).
	defer func() {
		if err != nil {
			(&Session{m: m, rec: rec}).fail(err)
		}
	}()
	if err := m.mountRootfs(ctx, rec.ID); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			m.unmountRootfs(rec.ID)
		}
	}()
	net, err := m.setupNetwork(ctx, rec)
	if err != nil {
		return nil, err
	}
	defer net.closeHeld() // the monitor has its own copies
	defer func() {
		if err != nil && net != nil {
			m.releaseNetwork(rec)
		}
	}()
	if err := m.writeEtcFiles(rec, net); err != nil {
		return nil, err
	}
	for _, mp := range rec.Mounts {
		if mp.Type == "volume" && !mp.NoCopy {
			if err := volume.CopyUp(ctx, m.rootfs(rec.ID), mp.Destination, mp.Source); err != nil {
				return nil, fmt.Errorf("volume %s: copy image content: %w", mp.Name, err)
			}
		}
	}
	sp, err := m.generateSpec(rec, net)
	if err != nil {
		return nil, err
	}
	if err := makeWorkdir(m.rootfs(rec.ID), sp.Process); err != nil {
		return nil, err
	}
	b, err := json.Marshal(sp)
	if err != nil {
		return nil, err
	}
	if err := writeBytesAtomic(filepath.Join(m.bundle(rec.ID), "config.json"), b, 0o600, false); err != nil {
		return nil, err
	}
	for _, f := range []string{"stopped", "cleaned", "pid"} {
		os.Remove(filepath.Join(m.dir(rec.ID), f))
	}
	mcfg := m.monitorConfig(rec)
	if net != nil {
		mcfg.HeldFds = len(net.held)
	}
	mc, err := json.Marshal(mcfg)
	if err != nil {
		return nil, err
	}
	if err := writeBytesAtomic(filepath.Join(m.dir(rec.ID), "monitor.json"), mc, 0o600, false); err != nil {
		return nil, err
	}
	var held []*os.File
	if net != nil {
		held = net.held
	}
	sess, err = m.spawnMonitor(rec, held)
	if err != nil {
		return nil, err
	}
	sess.unlock = unlock
	return sess, nil
}

func (m *Manager) generateSpec(rec *Record, net *netSetup) (*specs.Spec, error) {
	hc := rec.HostConfig
	var mounts []specs.Mount
	for _, mp := range rec.Mounts {
		switch mp.Type {
		case "bind", "volume":
			mt := mount.Mount{Type: mount.Type(mp.Type), Target: mp.Destination, ReadOnly: !mp.RW}
			if mp.Propagation != "" {
				mt.BindOptions = &mount.BindOptions{Propagation: mount.Propagation(mp.Propagation)}
			}
			mounts = append(mounts, spec.BindMount(mt, mp.Source))
		}
	}
	nsPaths := map[specs.LinuxNamespaceType]string{}
	for t, mode := range map[specs.LinuxNamespaceType]string{
		specs.PIDNamespace: string(hc.PidMode), specs.IPCNamespace: string(hc.IpcMode),
		specs.UTSNamespace: string(hc.UTSMode),
	} {
		if p, err := m.joinPath(mode, t); err != nil {
			return nil, err
		} else if p != "" {
			nsPaths[t] = p
		}
	}
	netns, err := m.joinPath(string(hc.NetworkMode), specs.NetworkNamespace)
	if err != nil {
		return nil, err
	}
	if net != nil {
		netns = net.netns
	}
	in := spec.Input{
		ID:             rec.ID,
		Rootfs:         m.rootfs(rec.ID),
		Config:         rec.Config,
		Host:           hc,
		Mounts:         mounts,
		HostnamePath:   filepath.Join(m.dir(rec.ID), "hostname"),
		HostsPath:      filepath.Join(m.dir(rec.ID), "hosts"),
		ResolvConfPath: filepath.Join(m.dir(rec.ID), "resolv.conf"),
		CgroupsPath:    "/berth/" + rec.ID,
		InitPath:       m.Bin.Init,
		NamespacePaths: nsPaths,
		NetNSPath:      netns,
	}
	return spec.Generate(in)
}

// joinPath resolves "container:NAME" to the namespace file of that container's process.
func (m *Manager) joinPath(mode string, t specs.LinuxNamespaceType) (string, error) {
	name, ok := strings.CutPrefix(mode, "container:")
	if !ok {
		return "", nil
	}
	other, err := m.Lookup(name)
	if err != nil {
		return "", err
	}
	st := m.Status(other)
	if !st.Running() {
		return "", fmt.Errorf("cannot join the %s namespace of container %s: %w", t, name, ErrNotRunning)
	}
	file := map[specs.LinuxNamespaceType]string{specs.PIDNamespace: "pid", specs.IPCNamespace: "ipc",
		specs.UTSNamespace: "uts", specs.NetworkNamespace: "net"}[t]
	return fmt.Sprintf("/proc/%d/ns/%s", st.Pid, file), nil
}

func (m *Manager) monitorConfig(rec *Record) *monitor.Config {
	hc, cfg := rec.HostConfig, rec.Config
	c := &monitor.Config{
		ID:          rec.ID,
		Runtime:     m.Bin.Runtime,
		RuntimeRoot: m.RuntimeRoot,
		Bundle:      m.bundle(rec.ID),
		Dir:         m.dir(rec.ID),
		Terminal:    cfg.Tty,
		OpenStdin:   cfg.OpenStdin,
		StdinOnce:   cfg.StdinOnce,
		Restart:     monitor.Restart{Name: string(hc.RestartPolicy.Name), MaxRetries: hc.RestartPolicy.MaximumRetryCount},
		OOMFiles:    oomFiles("/berth/" + rec.ID),
		ExitCommand: []string{m.Bin.Self, "--root", m.Root, "container", "cleanup", rec.ID},
		EventsLog:   m.EventsLog(),
		Name:        rec.Name,
		Image:       cfg.Image,
	}
	if hc.LogConfig.Type != "none" {
		c.LogPath = m.LogPath(rec.ID)
		if v := hc.LogConfig.Config["max-size"]; v != "" {
			c.LogMaxSize, _ = parseSize(v)
		}
		if v := hc.LogConfig.Config["max-file"]; v != "" {
			c.LogMaxFile, _ = strconv.Atoi(v)
		}
	}
	if h := cfg.Healthcheck; h != nil && len(h.Test) > 0 && h.Test[0] != "NONE" {
		hh := &monitor.Health{Interval: h.Interval, Timeout: h.Timeout, StartPeriod: h.StartPeriod, Retries: h.Retries}
		switch h.Test[0] {
		case "CMD":
			hh.Test = h.Test[1:]
		case "CMD-SHELL":
			hh.Test = []string{"/bin/sh", "-c", strings.Join(h.Test[1:], " ")}
		default:
			hh.Test = h.Test
		}
		if hh.Interval == 0 {
			hh.Interval = 30 * time.Second
		}
		if hh.Timeout == 0 {
			hh.Timeout = 30 * time.Second
		}
		if hh.Retries == 0 {
			hh.Retries = 3
		}
		if len(hh.Test) > 0 {
			c.Health = hh
		}
	}
	return c
}

// LogPath is the container's json-file log.
func (m *Manager) LogPath(id string) string { return filepath.Join(m.dir(id), id+"-json.log") }

// oomFiles names the cgroup file whose oom_kill counter tells an OOM kill: v2 memory.events,
// v1 memory.oom_control.
func oomFiles(cgPath string) []string {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return []string{filepath.Join("/sys/fs/cgroup", cgPath, "memory.events")}
	}
	return []string{filepath.Join("/sys/fs/cgroup/memory", cgPath, "memory.oom_control")}
}

func (m *Manager) spawnMonitor(rec *Record, held []*os.File) (*Session, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	ours, theirs := os.NewFile(uintptr(fds[0]), "sync"), os.NewFile(uintptr(fds[1]), "sync")
	defer theirs.Close()
	cfgPath := filepath.Join(m.dir(rec.ID), "monitor.json")
	var pid int
	if os.Getenv(MonitorHubEnv) != "0" && len(held) <= maxHubHeld {
		pid, err = m.handToHub(cfgPath, theirs, held)
	} else {
		pid, err = m.startMonitorProcess(theirs, held, cfgPath)
	}
	if err != nil {
		ours.Close()
		return nil, err
	}
	s := &Session{m: m, rec: rec, sync: ours, rd: bufio.NewReader(ours), MonitorPid: pid}
	msg, err := s.read()
	if err != nil {
		ours.Close()
		return nil, err
	}
	s.Pid = msg.Pid
	return s, nil
}

// MonitorHubEnv, set to 0, gives every container a monitor process of its own instead of a
// supervisor in the data root's hub (container/monitor/hub.go).
const MonitorHubEnv = "BERTH_MONITOR_HUB"

// maxHubHeld is how many held descriptors (published ports) one hand-over to the hub carries.
const maxHubHeld = 250

// monitorEnv: GOMAXPROCS=1 from the start keeps a monitor small (container/monitor/mem.go).
var monitorEnv = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "GOMAXPROCS=1"}

// startMonitorProcess starts `berth-monitor monitor.json` with the sync socket as fd 3 and
// the held descriptors after it.
func (m *Manager) startMonitorProcess(sync *os.File, held []*os.File, cfgPath string) (int, error) {
	cmd := exec.Command(m.Bin.Monitor, cfgPath)
	cmd.ExtraFiles = append([]*os.File{sync}, held...)
	cmd.Env = monitorEnv
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start the container monitor %s: %w", m.Bin.Monitor, err)
	}
	go cmd.Wait()
	return cmd.Process.Pid, nil
}

// handToHub gives the container to the data root's monitor hub, starting the hub if none
// runs (whoever holds <root>/monitor.lock is, or starts, the hub).
func (m *Manager) handToHub(cfgPath string, sync *os.File, held []*os.File) (int, error) {
	sock, lockPath := filepath.Join(m.Root, "monitor.sock"), filepath.Join(m.Root, "monitor.lock")
	rights := []int{int(sync.Fd())}
	for _, f := range held {
		rights = append(rights, int(f.Fd()))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if pid, taken, err := sendToHub(sock, cfgPath, rights); err != nil {
			return 0, err
		} else if taken {
			return pid, nil
		}
		lf, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return 0, err
		}
		if unix.Flock(int(lf.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
			// No hub: start one with this container; it inherits the locked file (fd 3)
			// and holds it for life, the sync socket (fd 4) and the held ports (5...).
			cmd := exec.Command(m.Bin.Monitor, "--hub", sock)
			cmd.ExtraFiles = append([]*os.File{lf, sync}, held...)
			cmd.Env = append(slices.Clone(monitorEnv), monitor.HubFirstEnv+"="+cfgPath, monitor.HubHeldEnv+"="+strconv.Itoa(len(held)))
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
			err = cmd.Start()
			lf.Close()
			if err != nil {
				return 0, fmt.Errorf("start the container monitor %s: %w", m.Bin.Monitor, err)
			}
			go cmd.Wait()
			return cmd.Process.Pid, nil
		}
		lf.Close()
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%w: the container monitor hub (%s) does not answer", ErrStart, sock)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// sendToHub sends one request and reports whether the hub took it (and its pid). Not taken
// (no hub, or one that is exiting and closed the connection unanswered) may be retried; an
// error may not: the hub may have started a supervisor.
func sendToHub(sock, cfgPath string, rights []int) (pid int, taken bool, err error) {
	c, err := dialUnix(sock)
	if err != nil {
		return 0, false, nil
	}
	defer c.Close()
	uc := c.(*net.UnixConn)
	if _, _, err := uc.WriteMsgUnix([]byte(cfgPath), unix.UnixRights(rights...), nil); err != nil {
		return 0, false, nil
	}
	uc.SetReadDeadline(time.Now().Add(time.Minute))
	line, err := bufio.NewReader(uc).ReadString('\n')
	if errors.Is(err, io.EOF) && line == "" {
		return 0, false, nil
	}
	if err != nil || !strings.HasPrefix(line, "ok ") {
		return 0, false, fmt.Errorf("%w: the container monitor hub (%s): %q %v", ErrStart, sock, line, err)
	}
	pid, _ = strconv.Atoi(strings.TrimSpace(line[3:]))
	return pid, true, nil
}

func (s *Session) read() (monitor.SyncMsg, error) {
	var msg monitor.SyncMsg
	line, err := s.rd.ReadBytes('\n')
	if err != nil {
		return msg, fmt.Errorf("%w: the container monitor exited unexpectedly (see %s)", ErrStart,
			filepath.Join(s.m.dir(s.rec.ID), "runtime.log"))
	}
	if err := json.Unmarshal(line, &msg); err != nil {
		return msg, fmt.Errorf("container monitor: bad message %q", line)
	}
	if msg.Error != "" {
		return msg, commandError(msg.Error)
	}
	return msg, nil
}

// CommandError is a start failure with docker's exit code (127 not found, 126 not
// executable, 125 otherwise).
type CommandError struct {
	Msg  string
	Code int
}

func (e *CommandError) Error() string { return e.Msg }
func (e *CommandError) Unwrap() error { return ErrCommand }

func commandError(msg string) error {
	code := 125
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		code = 127
	case strings.Contains(msg, "permission denied"), strings.Contains(msg, "is a directory"):
		code = 126
	}
	return &CommandError{Msg: msg, Code: code}
}

// Start lets the created container run and releases the container lock.
func (s *Session) Start() error {
	defer s.finish()
	if _, err := s.sync.Write([]byte("{\"start\":true}\n")); err != nil {
		return fmt.Errorf("container monitor: %w", err)
	}
	if _, err := s.read(); err != nil {
		s.fail(err)
		return err
	}
	return nil
}

// Abort deletes the created container (the monitor does it when the socket closes).
func (s *Session) Abort() {
	s.finish()
	s.m.waitMonitorGone(s.rec.ID, 10*time.Second)
	s.m.unmountRootfs(s.rec.ID)
}

func (s *Session) finish() {
	if s.sync != nil {
		s.sync.Close()
		s.sync = nil
	}
	if s.unlock != nil {
		s.unlock()
		s.unlock = nil
	}
}

// fail records a failed start as docker does: the container stays "created" with the exit
// code of the failure.
func (s *Session) fail(err error) {
	st, _ := s.m.readState(s.rec.ID)
	st.Status = "created"
	st.Error = err.Error()
	var ce *CommandError
	if errors.As(err, &ce) {
		st.ExitCode = ce.Code
	}
	s.m.writeState(s.rec.ID, st)
}

func (m *Manager) mountRootfs(ctx context.Context, id string) error {
	target := m.rootfs(id)
	if mounted, _ := mountinfo.Mounted(target); mounted {
		return nil
	}
	return m.Snapshots.Mount(ctx, id, target)
}

func (m *Manager) unmountRootfs(id string) error {
	target := m.rootfs(id)
	for i := 0; i < 8; i++ {
		mounted, err := mountinfo.Mounted(target)
		if err != nil || !mounted {
			return err
		}
		if err := unix.Unmount(target, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			if errors.Is(err, unix.EBUSY) {
				unix.Unmount(target, unix.MNT_DETACH)
				continue
			}
			return fmt.Errorf("unmount %s: %w", target, err)
		}
	}
	return nil
}

// writeEtcFiles writes the per-container /etc/hostname, /etc/hosts and /etc/resolv.conf.
// On a bridge network /etc/hosts also names the container's own address, as docker's; on a
// user-defined network the nameserver is the network's DNS server (its gateway address).
func (m *Manager) writeEtcFiles(rec *Record, net *netSetup) error {
	dir := m.dir(rec.ID)
	host := rec.HostConfig.NetworkMode == "host"
	hostname := rec.Config.Hostname
	if err := os.WriteFile(filepath.Join(dir, "hostname"), []byte(hostname+"\n"), 0o644); err != nil {
		return err
	}
	var hosts []byte
	if host {
		hosts, _ = os.ReadFile("/etc/hosts")
	} else {
		hosts = []byte("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n" +
			"ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
		if net != nil && len(net.endpoints) > 0 {
			hosts = append(hosts, []byte(net.endpoints[0].IP.String()+"\t"+hostname+"\n")...)
		}
	}
	for _, h := range rec.HostConfig.ExtraHosts {
		if name, ip, ok := strings.Cut(h, ":"); ok {
			hosts = append(hosts, []byte(ip+"\t"+name+"\n")...)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "hosts"), hosts, 0o644); err != nil {
		return err
	}
	var dnsServer string
	if net != nil {
		for _, ep := range net.endpoints {
			if len(ep.DNSNames) > 0 {
				dnsServer = ep.Gateway.String()
				break
			}
		}
	}
	return os.WriteFile(filepath.Join(dir, "resolv.conf"), resolvConf(host, rec.HostConfig, dnsServer), 0o644)
}

// resolvConf is the host's resolver configuration; outside the host's network namespace its
// loopback nameservers cannot be reached, so they are dropped (docker's rule, with its
// fallback to public resolvers replaced by nothing: no traffic leaves unless configured).
// --dns, --dns-search and --dns-option replace the host's lines of that kind, as docker.
//
// embedded, when set, is the network's DNS server: it comes first, and "ndots:0" makes a
// container name be asked as it is before the search domains (docker's embedded DNS does
// the same); --dns servers follow it.
func resolvConf(host bool, hc *containertypes.HostConfig, embedded string) []byte {
	b, _ := os.ReadFile("/etc/resolv.conf")
	if host && len(hc.DNS) == 0 && len(hc.DNSSearch) == 0 && len(hc.DNSOptions) == 0 {
		return b
	}
	var out, options []string
	if embedded != "" {
		out = append(out, "nameserver "+embedded)
	}
	for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		f := strings.Fields(l)
		if len(f) >= 1 {
			switch {
			case f[0] == "nameserver" && (len(hc.DNS) > 0 || embedded != ""),
				(f[0] == "search" || f[0] == "domain") && len(hc.DNSSearch) > 0,
				f[0] == "options" && len(hc.DNSOptions) > 0:
				continue
			case f[0] == "options":
				options = append(options, f[1:]...)
				continue
			}
		}
		if len(f) >= 2 && f[0] == "nameserver" && !host && (strings.HasPrefix(f[1], "127.") || f[1] == "::1") {
			continue
		}
		out = append(out, l)
	}
	for _, a := range hc.DNS {
		out = append(out, "nameserver "+a.String())
	}
	if len(hc.DNSSearch) > 0 {
		out = append(out, "search "+strings.Join(hc.DNSSearch, " "))
	}
	options = append(options, hc.DNSOptions...)
	if embedded != "" && !slices.ContainsFunc(options, func(o string) bool { return strings.HasPrefix(o, "ndots:") }) {
		options = append(options, "ndots:0")
	}
	if len(options) > 0 {
		out = append(out, "options "+strings.Join(options, " "))
	}
	return []byte(strings.Join(out, "\n") + "\n")
}

func parseSize(s string) (int64, error) { return units.RAMInBytes(s) }

// makeWorkdir creates a missing working directory inside the rootfs, owned by the process's
// user, as docker does at start. The path is resolved in-root: an image cannot point it at
// the host through a symlink.
func makeWorkdir(rootfs string, p *specs.Process) error {
	if p == nil || p.Cwd == "" || p.Cwd == "/" {
		return nil
	}
	root, err := os.OpenFile(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer root.Close()
	if f, err := pathrs.OpenatInRoot(root, p.Cwd); err == nil {
		f.Close()
		return nil
	}
	d, err := pathrs.MkdirAllHandle(root, p.Cwd, 0o755)
	if err != nil {
		return fmt.Errorf("create the working directory %s: %w", p.Cwd, err)
	}
	defer d.Close()
	// Only what MkdirAll created would need the user's ownership; chown the leaf (docker
	// chowns the directories it creates).
	return unix.Fchownat(int(d.Fd()), "", int(p.User.UID), int(p.User.GID), unix.AT_EMPTY_PATH)
}

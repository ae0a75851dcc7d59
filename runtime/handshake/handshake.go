// Package handshake carries the typed messages between the runtime (parent) and the container's
// init or exec process (child) over a unix socketpair, once runtime/nsenter's byte protocol is
// done and the child runs Go. Messages are JSON objects, one per line.
//
//	init (create):                          exec:
//	parent -> child  config                 parent -> child  config
//	child  -> parent hooks   (mounts done,  child  -> parent ready (about to execve)
//	                          before pivot) child  -> parent error (instead, on failure)
//	parent -> child  resume  (prestart and  then the socket closes on execve (CLOEXEC):
//	                          createRuntime EOF after ready means the program runs.
//	                          hooks ran)
//	child  -> parent ready   (waiting on exec.fifo)
//	child  -> parent error   (instead of any of the above, on failure)
//
// Descriptors the child needs (sync socket, exec fifo, console socket, preserved fds) are
// inherited at fixed numbers named in Config, never sent later, so nothing but the listed
// descriptors ever crosses into the container.
package handshake

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Kind names a message.
type Kind string

// The message kinds, in protocol order.
const (
	KindConfig Kind = "config"
	KindHooks  Kind = "hooks"
	KindResume Kind = "resume"
	KindReady  Kind = "ready"
	KindError  Kind = "error"
)

// Config is everything the child needs, sent once.
type Config struct {
	// Exec is true for `exec` (join a running container), false for the container's init.
	Exec bool        `json:"exec,omitempty"`
	Spec *specs.Spec `json:"spec,omitempty"` // init: the whole config
	// Process is exec's process; init runs Spec.Process (sent once: the child's cold JSON
	// decode is on the container start path).
	Process *specs.Process `json:"process,omitempty"`
	Rootfs  string         `json:"rootfs,omitempty"`
	NoPivot bool           `json:"no_pivot,omitempty"`
	// NoNewKeyring keeps the caller's session keyring instead of joining a fresh one.
	NoNewKeyring bool `json:"no_new_keyring,omitempty"`
	// FifoFd is an O_PATH descriptor of exec.fifo (init only; -1 otherwise).
	FifoFd int `json:"fifo_fd"`
	// ConsoleFd is a connected console socket for terminal processes (-1 otherwise).
	ConsoleFd int `json:"console_fd"`
	// PreserveFds counts descriptors from 3 up that the program inherits.
	PreserveFds int `json:"preserve_fds,omitempty"`
	// InUserNS is true when the container has its own user namespace.
	InUserNS bool `json:"in_userns,omitempty"`
	// NewCgroupNS asks init to unshare the cgroup namespace: the parent has put it in its
	// cgroup by the time this config arrives.
	NewCgroupNS bool `json:"new_cgroupns,omitempty"`
	// Seccomp is the compiled filter (compiled, and cached, by the runtime so a bad profile
	// fails before any process exists), loaded with SeccompFlags.
	Seccomp      []unix.SockFilter `json:"seccomp,omitempty"`
	SeccompFlags uint              `json:"seccomp_flags,omitempty"`
	// State is the OCI state passed on stdin to createContainer/startContainer hooks.
	State *specs.State `json:"state,omitempty"`
}

// Message is one line on the socket.
type Message struct {
	Kind   Kind    `json:"kind"`
	Error  string  `json:"error,omitempty"`
	Config *Config `json:"config,omitempty"`
}

// Conn is one end of the socket.
type Conn struct {
	f   *os.File
	r   *bufio.Reader
	enc *json.Encoder
}

// New wraps the socket f.
func New(f *os.File) *Conn {
	return &Conn{f: f, r: bufio.NewReader(f), enc: json.NewEncoder(f)}
}

// File returns the underlying socket.
func (c *Conn) File() *os.File { return c.f }

// Reader returns the buffered reader, for the raw byte protocol that precedes the messages.
func (c *Conn) Reader() *bufio.Reader { return c.r }

// Send writes one message.
func (c *Conn) Send(m Message) error { return c.enc.Encode(m) }

// Recv reads one message; io.EOF means the other side closed (for exec: the program started).
func (c *Conn) Recv() (Message, error) {
	var m Message
	line, err := c.r.ReadBytes('\n')
	if err != nil {
		if errors.Is(err, io.EOF) && len(line) == 0 {
			return m, io.EOF
		}
		return m, err
	}
	if err := json.Unmarshal(line, &m); err != nil {
		return m, fmt.Errorf("handshake: bad message: %w", err)
	}
	return m, nil
}

// Expect reads one message and checks its kind; an error message from the child becomes an error.
func (c *Conn) Expect(k Kind) (Message, error) {
	m, err := c.Recv()
	if err != nil {
		return m, err
	}
	if m.Kind == KindError {
		return m, errors.New(m.Error)
	}
	if m.Kind != k {
		return m, fmt.Errorf("handshake: got %q, want %q", m.Kind, k)
	}
	return m, nil
}

// Close closes the socket.
func (c *Conn) Close() error { return c.f.Close() }

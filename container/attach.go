package container

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/container/monitor"
)

// Attachment is a connection to a container's monitor (see package monitor for the protocol).
type Attachment struct {
	conn net.Conn
	r    *bufio.Reader
	wmu  sync.Mutex
}

// Attach connects to the container's monitor.
func (m *Manager) Attach(id string, hello monitor.Hello) (*Attachment, error) {
	conn, err := dialUnix(filepath.Join(m.dir(id), "attach.sock"))
	if err != nil {
		return nil, fmt.Errorf("%w: cannot attach: %v", ErrNotRunning, err)
	}
	b, _ := json.Marshal(hello)
	if _, err := conn.Write(append(b, '\n')); err != nil {
		conn.Close()
		return nil, err
	}
	a := &Attachment{conn: conn, r: bufio.NewReaderSize(conn, 64<<10)}
	if hello.Stdin || hello.Stdout || hello.Stderr {
		// Wait until the monitor has registered us (FrameAttached), or says the container has
		// already exited (FrameExit, left unread for Stream).
		conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		h, err := a.r.Peek(5)
		conn.SetReadDeadline(time.Time{})
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("attach: the container's monitor did not answer: %w", err)
		}
		if h[0] == monitor.FrameAttached {
			a.r.Discard(5 + int(binary.BigEndian.Uint32(h[1:])))
		}
	}
	return a, nil
}

// Close ends the attachment.
func (a *Attachment) Close() error { return a.conn.Close() }

func (a *Attachment) send(t byte, p []byte) error {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	var h [5]byte
	h[0] = t
	binary.BigEndian.PutUint32(h[1:], uint32(len(p)))
	if _, err := a.conn.Write(h[:]); err != nil {
		return err
	}
	_, err := a.conn.Write(p)
	return err
}

// Resize sends the terminal size.
func (a *Attachment) Resize(rows, cols uint16) error {
	b, _ := json.Marshal(monitor.Resize{Rows: rows, Cols: cols})
	return a.send(monitor.FrameResize, b)
}

// SendStdin copies r to the container's stdin, then closes it (FrameStdinClose).
func (a *Attachment) SendStdin(r io.Reader) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if werr := a.send(monitor.FrameStdin, buf[:n]); werr != nil {
				return werr
			}
		}
		if err != nil {
			a.send(monitor.FrameStdinClose, nil)
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

// Stream copies the container's output to stdout and stderr until the container exits and
// returns its exit message. A connection closed without one is an error.
func (a *Attachment) Stream(stdout, stderr io.Writer) (monitor.ExitMsg, error) {
	r := a.r
	var h [5]byte
	buf := make([]byte, 64<<10)
	for {
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return monitor.ExitMsg{}, errors.New("lost the connection to the container's monitor")
		}
		n := int(binary.BigEndian.Uint32(h[1:]))
		if n > len(buf) {
			buf = make([]byte, n)
		}
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			return monitor.ExitMsg{}, errors.New("lost the connection to the container's monitor")
		}
		switch h[0] {
		case monitor.FrameStdout:
			if stdout != nil {
				stdout.Write(buf[:n])
			}
		case monitor.FrameStderr:
			if stderr != nil {
				stderr.Write(buf[:n])
			}
		case monitor.FrameExit:
			var e monitor.ExitMsg
			err := json.Unmarshal(buf[:n], &e)
			return e, err
		}
	}
}

// dialUnix connects to a unix socket whose path may exceed sun_path's 108 bytes (a data root
// deep in the file system): the directory is opened and the socket reached through
// /proc/self/fd/N/NAME.
func dialUnix(path string) (net.Conn, error) {
	if len(path) < 100 {
		return net.Dial("unix", path)
	}
	dir, err := os.OpenFile(filepath.Dir(path), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	return net.Dial("unix", fmt.Sprintf("/proc/self/fd/%d/%s", dir.Fd(), filepath.Base(path)))
}

// Package logfile reads and writes docker's json-file log format: one JSON object per line,
//
//	{"log":"hi\n","stream":"stdout","time":"2026-11-24T04:15:55.123456789Z"}
//
// with rotation as docker does it (path, path.1, path.2, ...; path.N is the oldest). A line
// longer than 16 KiB is split into entries of 16 KiB without the trailing newline (docker's
// partial messages), and so is output still without a newline when Flush is called.
//
// It uses the standard library only and does no work at package initialisation: the
// per-container monitor links it and must stay lean.
package logfile

import (
	"bytes"
	"os"
	"strconv"
	"sync"
	"time"
)

// MaxLine is the longest "log" value of one entry: docker's 16 KiB.
const MaxLine = 16 * 1024

// Writer appends entries to a json-file log, rotating it. It is safe for concurrent use.
type Writer struct {
	mu      sync.Mutex
	path    string
	maxSize int64
	maxFile int
	f       *os.File
	size    int64
	streams []*partial
	out     []byte // entries waiting to be written with one write(2)
	line    []byte // scratch: a partial line joined with the rest of it
}

// partial is the incomplete last line of one stream.
type partial struct {
	name string
	buf  []byte
	t    time.Time // when its first byte arrived
}

// Open opens (creating it if needed) the log at path for appending. maxSize is the size in
// bytes at which the file is rotated (0: never); maxFile is the number of files kept,
// counting the live one (docker's max-file; <= 1 means the single file is truncated).
func Open(path string, maxSize int64, maxFile int) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Writer{path: path, maxSize: maxSize, maxFile: maxFile, f: f, size: st.Size()}, nil
}

// Write logs p, output of stream ("stdout" or "stderr") read at t: one entry per complete
// line; the rest waits for its newline (at most MaxLine bytes, then it is written as a
// partial entry).
func (w *Writer) Write(stream string, p []byte, t time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return os.ErrClosed
	}
	ps := w.stream(stream)
	for len(p) > 0 {
		room := MaxLine - len(ps.buf)
		n := min(len(p), room)
		if i := bytes.IndexByte(p[:n], '\n'); i >= 0 {
			w.entry(ps, p[:i+1], t)
			p = p[i+1:]
			continue
		}
		if len(p) < room {
			if len(ps.buf) == 0 {
				ps.t = t
			}
			ps.buf = append(ps.buf, p...)
			break
		}
		w.entry(ps, p[:room], t) // a full 16 KiB without a newline: a partial entry
		p = p[room:]
	}
	return w.flushOut()
}

// Flush writes the incomplete lines as partial entries (at the container's exit).
func (w *Writer) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return os.ErrClosed
	}
	for _, ps := range w.streams {
		if len(ps.buf) > 0 {
			w.entry(ps, nil, ps.t)
		}
	}
	return w.flushOut()
}

// Close flushes the incomplete lines and closes the file.
func (w *Writer) Close() error {
	err := w.Flush()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f != nil {
		if cerr := w.f.Close(); err == nil {
			err = cerr
		}
		w.f = nil
	}
	return err
}

func (w *Writer) stream(name string) *partial {
	for _, ps := range w.streams {
		if ps.name == name {
			return ps
		}
	}
	ps := &partial{name: name}
	w.streams = append(w.streams, ps)
	return ps
}

// entry queues the entry for ps's pending bytes followed by p; it rotates first when the
// entry would take the live file past maxSize.
func (w *Writer) entry(ps *partial, p []byte, t time.Time) {
	line := p
	if len(ps.buf) > 0 {
		w.line = append(append(w.line[:0], ps.buf...), p...)
		line = w.line
		t = ps.t
		ps.buf = ps.buf[:0]
	}
	start := len(w.out)
	w.out = appendEntry(w.out, line, ps.name, t)
	if w.maxSize > 0 && w.size+int64(start) > 0 && w.size+int64(len(w.out)) > w.maxSize {
		// Write what came before this entry to the old file, then rotate.
		ent := append([]byte(nil), w.out[start:]...)
		w.out = w.out[:start]
		w.flushOut()
		w.rotate()
		w.out = append(w.out, ent...)
	}
	if cap(w.line) > 4*MaxLine {
		w.line = nil
	}
}

func (w *Writer) flushOut() error {
	if len(w.out) == 0 {
		return nil
	}
	n, err := w.f.Write(w.out)
	w.size += int64(n)
	w.out = w.out[:0]
	if cap(w.out) > 64*1024 {
		w.out = nil // a burst does not pin a big buffer in a long-lived monitor
	}
	return err
}

// rotate renames path.(N-1) -> path.N, ..., path -> path.1 keeping maxFile files in all,
// and continues in a new path; with maxFile <= 1 the file is truncated. When it fails, the
// writer keeps appending to the file it has.
func (w *Writer) rotate() {
	if w.maxFile <= 1 {
		if w.f.Truncate(0) == nil {
			w.size = 0
		}
		return
	}
	os.Remove(w.path + "." + strconv.Itoa(w.maxFile-1))
	for n := w.maxFile - 2; n >= 1; n-- {
		os.Rename(w.path+"."+strconv.Itoa(n), w.path+"."+strconv.Itoa(n+1))
	}
	if err := os.Rename(w.path, w.path+".1"); err != nil && !os.IsNotExist(err) {
		return
	}
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return // the renamed file is still open: keep writing there
	}
	w.f.Close()
	w.f, w.size = f, 0
}

package logfile

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"strconv"
	"time"
)

// Entry is one log entry. Line is the "log" value: it ends with '\n' unless the entry is
// partial (a line longer than 16 KiB, or output without a final newline).
type Entry struct {
	Stream string
	Line   []byte
	Time   time.Time
}

// ReadOpts selects what Read returns.
type ReadOpts struct {
	Tail         int       // the last Tail entries only (counted over all files); < 0: all
	Since, Until time.Time // zero: unbounded; entries before Since are skipped, Read ends at the first after Until
	Follow       bool      // keep reading what is appended (across rotations)
	// Done, when set, ends a Follow once it reports true and the log has been read to its
	// end (e.g. "the container has exited").
	Done func() bool
}

// pollInterval is how often a Follow looks for new lines.
const pollInterval = 100 * time.Millisecond

// Read calls fn for the entries of the log at path, oldest first: the rotated files
// (path.N ... path.1) then path. A Follow returns when ctx is done (with ctx's error) or when
// Done reports true after the log was drained. An error from fn ends Read with it. Lines
// that are not valid entries are skipped.
func Read(ctx context.Context, path string, o ReadOpts, fn func(Entry) error) error {
	files, err := openAll(path)
	if err != nil {
		return err
	}
	defer func() {
		for _, f := range files {
			if f != nil {
				f.Close()
			}
		}
	}()
	first, offset := 0, int64(0)
	if o.Tail >= 0 {
		if first, offset, err = tailStart(files, o.Tail); err != nil {
			return err
		}
	}
	r := &reader{o: o, fn: fn, buf: bufio.NewReaderSize(nil, 64*1024)}
	last := len(files) - 1
	for i := first; i < len(files); i++ {
		f := files[i]
		if f == nil {
			continue
		}
		if i == first && offset > 0 {
			if _, err := f.Seek(offset, io.SeekStart); err != nil {
				return err
			}
		}
		r.reset(f)
		if err := r.drain(ctx); err != nil {
			return r.result(err)
		}
		if i != last || !o.Follow {
			f.Close()
			files[i] = nil
		}
	}
	if !o.Follow {
		return nil
	}
	live := files[last]
	files[last] = nil
	err = r.follow(ctx, path, live)
	return r.result(err)
}

// errStop ends a Read without an error (Until passed).
var errStop = errors.New("stop")

type reader struct {
	o     ReadOpts
	fn    func(Entry) error
	buf   *bufio.Reader
	f     *os.File
	carry []byte // an incomplete last line (a Follow waits for its newline)
	off   int64  // bytes of f consumed through complete lines
}

func (r *reader) result(err error) error {
	if err == errStop {
		return nil
	}
	return err
}

func (r *reader) reset(f *os.File) {
	r.f = f
	r.buf.Reset(f)
	r.carry = r.carry[:0]
	r.off, _ = f.Seek(0, io.SeekCurrent)
}

// drain reads complete lines of r.f up to its end.
func (r *reader) drain(ctx context.Context) error {
	n := 0
	for {
		line, err := r.buf.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			r.carry = append(r.carry, line...)
			continue
		}
		if err != nil {
			if len(line) > 0 {
				r.carry = append(r.carry, line...)
			}
			if err == io.EOF {
				return nil
			}
			return err
		}
		if len(r.carry) > 0 {
			r.carry = append(r.carry, line...)
			line = r.carry
		}
		r.off += int64(len(line))
		if err := r.emit(line[:len(line)-1]); err != nil {
			return err
		}
		r.carry = r.carry[:0]
		if n++; n%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

func (r *reader) emit(line []byte) error {
	var e Entry
	if parseEntry(line, &e) != nil {
		return nil
	}
	if !r.o.Since.IsZero() && e.Time.Before(r.o.Since) {
		return nil
	}
	if !r.o.Until.IsZero() && e.Time.After(r.o.Until) {
		return errStop
	}
	return r.fn(e)
}

// follow keeps reading the live file f of path (nil: not there yet), which r has read up
// to its end, moving to the new file when the log is rotated (path names another file) and
// rewinding when it is truncated.
func (r *reader) follow(ctx context.Context, path string, f *os.File) (err error) {
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		done := r.o.Done != nil && r.o.Done()
		if f == nil {
			if f, err = os.Open(path); err == nil {
				r.reset(f)
			} else if !os.IsNotExist(err) {
				return err
			}
		}
		if f != nil {
			if err := r.drain(ctx); err != nil {
				return err
			}
			next, truncated, err := rotated(path, f, r.off)
			if err != nil {
				return err
			}
			if truncated {
				f.Seek(0, io.SeekStart)
				r.reset(f)
				continue
			}
			if next != nil {
				// Rotated (perhaps more than once): what was appended to f before the rename
				// is read first, then the newer files, oldest first; the last is the live one.
				err := r.drain(ctx)
				for i, n := range next {
					if err == nil && i < len(next)-1 {
						r.reset(n)
						err = r.drain(ctx)
					}
					if err != nil || i < len(next)-1 {
						n.Close()
					}
				}
				if err != nil {
					return err
				}
				f.Close()
				f = next[len(next)-1]
				r.reset(f)
				continue
			}
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// rotated reports whether path now names another file than f, and then opens the files
// newer than f, oldest first, ending with path; or whether f was truncated below off.
func rotated(path string, f *os.File, off int64) (next []*os.File, truncated bool, err error) {
	cur, err := f.Stat()
	if err != nil {
		return nil, false, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, false, nil // between the rename and the new file: look again later
	}
	if os.SameFile(st, cur) {
		return nil, cur.Size() < off, nil
	}
	live, err := os.Open(path)
	if err != nil {
		return nil, false, nil
	}
	// f is now path.k: path.(k-1) ... path.1 came after it. When f is gone (rotated out),
	// every rotated file is newer.
	var newer []*os.File
	for n := 1; ; n++ {
		name := path + "." + strconv.Itoa(n)
		st, err := os.Stat(name)
		if err != nil || os.SameFile(st, cur) {
			break
		}
		g, err := os.Open(name)
		if err != nil {
			break
		}
		newer = append(newer, g)
	}
	for i, j := 0, len(newer)-1; i < j; i, j = i+1, j-1 {
		newer[i], newer[j] = newer[j], newer[i]
	}
	return append(newer, live), false, nil
}

// openAll opens path's rotated files oldest first, then path; a missing path is nil.
func openAll(path string) ([]*os.File, error) {
	var files []*os.File
	live, err := os.Open(path)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	for n := 1; ; n++ {
		f, err := os.Open(path + "." + strconv.Itoa(n))
		if err != nil {
			break
		}
		files = append(files, f)
	}
	for i, j := 0, len(files)-1; i < j; i, j = i+1, j-1 {
		files[i], files[j] = files[j], files[i]
	}
	return append(files, live), nil
}

// tailStart finds where the last n entries begin: the index of the file and the offset in
// it, reading backwards from the end.
func tailStart(files []*os.File, n int) (int, int64, error) {
	buf := make([]byte, 32*1024)
	for i := len(files) - 1; i >= 0; i-- {
		f := files[i]
		if f == nil {
			continue
		}
		st, err := f.Stat()
		if err != nil {
			return 0, 0, err
		}
		off, found, seen, err := lastLines(f, st.Size(), n, buf)
		if err != nil {
			return 0, 0, err
		}
		if found {
			return i, off, nil
		}
		n -= seen
	}
	return 0, 0, nil
}

// lastLines finds the offset at which the last n complete lines of f (size bytes) begin.
// When f has fewer, found is false and seen is how many it has.
func lastLines(f *os.File, size int64, n int, buf []byte) (off int64, found bool, seen int, err error) {
	if n == 0 {
		return size, true, 0, nil
	}
	// Newlines counted backwards; the one ending the last complete line is the first (bytes
	// after it are an entry being written, no line yet). The n lines begin after the
	// (n+1)-th newline from the end.
	count := 0
	pos := size
	for pos > 0 {
		chunk := int64(len(buf))
		if pos < chunk {
			chunk = pos
		}
		pos -= chunk
		b := buf[:chunk]
		if _, err := f.ReadAt(b, pos); err != nil && err != io.EOF {
			return 0, false, 0, err
		}
		for j := len(b) - 1; j >= 0; j-- {
			if b[j] != '\n' {
				continue
			}
			count++
			if count == n+1 {
				return pos + int64(j) + 1, true, n, nil
			}
		}
	}
	if count == n {
		return 0, true, n, nil
	}
	return 0, false, count, nil
}

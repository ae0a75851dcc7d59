package logfile

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/container/jsonlite"
)

var t0 = time.Date(2026, 11, 24, 4, 15, 55, 123456789, time.UTC)

type rawEntry struct {
	Log    string `json:"log"`
	Stream string `json:"stream"`
	Time   string `json:"time"`
}

// rawLines decodes every line of the file with encoding/json.
func rawLines(t *testing.T, path string) []rawEntry {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []rawEntry
	for _, l := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var e rawEntry
		if err := json.Unmarshal(l, &e); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		out = append(out, e)
	}
	return out
}

func readAll(t *testing.T, path string, o ReadOpts) []Entry {
	t.Helper()
	var out []Entry
	err := Read(context.Background(), path, o, func(e Entry) error {
		out = append(out, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func lines(es []Entry) string {
	var b strings.Builder
	for _, e := range es {
		b.Write(e.Line)
	}
	return b.String()
}

func TestFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, err := Open(path, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	w.Write("stdout", []byte("hi\nthere\n"), t0)
	w.Write("stderr", []byte("err\n"), t0.Add(time.Second))
	w.Close()
	b, _ := os.ReadFile(path)
	want := `{"log":"hi\n","stream":"stdout","time":"2026-11-24T04:15:55.123456789Z"}
{"log":"there\n","stream":"stdout","time":"2026-11-24T04:15:55.123456789Z"}
{"log":"err\n","stream":"stderr","time":"2026-11-24T04:15:56.123456789Z"}
`
	if string(b) != want {
		t.Fatalf("got\n%s\nwant\n%s", b, want)
	}
	es := readAll(t, path, ReadOpts{Tail: -1})
	if len(es) != 3 || es[2].Stream != "stderr" || string(es[2].Line) != "err\n" || !es[0].Time.Equal(t0) {
		t.Fatalf("read back %+v", es)
	}
}

func TestEscapingMatchesEncodingJSON(t *testing.T) {
	cases := []string{
		"plain", `quo"te \ back`, "<a href='x'>&amp;</a>", "tab\tcr\rnl\n", "\x00\x01\x1f\x7f",
		"\b\f", "héllo wörld ☃ 😀", "\u2028\u2029", "bad \xff\xfe utf8 \xe2\x82", "ok",
	}
	for _, c := range cases {
		want, _ := json.Marshal(c)
		got := jsonlite.AppendString(nil, c)
		if !bytes.Equal(got, want) {
			t.Errorf("%q: got %s want %s", c, got, want)
		}
		back, err := jsonlite.Unquote(got)
		var ref string
		json.Unmarshal(want, &ref)
		if err != nil || string(back) != ref {
			t.Errorf("%q: unquote %q, %v; want %q", c, back, err, ref)
		}
	}
	// Escapes encoding/json never writes but other writers may.
	back, err := jsonlite.Unquote([]byte(`"\/\u00e9\ud83d\ude00\ud800x"`))
	if err != nil || string(back) != "/é😀\ufffdx" {
		t.Fatalf("unquote: %q %v", back, err)
	}
	var e Entry
	if err := parseEntry([]byte(`{ "attrs": {"a":"}"}, "log" : "x\n", "stream":"stdout","time":"2026-11-24T04:15:55Z", "n": [1, {"b":2}]}`), &e); err != nil || string(e.Line) != "x\n" || e.Stream != "stdout" {
		t.Fatalf("parseEntry: %+v %v", e, err)
	}
	for _, bad := range []string{``, `{`, `{"log":"x"`, `{"log":}`, `{"log":"\q"}`, `[1]`} {
		if err := parseEntry([]byte(bad), &Entry{}); err == nil {
			t.Errorf("parseEntry(%q) succeeded", bad)
		}
	}
}

func TestPartialLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, err := Open(path, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	w.Write("stdout", []byte("hel"), t0)
	w.Write("stderr", []byte("E"), t0)
	w.Write("stdout", []byte("lo\nwor"), t0.Add(time.Second))
	w.Write("stderr", []byte("RR\n"), t0)
	if got := rawLines(t, path); len(got) != 2 || got[0].Log != "hello\n" || got[1].Log != "ERR\n" {
		t.Fatalf("before flush: %+v", got)
	}
	// The entry of a joined line carries the time its first part arrived.
	if got := rawLines(t, path); got[0].Time != "2026-11-24T04:15:55.123456789Z" {
		t.Fatalf("time of a joined line: %s", got[0].Time)
	}
	// A line of 40 KiB: two partial entries of 16 KiB and the rest with the newline.
	long := strings.Repeat("x", 40*1024)
	w.Write("stdout", []byte(long[:1000]), t0)
	w.Write("stdout", []byte(long[1000:]+"\n"), t0)
	w.Flush() // nothing left
	w.Close()
	got := rawLines(t, path)
	if len(got) != 5 {
		t.Fatalf("%d entries: %+v", len(got), got)
	}
	// "wor" was buffered before the long line started, so the first 16 KiB begin with it.
	if got[2].Log != "wor"+long[:MaxLine-3] || len(got[3].Log) != MaxLine || strings.HasSuffix(got[3].Log, "\n") {
		t.Fatalf("partial entries: %d %d", len(got[2].Log), len(got[3].Log))
	}
	if got[4].Log != long[2*MaxLine-3:]+"\n" {
		t.Fatalf("last part %d bytes", len(got[4].Log))
	}
	es := readAll(t, path, ReadOpts{Tail: -1})
	var out strings.Builder
	for _, e := range es {
		if e.Stream == "stdout" {
			out.Write(e.Line)
		}
	}
	if out.String() != "hello\nwor"+long+"\n" {
		t.Fatalf("stdout read back: %d bytes", out.Len())
	}
}

func TestFlushPartial(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, _ := Open(path, 0, 1)
	w.Write("stdout", []byte("no newline"), t0)
	if got := rawLines(t, path); len(got) != 0 {
		t.Fatalf("written before Flush: %+v", got)
	}
	w.Close()
	got := rawLines(t, path)
	if len(got) != 1 || got[0].Log != "no newline" {
		t.Fatalf("%+v", got)
	}
}

func writeN(t *testing.T, w *Writer, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if err := w.Write("stdout", []byte("line "+strconv.Itoa(i)+"\n"), t0.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c-json.log")
	entry := len(appendEntry(nil, []byte("line 100\n"), "stdout", t0))
	max := int64(entry*10 + entry/2) // ten entries of this size per file
	w, err := Open(path, max, 3)
	if err != nil {
		t.Fatal(err)
	}
	writeN(t, w, 100, 45) // 10 + 10 + 10 + 10 + 5: two rotations dropped the oldest files
	w.Close()
	names, _ := filepath.Glob(path + "*")
	if len(names) != 3 {
		t.Fatalf("files %v", names)
	}
	for _, n := range names {
		st, _ := os.Stat(n)
		if st.Size() > max {
			t.Errorf("%s: %d bytes > %d", n, st.Size(), max)
		}
	}
	if n := len(rawLines(t, path)); n != 5 {
		t.Fatalf("live file %d entries", n)
	}
	if n := len(rawLines(t, path+".1")); n != 10 {
		t.Fatalf("path.1 %d entries", n)
	}
	es := readAll(t, path, ReadOpts{Tail: -1})
	if len(es) != 25 || string(es[0].Line) != "line 120\n" || string(es[24].Line) != "line 144\n" {
		t.Fatalf("%d entries, first %q", len(es), es[0].Line)
	}
	// Reopening continues the live file and keeps rotating.
	w, _ = Open(path, max, 3)
	writeN(t, w, 145, 6)
	w.Close()
	if n := len(rawLines(t, path)); n != 1 {
		t.Fatalf("after reopen: live file %d entries", n)
	}
	if n := len(rawLines(t, path+".1")); n != 10 {
		t.Fatalf("after reopen: path.1 %d entries", n)
	}
}

func TestRotationSingleFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	entry := len(appendEntry(nil, []byte("line 100\n"), "stdout", t0))
	w, _ := Open(path, int64(entry*4), 1)
	writeN(t, w, 100, 10)
	w.Close()
	names, _ := filepath.Glob(path + "*")
	if len(names) != 1 {
		t.Fatalf("files %v", names)
	}
	got := rawLines(t, path)
	if len(got) != 2 || got[0].Log != "line 108\n" {
		t.Fatalf("%+v", got)
	}
}

func TestTailAcrossFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	entry := len(appendEntry(nil, []byte("line 100\n"), "stdout", t0))
	w, _ := Open(path, int64(entry*10), 5)
	writeN(t, w, 100, 35) // path.3: 100-109, .2: 110-119, .1: 120-129, path: 130-134
	w.Close()
	for _, c := range []struct{ tail, n int }{{0, 0}, {1, 1}, {5, 5}, {6, 6}, {15, 15}, {16, 16}, {35, 35}, {100, 35}} {
		es := readAll(t, path, ReadOpts{Tail: c.tail})
		if len(es) != c.n {
			t.Fatalf("tail %d: %d entries", c.tail, len(es))
		}
		if c.n > 0 && (string(es[len(es)-1].Line) != "line 134\n" || string(es[0].Line) != "line "+strconv.Itoa(135-c.n)+"\n") {
			t.Fatalf("tail %d: %q ... %q", c.tail, es[0].Line, es[len(es)-1].Line)
		}
	}
	// An entry being written (no newline yet) is not counted.
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"log":"half`)
	f.Close()
	es := readAll(t, path, ReadOpts{Tail: 2})
	if lines(es) != "line 133\nline 134\n" {
		t.Fatalf("with a half line: %q", lines(es))
	}
}

func TestTailBigFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	line := appendEntry(nil, []byte(strings.Repeat("y", 200)+"\n"), "stdout", t0)
	big := bytes.Repeat(line, (64<<20)/len(line))
	os.WriteFile(path, append(big, appendEntry(nil, []byte("last\n"), "stderr", t0)...), 0o644)
	start := time.Now()
	es := readAll(t, path, ReadOpts{Tail: 10})
	el := time.Since(start)
	if len(es) != 10 || string(es[9].Line) != "last\n" {
		t.Fatalf("%d entries", len(es))
	}
	t.Logf("tail 10 of %d MiB: %v", len(big)>>20, el)
	if el > 200*time.Millisecond {
		t.Fatalf("tail 10 of 64 MiB took %v", el)
	}
}

func TestSinceUntil(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	entry := len(appendEntry(nil, []byte("line 100\n"), "stdout", t0))
	w, _ := Open(path, int64(entry*10), 5)
	writeN(t, w, 0, 30) // line i at t0+i s
	w.Close()
	es := readAll(t, path, ReadOpts{Tail: -1, Since: t0.Add(8 * time.Second), Until: t0.Add(12 * time.Second)})
	if lines(es) != "line 8\nline 9\nline 10\nline 11\nline 12\n" {
		t.Fatalf("%q", lines(es))
	}
	es = readAll(t, path, ReadOpts{Tail: 3, Since: t0.Add(28 * time.Second)})
	if lines(es) != "line 28\nline 29\n" {
		t.Fatalf("tail+since %q", lines(es))
	}
	stop := errors.New("enough")
	n := 0
	err := Read(context.Background(), path, ReadOpts{Tail: -1}, func(Entry) error {
		if n++; n == 3 {
			return stop
		}
		return nil
	})
	if err != stop || n != 3 {
		t.Fatalf("fn error: %v after %d", err, n)
	}
}

func TestFollow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	entry := len(appendEntry(nil, []byte("line 100\n"), "stdout", t0))
	w, _ := Open(path, int64(entry*5), 3)
	writeN(t, w, 100, 3)
	var done atomic.Bool
	got := make(chan string, 100)
	errc := make(chan error, 1)
	go func() {
		errc <- Read(context.Background(), path, ReadOpts{Tail: 1, Follow: true, Done: done.Load}, func(e Entry) error {
			got <- string(e.Line)
			return nil
		})
	}()
	expect := func(want string) {
		t.Helper()
		select {
		case l := <-got:
			if l != want {
				t.Fatalf("got %q want %q", l, want)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("no line (want %q)", want)
		}
	}
	expect("line 102\n")
	writeN(t, w, 103, 1)
	expect("line 103\n")
	// Rotations while following (5 entries per file): 103, 104 fill the file, 105 rotates.
	writeN(t, w, 104, 9)
	for i := 104; i < 113; i++ {
		expect("line " + strconv.Itoa(i) + "\n")
	}
	// A line written in two parts is delivered once complete.
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	l := appendEntry(nil, []byte("split\n"), "stdout", t0)
	f.Write(l[:10])
	time.Sleep(250 * time.Millisecond)
	f.Write(l[10:])
	f.Close()
	expect("split\n")
	writeN(t, w, 113, 1)
	done.Store(true)
	expect("line 113\n")
	select {
	case err := <-errc:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Follow did not end after Done")
	}
	w.Close()
}

func TestFollowWaitsForFileAndContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan string, 10)
	errc := make(chan error, 1)
	go func() {
		errc <- Read(ctx, path, ReadOpts{Tail: -1, Follow: true}, func(e Entry) error {
			got <- string(e.Line)
			return nil
		})
	}()
	time.Sleep(150 * time.Millisecond)
	w, _ := Open(path, 0, 1)
	w.Write("stdout", []byte("late\n"), t0)
	select {
	case l := <-got:
		if l != "late\n" {
			t.Fatal(l)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no line from a file created later")
	}
	// Truncation (max-file 1) rewinds.
	w.Close()
	os.Truncate(path, 0)
	time.Sleep(250 * time.Millisecond)
	w, _ = Open(path, 0, 1)
	w.Write("stdout", []byte("again\n"), t0)
	w.Close()
	select {
	case l := <-got:
		if l != "again\n" {
			t.Fatal(l)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no line after truncation")
	}
	cancel()
	select {
	case err := <-errc:
		if err != context.Canceled {
			t.Fatalf("err %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Follow did not end with its context")
	}
}

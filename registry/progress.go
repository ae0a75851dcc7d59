package registry

import (
	"encoding/json"
	"io"
	"sync"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// Progress protocol: Docker's JSON messages (moby's jsonmessage.JSONMessage),
// one JSON object per line, so the CLI can render them like `docker pull`
// and the API can later stream them unchanged:
//
//	{"status":"Pulling from library/debian","id":"12"}
//	{"status":"Pulling fs layer","id":"a1b2c3d4e5f6"}
//	{"status":"Downloading","progressDetail":{"current":N,"total":M},"id":"a1b2c3d4e5f6"}
//	{"status":"Verifying Checksum","id":"a1b2c3d4e5f6"}
//	{"status":"Download complete","id":"a1b2c3d4e5f6"}
//	{"status":"Extracting","progressDetail":{"current":N,"total":M},"id":"a1b2c3d4e5f6"}
//	{"status":"Pull complete","id":"a1b2c3d4e5f6"}
//	{"status":"Already exists","id":"a1b2c3d4e5f6"}
//	{"status":"Digest: sha256:..."}
//	{"status":"Status: Downloaded newer image for debian:12"}
//
// Push uses "Preparing", "Waiting", "Pushing" (with progressDetail),
// "Pushed", "Layer already exists", "Mounted from REPO", and a final
// {"status":"TAG: digest: sha256:... size: N"}. The id of a layer line is
// the first 12 hex digits of its blob digest, as docker prints.

type progressDetail struct {
	Current int64 `json:"current"`
	Total   int64 `json:"total,omitempty"`
}

type progressMessage struct {
	Status         string          `json:"status"`
	ProgressDetail *progressDetail `json:"progressDetail,omitempty"`
	ID             string          `json:"id,omitempty"`
}

// progressInterval throttles byte-count messages, as docker does, so a fast
// transfer does not spend its time printing.
const progressInterval = 100 * time.Millisecond

// progress writes messages to w; a nil *progress or nil w is silent. Safe for
// concurrent use: layers report from their own goroutines.
type progress struct {
	mu sync.Mutex
	w  io.Writer
}

func newProgress(w io.Writer) *progress { return &progress{w: w} }

func (p *progress) send(m progressMessage) {
	if p == nil || p.w == nil {
		return
	}
	b, err := json.Marshal(m)
	if err != nil {
		return
	}
	b = append(b, '\n')
	p.mu.Lock()
	defer p.mu.Unlock()
	// A broken progress writer (closed terminal) must not fail the pull.
	_, _ = p.w.Write(b)
}

func (p *progress) status(id, status string) {
	p.send(progressMessage{Status: status, ID: id})
}

func (p *progress) bytes(id, status string, current, total int64) {
	p.send(progressMessage{Status: status, ID: id, ProgressDetail: &progressDetail{Current: current, Total: total}})
}

// shortID is docker's layer id: 12 hex digits of the digest.
func shortID(d digest.Digest) string {
	e := d.Encoded()
	if len(e) > 12 {
		e = e[:12]
	}
	return e
}

// countingReader reports the bytes read through it as status messages,
// throttled to one per progressInterval plus the last one.
type countingReader struct {
	r      io.Reader
	p      *progress
	id     string
	status string
	total  int64
	n      int64
	last   time.Time
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	if now := time.Now(); n > 0 && (now.Sub(c.last) >= progressInterval || c.n == c.total) {
		c.last = now
		c.p.bytes(c.id, c.status, c.n, c.total)
	}
	return n, err
}

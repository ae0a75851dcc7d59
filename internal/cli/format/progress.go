package format

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/docker/go-units"
)

// progressMessage is Docker's JSON progress message (what the registry package emits and,
// later, the API streams).
type progressMessage struct {
	ID       string `json:"id"`
	Status   string `json:"status"`
	Progress *struct {
		Current int64 `json:"current"`
		Total   int64 `json:"total"`
	} `json:"progressDetail"`
	Error string `json:"error"`
}

// Progress renders a stream of JSON progress messages like the docker CLI: on a terminal one
// live line per layer, redrawn in place; otherwise one plain line per status change (byte
// counts are dropped so logs stay readable). quiet prints nothing.
func Progress(out io.Writer, in io.Reader, terminal, quiet bool) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var order []string
	lines := map[string]string{}
	last := map[string]string{}
	started := map[string]time.Time{}
	for sc.Scan() {
		var m progressMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			continue
		}
		if quiet {
			continue
		}
		if m.Error != "" {
			continue // the command returns the error itself
		}
		if m.ID == "" || !terminal {
			if m.ID != "" && last[m.ID] == m.Status {
				continue
			}
			last[m.ID] = m.Status
			if m.ID != "" {
				fmt.Fprintf(out, "%s: %s\n", m.ID, m.Status)
			} else {
				fmt.Fprintln(out, m.Status)
			}
			continue
		}
		text := m.Status
		if m.Progress != nil && m.Progress.Total > 0 {
			key := m.ID + "\x00" + m.Status
			if _, ok := started[key]; !ok {
				started[key] = time.Now()
			}
			text += " " + bar(m.Progress.Current, m.Progress.Total, time.Since(started[key]))
		}
		if _, ok := lines[m.ID]; !ok {
			order = append(order, m.ID)
			lines[m.ID] = text
			fmt.Fprintf(out, "%s: %s\n", m.ID, text)
			continue
		}
		lines[m.ID] = text
		// Move up to the layer's line, rewrite it, come back down.
		up := 0
		for i := len(order) - 1; i >= 0 && order[i] != m.ID; i-- {
			up++
		}
		fmt.Fprintf(out, "\x1b[%dA\r\x1b[2K%s: %s\r\x1b[%dB", up+1, m.ID, text, up+1)
	}
	return sc.Err()
}

func bar(cur, total int64, elapsed time.Duration) string {
	const width = 50
	n := int(cur * width / total)
	if n > width {
		n = width
	}
	arrow := strings.Repeat("=", n)
	if n < width {
		arrow += ">" + strings.Repeat(" ", width-n-1)
	}
	speed := ""
	if secs := elapsed.Seconds(); secs > 0.2 {
		speed = "  " + units.HumanSizeWithPrecision(float64(cur)/secs, 3) + "/s"
	}
	return fmt.Sprintf("[%s]  %s/%s%s", arrow, units.HumanSizeWithPrecision(float64(cur), 3), units.HumanSizeWithPrecision(float64(total), 3), speed)
}

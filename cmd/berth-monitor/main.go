// Command berth-monitor is the container monitor (package container/monitor): the data root's
// hub (`berth-monitor --hub <root>/monitor.sock`, fd 3 the locked <root>/monitor.lock),
// supervising every running container, or with BERTH_MONITOR_HUB=0 one container's monitor
// (`berth-monitor <ctr>/monitor.json`, fd 3 the sync socket). It is built lean and static,
// standard library only:
//
//	CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o bin/berth-monitor ./cmd/berth-monitor
//
// Memory of an idle monitor (container `sleep`, no client), PSS from /proc/PID/smaps_rollup:
// about 2.0 MB right after start and 2.2 MB in the steady state (after the runtime's periodic
// collection), of which about 1.0 MB is the executable's text, shared by all monitors; a bare
// Go hello-world measures 2.0 MB the same way on the same machine. With ten containers each
// monitor's PSS is about 1.3 MB. See container/monitor/mem.go for what keeps it there.
//
// The CLI may start it with GOMAXPROCS=1 in its environment; otherwise the monitor
// re-executes itself once to get it (a second P costs about 200 kB).
package main

import (
	"os"

	"github.com/berth-dev/berth/container/monitor"
)

func main() {
	os.Exit(monitor.Main(os.Args))
}

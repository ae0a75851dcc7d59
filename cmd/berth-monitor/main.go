// Command berth-monitor is the per-container monitor (package container/monitor): one per
// running container, so it is built lean (standard library only, static):
//
//	CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o bin/berth-monitor ./cmd/berth-monitor
package main

import (
	"os"

	"github.com/berth-dev/berth/container/monitor"
)

func main() {
	os.Exit(monitor.Main(os.Args))
}

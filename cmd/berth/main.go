// Command berth is the container engine and, invoked as berth-runtime (or `berth runtime`),
// its runc-compatible OCI runtime (cmd/berth-runtime builds the same runtime lean). The same executable is also the container's init
// (runtime/initproc), reached through the hidden "init" entry point with a sync socket in
// its environment; runtime/nsenter's constructor has run before main in that case.
package main

import (
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/cli"
	"github.com/berth-dev/berth/internal/cli/runtimecli"
	"github.com/berth-dev/berth/runtime/initproc"
	_ "github.com/berth-dev/berth/runtime/nsenter"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "init" && initproc.IsInit() {
		initproc.Main()
		return
	}
	switch filepath.Base(os.Args[0]) {
	case "berth-runtime", "runc":
		os.Exit(runtimecli.Main(os.Args[1:]))
	}
	os.Exit(cli.Main(os.Args[1:]))
}

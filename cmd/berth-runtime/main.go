// Command berth-runtime is berth's OCI runtime with runc's command line, built lean: it links
// only the runtime (no image, registry or HTTP code), because every container start pays for
// the package initialisation of this binary twice (the runtime process and the container's
// init, which is this same executable). `berth runtime ...`, or berth invoked through a
// symlink named berth-runtime, runs the same code from the full berth binary.
package main

import (
	"os"

	"github.com/berth-dev/berth/internal/cli/runtimecli"
	"github.com/berth-dev/berth/runtime/initproc"
	_ "github.com/berth-dev/berth/runtime/nsenter"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "init" && initproc.IsInit() {
		initproc.Main()
		return
	}
	os.Exit(runtimecli.Main(os.Args[1:]))
}

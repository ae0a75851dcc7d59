// Command berth is the container engine and, invoked as berth-runtime (or `berth runtime`),
// its runc-compatible OCI runtime. The same executable is also the container's init
// (runtime/initproc), reached through the hidden "init" entry point with a sync socket in
// its environment; runtime/nsenter's constructor has run before main in that case.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/cli"
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
		os.Exit(cli.RuntimeMain(os.Args[1:]))
	}
	if len(os.Args) > 1 && os.Args[1] == "runtime" {
		os.Exit(cli.RuntimeMain(os.Args[2:]))
	}
	if len(os.Args) > 1 && (os.Args[1] == "version" || os.Args[1] == "--version") {
		fmt.Println("berth version", cli.Version)
		return
	}
	fmt.Fprintln(os.Stderr, "usage: berth runtime COMMAND ... (or invoke as berth-runtime); the engine commands come with the engine issue")
	os.Exit(2)
}

// Package cli is berth's command line (the engine's commands); berth-runtime's runc-compatible
// command line lives in cli/runtimecli, whose argument checks and exit-code plumbing it shares.
package cli

import "github.com/berth-dev/berth/internal/cli/runtimecli"

var (
	exactArgs = runtimecli.ExactArgs
	rangeArgs = runtimecli.RangeArgs
)

package initproc

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/runtime/hooks"
)

func runHooks(phase string, hs []specs.Hook, st *specs.State) error {
	if st == nil {
		st = &specs.State{}
	}
	return hooks.Run(phase, hs, st)
}

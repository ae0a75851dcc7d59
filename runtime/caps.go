package runtime

import (
	"strings"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// dropUnavailableCaps removes from every set the capabilities that the runtime itself does not
// have in its bounding set (a runtime inside a restricted sandbox, or a kernel that does not
// know a newer capability): the kernel would refuse the whole capset, so a privileged
// container would not start at all. Each dropped capability is reported once.
func (r *Runtime) dropUnavailableCaps(p *specs.Process) (changed bool) {
	if p.Capabilities == nil {
		return false
	}
	caps, err := capability.NewPid2(0)
	if err != nil || caps.Load() != nil {
		return false
	}
	last, err := capability.LastCap()
	if err != nil {
		return false
	}
	have := map[string]bool{}
	for _, c := range capability.ListKnown() {
		if c <= last && caps.Get(capability.BOUNDING, c) {
			have["CAP_"+strings.ToUpper(c.String())] = true
		}
	}
	dropped := map[string]bool{}
	filter := func(names []string) []string {
		out := names[:0:0]
		for _, n := range names {
			if have[strings.ToUpper(n)] {
				out = append(out, n)
			} else if !dropped[n] {
				dropped[n] = true
				r.warn("capability %s is not available to the runtime: not granted", n)
			}
		}
		return out
	}
	c := *p.Capabilities
	c.Bounding, c.Effective, c.Permitted = filter(c.Bounding), filter(c.Effective), filter(c.Permitted)
	c.Inheritable, c.Ambient = filter(c.Inheritable), filter(c.Ambient)
	p.Capabilities = &c
	return len(dropped) > 0
}

package spec

import (
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// Merge fills the container's Config from its image's config, as dockerd does at create:
//
//   - Env: the image's variables first, a container variable replaces the image's of the same
//     name in place, new ones follow (a bare NAME, from -e NAME with NAME unset, hides the
//     image's NAME: Generate drops it);
//   - Entrypoint/Cmd: with no --entrypoint, the image's entrypoint applies and the image's Cmd
//     unless a command was given; an --entrypoint (non-nil Entrypoint) drops the image's
//     entrypoint and Cmd; --entrypoint "" (Entrypoint [""]) resets it to none;
//   - User, WorkingDir, StopSignal, Healthcheck: the image's unless set (a Healthcheck given
//     without some fields takes them from the image's);
//   - Labels, Volumes, ExposedPorts: union, the container's values winning.
func Merge(c *container.Config, img v1.Config) {
	if c.User == "" {
		c.User = img.User
	}
	if c.WorkingDir == "" {
		c.WorkingDir = img.WorkingDir
	}
	if c.StopSignal == "" {
		c.StopSignal = img.StopSignal
	}

	c.Env = mergeEnv(img.Env, c.Env)

	if len(img.Labels) > 0 {
		labels := make(map[string]string, len(img.Labels)+len(c.Labels))
		for k, v := range img.Labels {
			labels[k] = v
		}
		for k, v := range c.Labels {
			labels[k] = v
		}
		c.Labels = labels
	}
	if len(img.Volumes) > 0 {
		if c.Volumes == nil {
			c.Volumes = make(map[string]struct{}, len(img.Volumes))
		}
		for k := range img.Volumes {
			c.Volumes[k] = struct{}{}
		}
	}
	if len(img.ExposedPorts) > 0 {
		if c.ExposedPorts == nil {
			c.ExposedPorts = network.PortSet{}
		}
		for k := range img.ExposedPorts {
			if p, err := network.ParsePort(k); err == nil {
				c.ExposedPorts[p] = struct{}{}
			}
		}
	}

	if len(c.Entrypoint) == 0 {
		if len(c.Cmd) == 0 {
			c.Cmd = slices.Clone(img.Cmd)
		}
		if c.Entrypoint == nil {
			c.Entrypoint = slices.Clone(img.Entrypoint)
		}
	}
	if len(c.Entrypoint) == 1 && c.Entrypoint[0] == "" {
		c.Entrypoint = nil
	}

	if ih := img.Healthcheck; ih != nil {
		if c.Healthcheck == nil {
			c.Healthcheck = &container.HealthConfig{
				Test: slices.Clone(ih.Test), Interval: ih.Interval, Timeout: ih.Timeout,
				StartPeriod: ih.StartPeriod, Retries: ih.Retries,
			}
		} else {
			h := c.Healthcheck
			if len(h.Test) == 0 {
				h.Test = slices.Clone(ih.Test)
			}
			if h.Interval == 0 {
				h.Interval = ih.Interval
			}
			if h.Timeout == 0 {
				h.Timeout = ih.Timeout
			}
			if h.StartPeriod == 0 {
				h.StartPeriod = ih.StartPeriod
			}
			if h.Retries == 0 {
				h.Retries = ih.Retries
			}
		}
	}
}

// mergeEnv overlays over onto base by variable name: a replaced variable keeps base's
// position. A later duplicate in over replaces the earlier one.
func mergeEnv(base, over []string) []string {
	if len(base) == 0 && len(over) == 0 {
		return over
	}
	out := make([]string, 0, len(base)+len(over))
	index := map[string]int{}
	for _, list := range [][]string{base, over} {
		for _, kv := range list {
			k, _, _ := strings.Cut(kv, "=")
			if i, ok := index[k]; ok {
				out[i] = kv
				continue
			}
			index[k] = len(out)
			out = append(out, kv)
		}
	}
	return out
}

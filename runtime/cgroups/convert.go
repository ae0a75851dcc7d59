package cgroups

import (
	"fmt"
	"maps"
	"strings"

	"github.com/opencontainers/cgroups"
	devconfig "github.com/opencontainers/cgroups/devices/config"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// FromSpec converts OCI linux.resources into the library's Resources, field
// for field as runc's specconv.CreateCgroupConfig does, so that a spec means
// the same thing under berth as under runc.
//
// Device rules are the one deliberate difference. runc always appends its
// built-in allow list (null, zero, full, tty, random, urandom, pts, ptmx,
// mknod of anything) to the spec's rules, so its list is never empty and the
// library always rewrites the device cgroup. berth's spec generator already
// puts those defaults into linux.resources.devices, so here the spec's rules
// are converted verbatim, and an empty list sets SkipDevices: the library
// would otherwise turn "no rules" into deny-all (its emulator starts as an
// allow list with nothing on it), which would break every `update` that only
// changes, say, the memory limit, because the Manager is rebuilt per CLI
// invocation and has no memory of the rules Create applied.
func FromSpec(r *specs.LinuxResources) (*cgroups.Resources, error) {
	c := &cgroups.Resources{}
	if r == nil {
		c.SkipDevices = true
		return c, nil
	}

	for i, d := range r.Devices {
		rule, err := deviceRule(d)
		if err != nil {
			return nil, fmt.Errorf("devices[%d]: %w", i, err)
		}
		c.Devices = append(c.Devices, rule)
	}
	c.SkipDevices = len(c.Devices) == 0

	if m := r.Memory; m != nil {
		if m.Limit != nil {
			c.Memory = *m.Limit
		}
		if m.Reservation != nil {
			c.MemoryReservation = *m.Reservation
		}
		if m.Swap != nil {
			c.MemorySwap = *m.Swap
		}
		// Kernel and KernelTCP are ignored, as in runc: kernel memory
		// accounting cannot be limited separately on current kernels.
		if m.Swappiness != nil {
			c.MemorySwappiness = m.Swappiness
		}
		if m.DisableOOMKiller != nil {
			c.OomKillDisable = *m.DisableOOMKiller
		}
		if m.CheckBeforeUpdate != nil {
			c.MemoryCheckBeforeUpdate = *m.CheckBeforeUpdate
		}
	}

	if cpu := r.CPU; cpu != nil {
		if cpu.Shares != nil {
			c.CpuShares = *cpu.Shares
			// v2 has cpu.weight instead of cpu.shares; fs2 only reads CpuWeight.
			c.CpuWeight = cgroups.ConvertCPUSharesToCgroupV2Value(c.CpuShares)
		}
		if cpu.Quota != nil {
			c.CpuQuota = *cpu.Quota
		}
		if cpu.Burst != nil {
			burst := *cpu.Burst
			c.CpuBurst = &burst
		}
		if cpu.Period != nil {
			c.CpuPeriod = *cpu.Period
		}
		if cpu.RealtimeRuntime != nil {
			c.CpuRtRuntime = *cpu.RealtimeRuntime
		}
		if cpu.RealtimePeriod != nil {
			c.CpuRtPeriod = *cpu.RealtimePeriod
		}
		c.CpusetCpus = cpu.Cpus
		c.CpusetMems = cpu.Mems
		if cpu.Idle != nil {
			idle := *cpu.Idle
			c.CPUIdle = &idle
		}
	}

	if r.Pids != nil && r.Pids.Limit != nil {
		// Copied so that later edits of the spec cannot change applied limits.
		limit := *r.Pids.Limit
		c.PidsLimit = &limit
	}

	if b := r.BlockIO; b != nil {
		if b.Weight != nil {
			c.BlkioWeight = *b.Weight
		}
		if b.LeafWeight != nil {
			c.BlkioLeafWeight = *b.LeafWeight
		}
		for _, wd := range b.WeightDevice {
			var weight, leaf uint16
			if wd.Weight != nil {
				weight = *wd.Weight
			}
			if wd.LeafWeight != nil {
				leaf = *wd.LeafWeight
			}
			c.BlkioWeightDevice = append(c.BlkioWeightDevice, cgroups.NewWeightDevice(wd.Major, wd.Minor, weight, leaf))
		}
		c.BlkioThrottleReadBpsDevice = throttle(b.ThrottleReadBpsDevice)
		c.BlkioThrottleWriteBpsDevice = throttle(b.ThrottleWriteBpsDevice)
		c.BlkioThrottleReadIOPSDevice = throttle(b.ThrottleReadIOPSDevice)
		c.BlkioThrottleWriteIOPSDevice = throttle(b.ThrottleWriteIOPSDevice)
	}

	for _, l := range r.HugepageLimits {
		c.HugetlbLimit = append(c.HugetlbLimit, &cgroups.HugepageLimit{Pagesize: l.Pagesize, Limit: l.Limit})
	}

	if len(r.Rdma) > 0 {
		c.Rdma = make(map[string]cgroups.LinuxRdma, len(r.Rdma))
		for k, v := range r.Rdma {
			c.Rdma[k] = cgroups.LinuxRdma{HcaHandles: v.HcaHandles, HcaObjects: v.HcaObjects}
		}
	}

	if n := r.Network; n != nil {
		if n.ClassID != nil {
			c.NetClsClassid = *n.ClassID
		}
		for _, p := range n.Priorities {
			c.NetPrioIfpriomap = append(c.NetPrioIfpriomap, &cgroups.IfPrioMap{Interface: p.Name, Priority: int64(p.Priority)})
		}
	}

	// Left nil when empty: the v1 manager rejects any non-nil Unified map.
	if len(r.Unified) > 0 {
		c.Unified = maps.Clone(r.Unified)
	}
	return c, nil
}

func throttle(in []specs.LinuxThrottleDevice) []*cgroups.ThrottleDevice {
	var out []*cgroups.ThrottleDevice
	for _, td := range in {
		out = append(out, cgroups.NewThrottleDevice(td.Major, td.Minor, td.Rate))
	}
	return out
}

// deviceRule converts one linux.resources.devices entry; a missing type means
// "a" and a missing major/minor means the wildcard, as the spec says.
func deviceRule(d specs.LinuxDeviceCgroup) (*devconfig.Rule, error) {
	var t devconfig.Type
	switch d.Type {
	case "", "a":
		t = devconfig.WildcardDevice
	case "b":
		t = devconfig.BlockDevice
	case "c":
		t = devconfig.CharDevice
	default:
		return nil, fmt.Errorf("%w: device type %q", ErrInvalidResources, d.Type)
	}
	// runc refuses an empty access string rather than guessing "rwm"; an
	// unknown letter would be rejected by the kernel only half-way through
	// writing the rules, so catch it here.
	if d.Access == "" || strings.Trim(d.Access, "rwm") != "" {
		return nil, fmt.Errorf("%w: device access %q", ErrInvalidResources, d.Access)
	}
	rule := &devconfig.Rule{
		Type:        t,
		Major:       devconfig.Wildcard,
		Minor:       devconfig.Wildcard,
		Permissions: devconfig.Permissions(d.Access),
		Allow:       d.Allow,
	}
	if d.Major != nil {
		rule.Major = *d.Major
	}
	if d.Minor != nil {
		rule.Minor = *d.Minor
	}
	return rule, nil
}

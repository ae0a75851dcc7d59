package runtime

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// allowedDevices are always reachable through the device cgroup, whatever the spec's rules
// say, as in runc: the devices every container gets (/dev/null, zero, full, random, urandom,
// tty, console, ptmx, the pts slaves). Spec rules come first, these are appended.
var allowedDevices = []specs.LinuxDeviceCgroup{
	devRule("c", 1, 3), devRule("c", 1, 5), devRule("c", 1, 7), devRule("c", 1, 8), devRule("c", 1, 9),
	devRule("c", 5, 0), devRule("c", 5, 1), devRule("c", 5, 2), devRule("c", 136, -1),
}

func devRule(t string, major, minor int64) specs.LinuxDeviceCgroup {
	r := specs.LinuxDeviceCgroup{Allow: true, Type: t, Major: &major, Access: "rwm"}
	if minor >= 0 {
		r.Minor = &minor
	}
	return r
}

// cgroupResources returns the resources to apply: the spec's, with device rules that start
// from deny-all when the spec gives none (never inherit the host's device access), then allow
// the linux.devices the container was given and the defaults above.
func cgroupResources(spec *specs.Spec) *specs.LinuxResources {
	var r specs.LinuxResources
	if spec.Linux.Resources != nil {
		r = *spec.Linux.Resources
	}
	rules := append([]specs.LinuxDeviceCgroup(nil), r.Devices...)
	if len(rules) == 0 {
		rules = append(rules, specs.LinuxDeviceCgroup{Allow: false, Access: "rwm"})
	}
	for _, d := range spec.Linux.Devices {
		t := d.Type
		switch t {
		case "p": // a fifo is not a device: no rule needed
			continue
		case "u": // unbuffered character device
			t = "c"
		}
		major, minor := d.Major, d.Minor
		rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: t, Major: &major, Minor: &minor, Access: "rwm"})
	}
	r.Devices = append(rules, allowedDevices...)
	return &r
}

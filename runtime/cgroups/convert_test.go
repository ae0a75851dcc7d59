package cgroups

import (
	"errors"
	"reflect"
	"testing"

	"github.com/opencontainers/cgroups"
	devconfig "github.com/opencontainers/cgroups/devices/config"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func ptr[T any](v T) *T { return &v }

func TestFromSpecNil(t *testing.T) {
	got, err := FromSpec(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, &cgroups.Resources{SkipDevices: true}) {
		t.Fatalf("FromSpec(nil) = %+v", got)
	}
}

func TestFromSpec(t *testing.T) {
	tests := []struct {
		name string
		in   specs.LinuxResources
		want cgroups.Resources
	}{
		{
			name: "empty",
			want: cgroups.Resources{SkipDevices: true},
		},
		{
			name: "memory",
			in: specs.LinuxResources{Memory: &specs.LinuxMemory{
				Limit:       ptr[int64](64 << 20),
				Reservation: ptr[int64](32 << 20),
				Swap:        ptr[int64](128 << 20),
				//lint:ignore SA1019 the conversion must ignore the deprecated kernel limits
				Kernel:            ptr[int64](1 << 20),
				KernelTCP:         ptr[int64](1 << 20),
				Swappiness:        ptr[uint64](10),
				DisableOOMKiller:  ptr(true),
				CheckBeforeUpdate: ptr(true),
			}},
			want: cgroups.Resources{
				SkipDevices:             true,
				Memory:                  64 << 20,
				MemoryReservation:       32 << 20,
				MemorySwap:              128 << 20,
				MemorySwappiness:        ptr[uint64](10),
				OomKillDisable:          true,
				MemoryCheckBeforeUpdate: true,
			},
		},
		{
			name: "unlimited swap",
			in:   specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](1 << 30), Swap: ptr[int64](-1)}},
			want: cgroups.Resources{SkipDevices: true, Memory: 1 << 30, MemorySwap: -1},
		},
		{
			name: "cpu",
			in: specs.LinuxResources{CPU: &specs.LinuxCPU{
				Shares:          ptr[uint64](512),
				Quota:           ptr[int64](50000),
				Burst:           ptr[uint64](1000),
				Period:          ptr[uint64](100000),
				RealtimeRuntime: ptr[int64](950),
				RealtimePeriod:  ptr[uint64](1000),
				Cpus:            "0-1",
				Mems:            "0",
				Idle:            ptr[int64](1),
			}},
			want: cgroups.Resources{
				SkipDevices:  true,
				CpuShares:    512,
				CpuWeight:    cgroups.ConvertCPUSharesToCgroupV2Value(512),
				CpuQuota:     50000,
				CpuBurst:     ptr[uint64](1000),
				CpuPeriod:    100000,
				CpuRtRuntime: 950,
				CpuRtPeriod:  1000,
				CpusetCpus:   "0-1",
				CpusetMems:   "0",
				CPUIdle:      ptr[int64](1),
			},
		},
		{
			name: "pids",
			in:   specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](20)}},
			want: cgroups.Resources{SkipDevices: true, PidsLimit: ptr[int64](20)},
		},
		{
			name: "pids unset keeps current",
			in:   specs.LinuxResources{Pids: &specs.LinuxPids{}},
			want: cgroups.Resources{SkipDevices: true},
		},
		{
			name: "blkio",
			in: specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{
				Weight:     ptr[uint16](500),
				LeafWeight: ptr[uint16](300),
				WeightDevice: []specs.LinuxWeightDevice{
					{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Weight: ptr[uint16](600)},
					{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 16}, LeafWeight: ptr[uint16](700)},
				},
				ThrottleReadBpsDevice:   []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 1}},
				ThrottleWriteBpsDevice:  []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 2}},
				ThrottleReadIOPSDevice:  []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 3}},
				ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 4}},
			}},
			want: cgroups.Resources{
				SkipDevices:     true,
				BlkioWeight:     500,
				BlkioLeafWeight: 300,
				BlkioWeightDevice: []*cgroups.WeightDevice{
					cgroups.NewWeightDevice(8, 0, 600, 0),
					cgroups.NewWeightDevice(8, 16, 0, 700),
				},
				BlkioThrottleReadBpsDevice:   []*cgroups.ThrottleDevice{cgroups.NewThrottleDevice(8, 0, 1)},
				BlkioThrottleWriteBpsDevice:  []*cgroups.ThrottleDevice{cgroups.NewThrottleDevice(8, 0, 2)},
				BlkioThrottleReadIOPSDevice:  []*cgroups.ThrottleDevice{cgroups.NewThrottleDevice(8, 0, 3)},
				BlkioThrottleWriteIOPSDevice: []*cgroups.ThrottleDevice{cgroups.NewThrottleDevice(8, 0, 4)},
			},
		},
		{
			name: "hugetlb rdma network unified",
			in: specs.LinuxResources{
				HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1 << 21}},
				Rdma:           map[string]specs.LinuxRdma{"mlx5_1": {HcaHandles: ptr[uint32](3), HcaObjects: ptr[uint32](100)}},
				Network: &specs.LinuxNetwork{
					ClassID:    ptr[uint32](0x100001),
					Priorities: []specs.LinuxInterfacePriority{{Name: "eth0", Priority: 5}},
				},
				Unified: map[string]string{"memory.high": "1G", "io.weight": "default 100"},
			},
			want: cgroups.Resources{
				SkipDevices:      true,
				HugetlbLimit:     []*cgroups.HugepageLimit{{Pagesize: "2MB", Limit: 1 << 21}},
				Rdma:             map[string]cgroups.LinuxRdma{"mlx5_1": {HcaHandles: ptr[uint32](3), HcaObjects: ptr[uint32](100)}},
				NetClsClassid:    0x100001,
				NetPrioIfpriomap: []*cgroups.IfPrioMap{{Interface: "eth0", Priority: 5}},
				Unified:          map[string]string{"memory.high": "1G", "io.weight": "default 100"},
			},
		},
		{
			name: "devices",
			in: specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
				{Allow: false, Access: "rwm"},
				{Allow: true, Type: "c", Major: ptr[int64](1), Minor: ptr[int64](3), Access: "rwm"},
				{Allow: true, Type: "c", Major: ptr[int64](136), Access: "rw"},
				{Allow: false, Type: "b", Minor: ptr[int64](0), Access: "m"},
				{Allow: true, Type: "a", Access: "r"},
			}},
			want: cgroups.Resources{Devices: []*devconfig.Rule{
				{Type: devconfig.WildcardDevice, Major: -1, Minor: -1, Permissions: "rwm", Allow: false},
				{Type: devconfig.CharDevice, Major: 1, Minor: 3, Permissions: "rwm", Allow: true},
				{Type: devconfig.CharDevice, Major: 136, Minor: -1, Permissions: "rw", Allow: true},
				{Type: devconfig.BlockDevice, Major: -1, Minor: 0, Permissions: "m", Allow: false},
				{Type: devconfig.WildcardDevice, Major: -1, Minor: -1, Permissions: "r", Allow: true},
			}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FromSpec(&tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Fatalf("FromSpec:\n got %+v\nwant %+v", *got, tc.want)
			}
		})
	}
}

// The converted structure must not alias the spec: the runtime may keep
// editing the spec (e.g. for `update`) after the limits were applied.
func TestFromSpecNoAliasing(t *testing.T) {
	in := &specs.LinuxResources{
		Pids:    &specs.LinuxPids{Limit: ptr[int64](5)},
		Unified: map[string]string{"pids.max": "5"},
	}
	got, err := FromSpec(in)
	if err != nil {
		t.Fatal(err)
	}
	*in.Pids.Limit = 6
	in.Unified["pids.max"] = "6"
	if *got.PidsLimit != 5 || got.Unified["pids.max"] != "5" {
		t.Fatalf("result aliases the spec: %+v", got)
	}
}

func TestFromSpecBadDevices(t *testing.T) {
	for _, d := range []specs.LinuxDeviceCgroup{
		{Allow: true, Type: "p", Access: "rwm"},
		{Allow: true, Type: "c", Access: ""},
		{Allow: true, Type: "c", Access: "rwx"},
	} {
		_, err := FromSpec(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{d}})
		if !errors.Is(err, ErrInvalidResources) {
			t.Errorf("FromSpec(%+v) error = %v, want ErrInvalidResources", d, err)
		}
	}
}

func TestResolvePath(t *testing.T) {
	tests := []struct {
		path    string
		id      string
		systemd bool
		want    string // "" means an ErrInvalidPath is expected
	}{
		{"", "abc", false, "/berth/abc"},
		{"/foo/bar", "abc", false, "/foo/bar"},
		{"foo/bar", "abc", false, "/foo/bar"},
		{"/foo//./bar/", "abc", false, "/foo/bar"},
		{"/foo/x/../bar", "abc", false, "/foo/bar"},
		{"foo/..", "abc", false, ""}, // root cgroup
		{"/", "abc", false, ""},
		{"/..", "abc", false, ""},
		{"../etc", "abc", false, ""},
		{"/foo/../../etc", "abc", false, ""},
		{"a/../../b", "abc", false, ""},
		{"", "", false, ""},
		{"", "..", false, ""},
		{"", "a/b", false, ""},

		{"system.slice:berth:abc", "abc", true, "/system.slice/berth-abc.scope"},
		{"", "abc", true, "/system.slice/berth-abc.scope"},
		{":docker:abc", "abc", true, "/system.slice/docker-abc.scope"},
		{"a-b.slice:cri:xyz", "abc", true, "/a.slice/a-b.slice/cri-xyz.scope"},
		{"a-b-c.slice:p:n", "abc", true, "/a.slice/a-b.slice/a-b-c.slice/p-n.scope"},
		{"-.slice:p:n", "abc", true, "/p-n.scope"},
		{"user.slice::n", "abc", true, "/user.slice/n.scope"},
		{"kubepods.slice:p:pod-x.slice", "abc", true, "/kubepods.slice/pod-x.slice"},
		{"system.slice:berth", "abc", true, ""},
		{"/foo/bar", "abc", true, ""},
		{"system.slice:p:..", "abc", true, ""},
		{"system.slice:../..:n", "abc", true, ""},
		{"system.slice:p:a/b", "abc", true, ""},
		{"../x.slice:p:n", "abc", true, ""},
		{"a--b.slice:p:n", "abc", true, ""},
		{"notaslice:p:n", "abc", true, ""},
	}
	for _, tc := range tests {
		got, err := resolvePath(tc.path, tc.id, tc.systemd)
		if tc.want == "" {
			if !errors.Is(err, ErrInvalidPath) {
				t.Errorf("resolvePath(%q, %q, %v) = %q, %v; want ErrInvalidPath", tc.path, tc.id, tc.systemd, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("resolvePath(%q, %q, %v) = %q, %v; want %q", tc.path, tc.id, tc.systemd, got, err, tc.want)
		}
	}
}

func TestNewRefusesEscape(t *testing.T) {
	if _, err := New("../../sys", "abc", false); !errors.Is(err, ErrInvalidPath) {
		t.Fatalf("New with escaping path: err = %v", err)
	}
}

package opts

import (
	"reflect"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/mount"
)

func TestParseVolume(t *testing.T) {
	tru := true
	for _, tc := range []struct {
		in   string
		want mount.Mount
		err  string
	}{
		{in: "/data", want: mount.Mount{Type: mount.TypeVolume, Target: "/data"}},
		{in: "/host:/ctr", want: mount.Mount{Type: mount.TypeBind, Source: "/host", Target: "/ctr"}},
		{in: "/host/:/ctr/", want: mount.Mount{Type: mount.TypeBind, Source: "/host", Target: "/ctr"}},
		{in: "/host:/ctr:ro", want: mount.Mount{Type: mount.TypeBind, Source: "/host", Target: "/ctr", ReadOnly: true}},
		{in: "/host:/ctr:rw", want: mount.Mount{Type: mount.TypeBind, Source: "/host", Target: "/ctr"}},
		{in: "/host:/ctr:ro,Z", want: mount.Mount{Type: mount.TypeBind, Source: "/host", Target: "/ctr", ReadOnly: true}},
		{in: "/host:/ctr:z", want: mount.Mount{Type: mount.TypeBind, Source: "/host", Target: "/ctr"}},
		{in: "/host:/ctr:rshared", want: mount.Mount{Type: mount.TypeBind, Source: "/host", Target: "/ctr",
			BindOptions: &mount.BindOptions{Propagation: mount.PropagationRShared}}},
		{in: "/host:/ctr:ro,slave", want: mount.Mount{Type: mount.TypeBind, Source: "/host", Target: "/ctr", ReadOnly: true,
			BindOptions: &mount.BindOptions{Propagation: mount.PropagationSlave}}},
		{in: "/host:/ctr:private", want: mount.Mount{Type: mount.TypeBind, Source: "/host", Target: "/ctr",
			BindOptions: &mount.BindOptions{Propagation: mount.PropagationPrivate}}},
		{in: "/host:/ctr:cached", want: mount.Mount{Type: mount.TypeBind, Source: "/host", Target: "/ctr", Consistency: mount.ConsistencyCached}},
		{in: "data:/ctr", want: mount.Mount{Type: mount.TypeVolume, Source: "data", Target: "/ctr"}},
		{in: "my_vol-1.x:/ctr:ro", want: mount.Mount{Type: mount.TypeVolume, Source: "my_vol-1.x", Target: "/ctr", ReadOnly: true}},
		{in: "data:/ctr:nocopy", want: mount.Mount{Type: mount.TypeVolume, Source: "data", Target: "/ctr",
			VolumeOptions: &mount.VolumeOptions{NoCopy: tru}}},

		{in: "", err: "invalid volume specification: ''"},
		{in: ":/ctr", err: "invalid volume specification: ':/ctr'"},
		{in: "/ctr:rw", err: "a mode needs a source"},
		{in: "/a:/b:c:d", err: "too many colons"},
		{in: "/host:/ctr:xyz", err: "invalid mode: xyz"},
		{in: "/host:/ctr:ro,rw", err: "invalid mode: ro,rw"},
		{in: "/host:/ctr:shared,slave", err: "invalid mode"},
		{in: "/host:ctr", err: "invalid mount path: 'ctr' mount path must be absolute"},
		{in: "ctr", err: "invalid mount path: 'ctr' mount path must be absolute"},
		{in: "/host:/", err: "destination can't be '/'"},
		{in: "./x:/ctr", err: `"./x" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed`},
		{in: "x y:/ctr", err: "includes invalid characters for a local volume name"},
		{in: "a:/ctr", err: "includes invalid characters"}, // one character is too short, as docker
		{in: "data:/ctr:rshared", err: "propagation mode rshared is only valid for bind mounts"},
		{in: "/host:/ctr:nocopy", err: "nocopy is only valid for volumes"},
	} {
		got, err := ParseVolume(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseVolume(%q) = %+v, %v; want error containing %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseVolume(%q): %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseVolume(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestParseMount(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want mount.Mount
		err  string
	}{
		{in: "type=bind,src=/h,dst=/c", want: mount.Mount{Type: mount.TypeBind, Source: "/h", Target: "/c"}},
		{in: "type=bind,source=/h,target=/c,readonly", want: mount.Mount{Type: mount.TypeBind, Source: "/h", Target: "/c", ReadOnly: true}},
		{in: "type=bind,source=/h,destination=/c,ro=false", want: mount.Mount{Type: mount.TypeBind, Source: "/h", Target: "/c"}},
		{in: "type=bind,source=/h,target=/c,ro=1,bind-propagation=rslave", want: mount.Mount{Type: mount.TypeBind, Source: "/h", Target: "/c", ReadOnly: true,
			BindOptions: &mount.BindOptions{Propagation: mount.PropagationRSlave}}},
		{in: "type=bind,source=/h,target=/c,bind-nonrecursive", want: mount.Mount{Type: mount.TypeBind, Source: "/h", Target: "/c",
			BindOptions: &mount.BindOptions{NonRecursive: true}}},
		{in: "type=bind,source=/h,target=/c,bind-recursive=disabled", want: mount.Mount{Type: mount.TypeBind, Source: "/h", Target: "/c",
			BindOptions: &mount.BindOptions{NonRecursive: true}}},
		{in: "type=bind,source=/h,target=/c,ro,bind-recursive=writable", want: mount.Mount{Type: mount.TypeBind, Source: "/h", Target: "/c", ReadOnly: true,
			BindOptions: &mount.BindOptions{ReadOnlyNonRecursive: true}}},
		{in: "src=vol,dst=/c", want: mount.Mount{Type: mount.TypeVolume, Source: "vol", Target: "/c"}},
		{in: "target=/c", want: mount.Mount{Type: mount.TypeVolume, Target: "/c"}},
		{in: "type=volume,src=vol,dst=/c,volume-nocopy,volume-opt=type=nfs,volume-opt=o=addr=1.2.3.4", want: mount.Mount{
			Type: mount.TypeVolume, Source: "vol", Target: "/c",
			VolumeOptions: &mount.VolumeOptions{NoCopy: true, DriverConfig: &mount.Driver{Options: map[string]string{"type": "nfs", "o": "addr=1.2.3.4"}}}}},
		{in: `type=volume,src=vol,dst=/c,"volume-opt=o=a,b"`, want: mount.Mount{
			Type: mount.TypeVolume, Source: "vol", Target: "/c",
			VolumeOptions: &mount.VolumeOptions{DriverConfig: &mount.Driver{Options: map[string]string{"o": "a,b"}}}}},
		{in: "type=tmpfs,dst=/t,tmpfs-size=64m,tmpfs-mode=1770", want: mount.Mount{Type: mount.TypeTmpfs, Target: "/t",
			TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 64 << 20, Mode: 0o1770}}},
		{in: "TYPE=TMPFS,DST=/t", want: mount.Mount{Type: mount.TypeTmpfs, Target: "/t"}},

		{in: "", err: "value is empty"},
		{in: "type=bind,src=/h", err: "field Target must not be empty"},
		{in: "type=bind,dst=/c", err: "field Source must not be empty"},
		{in: "type=bind,src=rel,dst=/c", err: "invalid mount path: 'rel' mount path must be absolute"},
		{in: "type=bind,src=/h,dst=rel", err: "invalid mount path: 'rel' mount path must be absolute"},
		{in: "type=bind,src=/h,dst=/", err: "destination can't be '/'"},
		{in: "type=tmpfs,src=/h,dst=/c", err: `invalid mount config for type "tmpfs": field Source must not be specified`},
		{in: "type=nfs,dst=/c", err: "invalid mount type 'nfs'"},
		{in: "type=bind,src=/h,dst=/c,foo=bar", err: "unknown option 'foo' in 'foo=bar'"},
		{in: "type=bind,src=/h,dst=/c,bogus", err: "invalid field 'bogus' must be a key=value pair"},
		{in: "type=bind,src=/h,dst=/c,ro=yes", err: "invalid boolean value"},
		{in: "type=bind,src=/h,dst=/c,bind-propagation=up", err: "invalid value for bind-propagation: up"},
		{in: "type=volume,src=/h,dst=/c,bind-propagation=shared", err: "cannot mix 'bind-*' options with mount type 'volume'"},
		{in: "type=bind,src=/h,dst=/c,volume-nocopy", err: "cannot mix 'volume-*' options with mount type 'bind'"},
		{in: "type=bind,src=/h,dst=/c,tmpfs-size=1m", err: "cannot mix 'tmpfs-*' options with mount type 'bind'"},
		{in: "type=tmpfs,dst=/c,tmpfs-size=12xyz", err: "invalid value for tmpfs-size: 12xyz"},
		{in: "type=tmpfs,dst=/c,tmpfs-mode=999", err: "invalid value for tmpfs-mode: 999"},
		{in: "type=volume,dst=/c,ro", err: "must not set ReadOnly mode when using anonymous volumes"},
		{in: "type=volume,src=./x,dst=/c", err: "includes invalid characters for a local volume name"},
		{in: "type=bind,src=/h,dst=/c,bind-recursive=writable", err: "requires 'readonly'"},
		{in: "type=bind,src=/h,dst=/c,src =x", err: "option should not have whitespace"},
		{in: "type=bind,src=/h,dst=/c,src=", err: "invalid value for 'src': value is empty"},
	} {
		got, err := ParseMount(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseMount(%q) = %+v, %v; want error containing %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseMount(%q): %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseMount(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestParseTmpfs(t *testing.T) {
	for _, tc := range []struct {
		in, dest, opts, err string
	}{
		{in: "/run", dest: "/run"},
		{in: "/run/:rw,size=64m,mode=1777", dest: "/run", opts: "rw,size=64m,mode=1777"},
		{in: "/t:noexec,nosuid,size=50%", dest: "/t", opts: "noexec,nosuid,size=50%"},
		{in: "/t:size=64mb", dest: "/t", opts: "size=67108864"},
		{in: "/t:uid=1000,gid=1000,nr_inodes=1k,exec", dest: "/t", opts: "uid=1000,gid=1000,nr_inodes=1k,exec"},
		{in: "", err: "want /CONTAINER/PATH[:OPTIONS]"},
		{in: "run", err: "mount path must be absolute"},
		{in: "/", err: "destination can't be '/'"},
		{in: "/t:bogus", err: `invalid tmpfs option "bogus"`},
		{in: "/t:size=12xyz", err: `invalid tmpfs size "12xyz"`},
		{in: "/t:mode=9", err: `invalid tmpfs mode "9"`},
		{in: "/t:foo=1", err: `invalid tmpfs option "foo=1"`},
	} {
		dest, opts, err := ParseTmpfs(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseTmpfs(%q) = %q %q %v; want error containing %q", tc.in, dest, opts, err, tc.err)
			}
			continue
		}
		if err != nil || dest != tc.dest || opts != tc.opts {
			t.Errorf("ParseTmpfs(%q) = %q %q %v; want %q %q", tc.in, dest, opts, err, tc.dest, tc.opts)
		}
	}
}

func TestMergeTmpfsOptions(t *testing.T) {
	got := MergeTmpfsOptions([]string{"noexec", "nosuid", "nodev", "rprivate", "exec", "size=1m", "mode=755", "size=2m", "ro", "rw", "private"})
	want := []string{"exec", "nosuid", "nodev", "private", "size=2m", "mode=755", "rw"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestTmpfsData(t *testing.T) {
	for _, tc := range []struct {
		m    mount.Mount
		want string
	}{
		{mount.Mount{}, ""},
		{mount.Mount{ReadOnly: true, TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 64 << 20, Mode: 0o1777}}, "ro,mode=1777,size=64m"},
		{mount.Mount{TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 3 << 30}}, "size=3g"},
		{mount.Mount{TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1000}}, "size=1000"},
		{mount.Mount{TmpfsOptions: &mount.TmpfsOptions{Options: [][]string{{"exec"}, {"uid", "1"}}}}, "exec,uid=1"},
	} {
		if got := TmpfsData(tc.m); got != tc.want {
			t.Errorf("TmpfsData(%+v) = %q, want %q", tc.m, got, tc.want)
		}
	}
}

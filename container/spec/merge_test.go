package spec

import (
	"reflect"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// Docker's documented ENTRYPOINT/CMD interplay (docker run reference, "Understand how CMD and
// ENTRYPOINT interact"), with what the CLI puts in Config for each flag form.
func TestMergeEntrypointCmd(t *testing.T) {
	for _, tc := range []struct {
		name               string
		imgEntry, imgCmd   []string
		runEntry, runCmd   []string
		wantEntry, wantCmd []string
		wantArgs           []string // what the container runs
	}{
		{name: "image cmd only", imgCmd: []string{"sh"}, wantCmd: []string{"sh"}, wantArgs: []string{"sh"}},
		{name: "command replaces image cmd", imgCmd: []string{"sh"}, runCmd: []string{"ls", "-l"}, wantCmd: []string{"ls", "-l"}, wantArgs: []string{"ls", "-l"}},
		{name: "image entrypoint and cmd", imgEntry: []string{"/entry"}, imgCmd: []string{"default"},
			wantEntry: []string{"/entry"}, wantCmd: []string{"default"}, wantArgs: []string{"/entry", "default"}},
		{name: "command replaces cmd, entrypoint kept", imgEntry: []string{"/entry"}, imgCmd: []string{"default"}, runCmd: []string{"x"},
			wantEntry: []string{"/entry"}, wantCmd: []string{"x"}, wantArgs: []string{"/entry", "x"}},
		{name: "--entrypoint resets image cmd", imgEntry: []string{"/entry"}, imgCmd: []string{"default"}, runEntry: []string{"/bin/sh"},
			wantEntry: []string{"/bin/sh"}, wantArgs: []string{"/bin/sh"}},
		{name: "--entrypoint with command", imgEntry: []string{"/entry"}, imgCmd: []string{"default"}, runEntry: []string{"/bin/sh"}, runCmd: []string{"-c", "ls"},
			wantEntry: []string{"/bin/sh"}, wantCmd: []string{"-c", "ls"}, wantArgs: []string{"/bin/sh", "-c", "ls"}},
		{name: `--entrypoint ""`, imgEntry: []string{"/entry"}, imgCmd: []string{"default"}, runEntry: []string{""}},
		{name: `--entrypoint "" with command`, imgEntry: []string{"/entry"}, imgCmd: []string{"default"}, runEntry: []string{""}, runCmd: []string{"ls"},
			wantCmd: []string{"ls"}, wantArgs: []string{"ls"}},
		{name: "API empty entrypoint keeps image cmd, not its entrypoint", imgEntry: []string{"/entry"}, imgCmd: []string{"default"}, runEntry: []string{},
			wantEntry: []string{}, wantCmd: []string{"default"}, wantArgs: []string{"default"}},
		{name: "image entrypoint only", imgEntry: []string{"/entry", "-v"},
			wantEntry: []string{"/entry", "-v"}, wantArgs: []string{"/entry", "-v"}},
	} {
		c := &container.Config{Entrypoint: tc.runEntry, Cmd: tc.runCmd}
		Merge(c, v1.Config{Entrypoint: tc.imgEntry, Cmd: tc.imgCmd})
		if !reflect.DeepEqual(c.Entrypoint, tc.wantEntry) || !reflect.DeepEqual(c.Cmd, tc.wantCmd) {
			t.Errorf("%s: entrypoint %q cmd %q, want %q %q", tc.name, c.Entrypoint, c.Cmd, tc.wantEntry, tc.wantCmd)
			continue
		}
		_, err := Generate(Input{ID: "x", Rootfs: t.TempDir(), Config: c})
		if tc.wantArgs == nil {
			if err == nil || err.Error() != "no command specified" {
				t.Errorf("%s: %v, want no command specified", tc.name, err)
			}
			continue
		}
		s := gen(t, Input{Config: c})
		if !reflect.DeepEqual(s.Process.Args, tc.wantArgs) {
			t.Errorf("%s: args %q, want %q", tc.name, s.Process.Args, tc.wantArgs)
		}
	}
}

func TestMergeFields(t *testing.T) {
	img := v1.Config{
		User: "app", WorkingDir: "/srv", StopSignal: "SIGQUIT",
		Env:          []string{"PATH=/img/bin", "LANG=C", "A=img"},
		Labels:       map[string]string{"maintainer": "img", "version": "1"},
		Volumes:      map[string]struct{}{"/data": {}},
		ExposedPorts: map[string]struct{}{"80/tcp": {}, "53/udp": {}},
		Healthcheck:  &v1.HealthConfig{Test: []string{"CMD", "true"}, Interval: time.Second, Timeout: 2 * time.Second, Retries: 3},
		Cmd:          []string{"serve"},
	}

	// nothing set: everything from the image, copied (no aliasing)
	c := &container.Config{}
	Merge(c, img)
	if c.User != "app" || c.WorkingDir != "/srv" || c.StopSignal != "SIGQUIT" ||
		!reflect.DeepEqual(c.Env, img.Env) || !reflect.DeepEqual(c.Labels, img.Labels) || len(c.Volumes) != 1 || len(c.ExposedPorts) != 2 ||
		!reflect.DeepEqual(c.Healthcheck.Test, []string{"CMD", "true"}) || c.Healthcheck.Retries != 3 {
		t.Fatalf("from the image: %+v", c)
	}
	c.Cmd[0] = "changed"
	if img.Cmd[0] != "serve" {
		t.Fatal("Merge aliases the image's Cmd")
	}

	// the container's values win
	p8080 := network.MustParsePort("8080/tcp")
	c = &container.Config{
		User: "root", WorkingDir: "/work", StopSignal: "SIGTERM",
		Env:          []string{"A=mine", "B=new", "LANG"},
		Labels:       map[string]string{"version": "2"},
		Volumes:      map[string]struct{}{"/cache": {}},
		ExposedPorts: network.PortSet{p8080: {}},
		Healthcheck:  &container.HealthConfig{Interval: 5 * time.Second},
	}
	Merge(c, img)
	if c.User != "root" || c.WorkingDir != "/work" || c.StopSignal != "SIGTERM" {
		t.Errorf("scalars %+v", c)
	}
	if want := []string{"PATH=/img/bin", "LANG", "A=mine", "B=new"}; !reflect.DeepEqual(c.Env, want) {
		t.Errorf("env %q, want %q", c.Env, want)
	}
	if want := map[string]string{"maintainer": "img", "version": "2"}; !reflect.DeepEqual(c.Labels, want) {
		t.Errorf("labels %v", c.Labels)
	}
	if len(c.Volumes) != 2 {
		t.Errorf("volumes %v", c.Volumes)
	}
	if _, ok := c.ExposedPorts[network.MustParsePort("80/tcp")]; !ok || len(c.ExposedPorts) != 3 {
		t.Errorf("ports %v", c.ExposedPorts)
	}
	if h := c.Healthcheck; !reflect.DeepEqual(h.Test, []string{"CMD", "true"}) || h.Interval != 5*time.Second || h.Timeout != 2*time.Second || h.Retries != 3 {
		t.Errorf("healthcheck %+v", h)
	}

	// -e LANG with LANG unset hides the image's LANG in the container
	s := gen(t, Input{Config: c})
	env := envMap(s)
	if _, ok := env["LANG"]; ok || env["A"] != "mine" || env["PATH"] != "/img/bin" {
		t.Errorf("container env %q", s.Process.Env)
	}

	// --no-healthcheck stays
	c = &container.Config{Healthcheck: &container.HealthConfig{Test: []string{"NONE"}}}
	Merge(c, img)
	if !reflect.DeepEqual(c.Healthcheck.Test, []string{"NONE"}) {
		t.Errorf("NONE healthcheck %v", c.Healthcheck.Test)
	}
}

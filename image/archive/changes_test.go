package archive

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestApplyChanges(t *testing.T) {
	for _, c := range []struct {
		name    string
		base    v1.Config
		changes []string
		want    v1.Config
	}{
		{"exec and shell forms", v1.Config{}, []string{`CMD ["sh"]`, "ENV A=1", "WORKDIR /w", "ENTRYPOINT echo hi"},
			v1.Config{Cmd: []string{"sh"}, Env: []string{"A=1"}, WorkingDir: "/w", Entrypoint: []string{"/bin/sh", "-c", "echo hi"}}},
		{"shell form is not expanded", v1.Config{}, []string{`cmd echo "$HOME" > /x`},
			v1.Config{Cmd: []string{"/bin/sh", "-c", `echo "$HOME" > /x`}}},
		{"malformed JSON is shell form", v1.Config{}, []string{`CMD ["sh"`},
			v1.Config{Cmd: []string{"/bin/sh", "-c", `["sh"`}}},
		{"entrypoint without cmd clears the inherited cmd", v1.Config{Cmd: []string{"old"}}, []string{`ENTRYPOINT ["/e"]`},
			v1.Config{Entrypoint: []string{"/e"}}},
		{"cmd after entrypoint stays", v1.Config{Cmd: []string{"old"}}, []string{`ENTRYPOINT ["/e"]`, `CMD ["c"]`},
			v1.Config{Entrypoint: []string{"/e"}, Cmd: []string{"c"}}},
		{"env pairs see the env before the instruction", v1.Config{}, []string{`ENV A=1 B="x y" C=$A`, `ENV D=${A}2 E=${NOPE:-def} F=${A:+set} G='$A' H=\$A`},
			v1.Config{Env: []string{"A=1", "B=x y", "C=", "D=12", "E=def", "F=set", "G=$A", "H=$A"}}},
		{"env legacy form and replacement", v1.Config{Env: []string{"PATH=/bin"}}, []string{"ENV PATH /usr/bin:/bin", "ENV K  v w"},
			v1.Config{Env: []string{"PATH=/usr/bin:/bin", "K=v w"}}},
		{"labels", v1.Config{}, []string{`LABEL a=b "c d"=e`, "LABEL legacy value here"},
			v1.Config{Labels: map[string]string{"a": "b", "c d": "e", "legacy": "value here"}}},
		{"relative workdir joins", v1.Config{}, []string{"ENV D=/srv", "WORKDIR $D", "WORKDIR app", "WORKDIR ../x"},
			v1.Config{Env: []string{"D=/srv"}, WorkingDir: "/srv/x"}},
		{"ports", v1.Config{}, []string{"EXPOSE 80 53/udp", "expose 8000-8001/TCP"},
			v1.Config{ExposedPorts: map[string]struct{}{"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}}}},
		{"volumes", v1.Config{}, []string{`VOLUME ["/data", "/var/log"]`, "VOLUME /a /b"},
			v1.Config{Volumes: map[string]struct{}{"/data": {}, "/var/log": {}, "/a": {}, "/b": {}}}},
		{"user and stop signal", v1.Config{}, []string{"USER app:app", "STOPSIGNAL SIGINT"},
			v1.Config{User: "app:app", StopSignal: "SIGINT"}},
		{"several instructions in one change, comments, blanks", v1.Config{}, []string{"USER a\n# comment\n\nWORKDIR /x", ""},
			v1.Config{User: "a", WorkingDir: "/x"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := c.base
			if err := ApplyChanges(&cfg, c.changes); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg, c.want) {
				t.Errorf("got  %+v\nwant %+v", cfg, c.want)
			}
		})
	}
}

func TestApplyChangesErrors(t *testing.T) {
	for _, c := range []struct {
		change string
		want   error
	}{
		{"RUN apt-get update", ErrUnknownInstruction},
		{"FROM debian", ErrUnknownInstruction},
		{"COPY a b", ErrUnknownInstruction},
		{"HEALTHCHECK NONE", ErrUnknownInstruction},
		{"ENV", ErrInvalidChange},
		{"ENV onlykey", ErrInvalidChange},
		{"ENV a=1 b", ErrInvalidChange},
		{`ENV a="unterminated`, ErrInvalidChange},
		{"ENV a=${", ErrInvalidChange},
		{"CMD", ErrInvalidChange},
		{"WORKDIR", ErrInvalidChange},
		{"EXPOSE http", ErrInvalidChange},
		{"EXPOSE 80/quic", ErrInvalidChange},
		{"EXPOSE 8080:80", ErrInvalidChange},
		{"EXPOSE 70000", ErrInvalidChange},
		{"STOPSIGNAL SIGNOPE", ErrInvalidChange},
		{`VOLUME [""]`, ErrInvalidChange},
	} {
		var cfg v1.Config
		err := ApplyChanges(&cfg, []string{c.change})
		if !errors.Is(err, c.want) {
			t.Errorf("%q: got %v, want %v", c.change, err, c.want)
			continue
		}
		if kw, _ := cutSpace(c.change); !strings.Contains(err.Error(), kw) {
			t.Errorf("%q: error %q does not name the instruction", c.change, err)
		}
	}
}

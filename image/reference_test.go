package image

import (
	"errors"
	"strings"
	"testing"
)

func TestParseReference(t *testing.T) {
	const dg = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	cases := []struct {
		in, full, familiar string
		domain, path, tag  string
		digest             string
		name               string // go-containerregistry form
	}{
		{in: "debian", full: "docker.io/library/debian:latest", familiar: "debian:latest",
			domain: "docker.io", path: "library/debian", tag: "latest", name: "index.docker.io/library/debian:latest"},
		{in: "debian:12", full: "docker.io/library/debian:12", familiar: "debian:12",
			domain: "docker.io", path: "library/debian", tag: "12"},
		{in: "library/debian", full: "docker.io/library/debian:latest", familiar: "debian:latest",
			domain: "docker.io", path: "library/debian", tag: "latest"},
		{in: "docker.io/debian", full: "docker.io/library/debian:latest", familiar: "debian:latest",
			domain: "docker.io", path: "library/debian", tag: "latest"},
		{in: "index.docker.io/library/debian", full: "docker.io/library/debian:latest", familiar: "debian:latest",
			domain: "docker.io", path: "library/debian", tag: "latest"},
		{in: "user/app:v1.2", full: "docker.io/user/app:v1.2", familiar: "user/app:v1.2",
			domain: "docker.io", path: "user/app", tag: "v1.2"},
		{in: "docker.io/library/a/b", full: "docker.io/library/a/b:latest", familiar: "library/a/b:latest",
			domain: "docker.io", path: "library/a/b", tag: "latest"},
		{in: "localhost:5000/a/b:tag", full: "localhost:5000/a/b:tag", familiar: "localhost:5000/a/b:tag",
			domain: "localhost:5000", path: "a/b", tag: "tag", name: "localhost:5000/a/b:tag"},
		{in: "localhost/x", full: "localhost/x:latest", familiar: "localhost/x:latest",
			domain: "localhost", path: "x", tag: "latest"},
		{in: "ghcr.io/x/y@" + dg, full: "ghcr.io/x/y@" + dg, familiar: "ghcr.io/x/y@" + dg,
			domain: "ghcr.io", path: "x/y", digest: dg, name: "ghcr.io/x/y@" + dg},
		{in: "debian:12@" + dg, full: "docker.io/library/debian:12@" + dg, familiar: "debian:12@" + dg,
			domain: "docker.io", path: "library/debian", tag: "12", digest: dg, name: "index.docker.io/library/debian@" + dg},
		{in: "a__b-c/e---f.g:_T.a-g", full: "docker.io/a__b-c/e---f.g:_T.a-g", familiar: "a__b-c/e---f.g:_T.a-g",
			domain: "docker.io", path: "a__b-c/e---f.g", tag: "_T.a-g"},
		{in: "[::1]:5000/x", full: "[::1]:5000/x:latest", familiar: "[::1]:5000/x:latest",
			domain: "[::1]:5000", path: "x", tag: "latest"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			r, err := ParseReference(c.in)
			if err != nil {
				t.Fatal(err)
			}
			if r.String() != c.full || r.Familiar() != c.familiar || r.Domain() != c.domain ||
				r.Path() != c.path || r.Tag() != c.tag || string(r.Digest()) != c.digest {
				t.Errorf("got full %q familiar %q domain %q path %q tag %q digest %q", r.String(), r.Familiar(), r.Domain(), r.Path(), r.Tag(), r.Digest())
			}
			if r.Repository() != c.domain+"/"+c.path {
				t.Errorf("Repository = %q", r.Repository())
			}
			// The normalized form is the store's key: it must parse back to itself.
			if back, err := ParseReference(r.String()); err != nil || back != r {
				t.Errorf("round trip: %v, %v", back, err)
			}
			if c.name != "" {
				n, err := r.Name()
				if err != nil || n.String() != c.name {
					t.Errorf("Name() = %v, %v; want %s", n, err, c.name)
				}
			}
		})
	}
}

func TestParseReferenceInvalid(t *testing.T) {
	for _, in := range []string{
		"",
		"UPPERCASE",
		"a:b:c",
		"debian:",
		"debian@sha256:123",
		"debian@@" + strings.Repeat("a", 64),
		"-debian",
		"a..b",
		"debian:.tag",
		"a//b",
		"a_b.c/d",
		"-bad.io/x",
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"https://docker.io/debian",
		"debian:" + strings.Repeat("t", 129),
	} {
		_, err := ParseReference(in)
		if !errors.Is(err, ErrInvalidReference) {
			t.Errorf("ParseReference(%q) = %v, want ErrInvalidReference", in, err)
			continue
		}
		if !strings.Contains(err.Error(), in) {
			t.Errorf("error %q does not name the input %q", err, in)
		}
	}
	_, err := ParseReference("UPPERCASE")
	if !strings.Contains(err.Error(), "must be lowercase") {
		t.Errorf("UPPERCASE: %v, want a 'must be lowercase' message", err)
	}
}

func TestReferenceWithDigest(t *testing.T) {
	r := mustRef(t, "debian:12")
	const dg = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	if got := r.WithDigest(dg).String(); got != "docker.io/library/debian@"+dg {
		t.Errorf("WithDigest = %s", got)
	}
}

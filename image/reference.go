package image

import (
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	digest "github.com/opencontainers/go-digest"
)

// Docker's grammar (distribution/reference) is stricter than
// go-containerregistry's character-set check, which accepts "a..b", "-a" and
// tags starting with '.' or '-'. We parse with ggcr (registry/namespace/tag
// defaulting) and then apply these rules so we refuse what docker refuses.
//
// The patterns compile on first use, and the simple ones are plain loops: compiling them at
// package init cost every berth command about 1 ms ({0,127} alone is 127 copies of a class).
var (
	pathComponentRe = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$`)
	})
	domainRe = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$`)
	})
)

// validTag is ^[\w][\w.-]{0,127}$.
func validTag(s string) bool {
	if len(s) == 0 || len(s) > 128 || !isWord(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isWord(c) && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

func isWord(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// isHex says whether s is min..max lowercase hex digits. A bare 64-hex string is an image
// ID, never a repository name.
func isHex(s string, min, max int) bool {
	if len(s) < min || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

const (
	// dockerHubDomain is how docker shows Docker Hub in full names;
	// go-containerregistry calls it index.docker.io, which we translate back.
	dockerHubDomain   = "docker.io"
	officialNamespace = "library/"
	defaultTag        = "latest"
	maxNameLength     = 255
)

// Reference is a normalized image reference: a domain, a repository path, and
// a tag, a digest or both. The zero value is not a valid reference.
type Reference struct {
	domain string // "docker.io", "localhost:5000", "ghcr.io"
	path   string // "library/debian", "a/b"
	tag    string // "" when only a digest was given
	digest digest.Digest
}

// ParseReference parses s with Docker's rules: "debian" is
// docker.io/library/debian:latest, "localhost:5000/x" keeps its registry,
// "name@sha256:..." pins a digest (a tag given with it is kept, as docker
// does). An invalid s is ErrInvalidReference naming it.
func ParseReference(s string) (Reference, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %q: %s", ErrInvalidReference, s, fmt.Sprintf(format, args...))
	}
	if s == "" {
		return Reference{}, bad("empty reference")
	}
	rest := s
	var dgst digest.Digest
	if i := strings.IndexByte(s, '@'); i >= 0 {
		d, err := digest.Parse(s[i+1:])
		if err != nil {
			return Reference{}, bad("invalid digest: %v", err)
		}
		dgst, rest = d, s[:i]
	}
	if isHex(rest, 64, 64) {
		return Reference{}, bad("cannot specify 64-byte hexadecimal strings as a repository name")
	}
	t, err := name.NewTag(rest, name.WithDefaultTag(""))
	if err != nil {
		if _, lerr := name.NewTag(strings.ToLower(rest), name.WithDefaultTag("")); lerr == nil {
			return Reference{}, bad("repository name must be lowercase")
		}
		return Reference{}, bad("%v", err)
	}
	r := Reference{
		domain: t.RegistryStr(),
		path:   t.RepositoryStr(),
		tag:    t.TagStr(),
		digest: dgst,
	}
	if r.domain == name.DefaultRegistry {
		r.domain = dockerHubDomain
	}
	if !domainRe().MatchString(r.domain) {
		return Reference{}, bad("invalid registry %q", r.domain)
	}
	for _, c := range strings.Split(r.path, "/") {
		if !pathComponentRe().MatchString(c) {
			return Reference{}, bad("invalid repository path component %q", c)
		}
	}
	if r.tag != "" && !validTag(r.tag) {
		return Reference{}, bad("invalid tag %q", r.tag)
	}
	if len(r.Repository()) > maxNameLength {
		return Reference{}, bad("repository name longer than %d characters", maxNameLength)
	}
	if r.tag == "" && r.digest == "" {
		r.tag = defaultTag
	}
	return r, nil
}

// String is the full normalized form, the key the store indexes by:
// "docker.io/library/debian:latest", "ghcr.io/x/y@sha256:...".
func (r Reference) String() string {
	s := r.Repository()
	if r.tag != "" {
		s += ":" + r.tag
	}
	if r.digest != "" {
		s += "@" + r.digest.String()
	}
	return s
}

// Familiar is docker's short form: "debian:latest", "user/app:1",
// "localhost:5000/a/b:tag".
func (r Reference) Familiar() string {
	s := r.FamiliarName()
	if r.tag != "" {
		s += ":" + r.tag
	}
	if r.digest != "" {
		s += "@" + r.digest.String()
	}
	return s
}

// FamiliarName is the repository in docker's short form (the REPOSITORY
// column of `docker images`): Docker Hub's domain and official "library/"
// namespace are dropped.
func (r Reference) FamiliarName() string {
	if r.domain != dockerHubDomain {
		return r.Repository()
	}
	if rest, ok := strings.CutPrefix(r.path, officialNamespace); ok && !strings.Contains(rest, "/") {
		return rest
	}
	return r.path
}

// Repository is the full repository name: "docker.io/library/debian".
func (r Reference) Repository() string {
	if r.domain == "" {
		return ""
	}
	return r.domain + "/" + r.path
}

// Domain is the registry part: "docker.io", "localhost:5000".
func (r Reference) Domain() string { return r.domain }

// Path is the repository path within the registry: "library/debian".
func (r Reference) Path() string { return r.path }

// Tag is the tag, "" for a digest-only reference.
func (r Reference) Tag() string { return r.tag }

// Digest is the pinned digest, "" for a tag-only reference.
func (r Reference) Digest() digest.Digest { return r.digest }

// IsZero reports whether r is the zero Reference.
func (r Reference) IsZero() bool { return r.domain == "" }

// WithDigest returns the digest-pinned reference name@dgst (dropping any tag),
// the form docker records as a repository digest after a pull.
func (r Reference) WithDigest(dgst digest.Digest) Reference {
	return Reference{domain: r.domain, path: r.path, digest: dgst}
}

// Name converts r for go-containerregistry's remote package. A reference with
// both tag and digest resolves by digest, as the registry protocol does.
func (r Reference) Name() (name.Reference, error) {
	repo, err := name.NewRepository(r.Repository())
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrInvalidReference, r.String(), err)
	}
	if r.digest != "" {
		return repo.Digest(r.digest.String()), nil
	}
	return repo.Tag(r.tag), nil
}

// MarshalText makes references round-trip through JSON as their full string.
func (r Reference) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText parses a reference written by MarshalText.
func (r *Reference) UnmarshalText(b []byte) error {
	p, err := ParseReference(string(b))
	if err != nil {
		return err
	}
	*r = p
	return nil
}

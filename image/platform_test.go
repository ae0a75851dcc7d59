package image

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
)

// makeIndex builds an index whose entries' digests encode their platform
// string, so tests can tell which one was picked.
func makeIndex(t *testing.T, mt types.MediaType, platforms ...string) []byte {
	t.Helper()
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: mt}
	for _, p := range platforms {
		plat, err := ParsePlatform(p)
		if err != nil {
			t.Fatal(err)
		}
		idx.Manifests = append(idx.Manifests, v1.Descriptor{
			MediaType: types.OCIManifestSchema1,
			Size:      100,
			Digest:    hash(t, digest.FromString(p)),
			Platform:  &plat,
		})
	}
	b, err := json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSelectPlatform(t *testing.T) {
	multi := []string{"linux/amd64", "linux/arm64/v8", "linux/arm/v7", "linux/arm/v6", "linux/s390x", "unknown/unknown", "windows/amd64"}
	cases := []struct {
		index []string
		want  string // requested platform
		pick  string // "" = no match
	}{
		{multi, "linux/amd64", "linux/amd64"},
		{multi, "amd64", "linux/amd64"},
		{multi, "linux/x86_64", "linux/amd64"},
		{multi, "windows/amd64", "windows/amd64"},
		{multi, "linux/arm64", "linux/arm64/v8"}, // v8 is arm64's default variant
		{multi, "linux/arm64/v8", "linux/arm64/v8"},
		{multi, "linux/aarch64", "linux/arm64/v8"},
		{multi, "linux/arm", "linux/arm/v7"}, // v7 is arm's default
		{multi, "linux/arm/v7", "linux/arm/v7"},
		{multi, "linux/arm/v6", "linux/arm/v6"},
		{multi, "linux/arm/v8", "linux/arm/v7"}, // newer arm runs older variants
		{multi, "linux/arm/v5", ""},
		{multi, "linux/ppc64le", ""},
		{[]string{"linux/arm64"}, "linux/arm64/v8", "linux/arm64"}, // variant-less entry is v8
		{[]string{"linux/arm/v7"}, "linux/arm64", "linux/arm/v7"},  // arm64 falls back to 32-bit arm
		{[]string{"linux/amd64/v2", "linux/amd64"}, "linux/amd64", "linux/amd64"},
		{[]string{"linux/amd64/v2", "linux/amd64"}, "linux/amd64/v3", "linux/amd64/v2"},
		{[]string{"linux/amd64/v3"}, "linux/amd64", ""}, // never assume a newer level
		{[]string{"linux/amd64/v1"}, "linux/amd64", "linux/amd64/v1"},
		{[]string{"linux/386"}, "linux/amd64", "linux/386"},
		{[]string{"linux/386", "linux/amd64"}, "linux/amd64", "linux/amd64"}, // exact beats compatible
	}
	for _, c := range cases {
		for _, mt := range []types.MediaType{types.OCIImageIndex, types.DockerManifestList} {
			want, err := ParsePlatform(c.want)
			if err != nil {
				t.Fatal(err)
			}
			d, err := SelectPlatform(makeIndex(t, mt, c.index...), want)
			if c.pick == "" {
				if !errors.Is(err, ErrNoMatchingPlatform) {
					t.Errorf("%v from %v: got %v, want ErrNoMatchingPlatform", c.want, c.index, err)
				}
				continue
			}
			if err != nil {
				t.Errorf("%v from %v: %v", c.want, c.index, err)
			} else if d.Digest.String() != digest.FromString(c.pick).String() {
				t.Errorf("%v from %v: picked %s, want %s", c.want, c.index, FormatPlatform(*d.Platform), c.pick)
			}
		}
	}
}

func TestSelectPlatformErrors(t *testing.T) {
	_, err := SelectPlatform(makeIndex(t, types.OCIImageIndex, "linux/amd64", "linux/arm64/v8", "unknown/unknown"),
		v1.Platform{OS: "linux", Architecture: "s390x"})
	if !errors.Is(err, ErrNoMatchingPlatform) {
		t.Fatal(err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "no matching manifest for linux/s390x") || !strings.Contains(msg, "linux/amd64, linux/arm64/v8") || strings.Contains(msg, "unknown") {
		t.Errorf("message %q should name the wanted and the available platforms", msg)
	}
	if _, err := SelectPlatform([]byte(`{"schemaVersion":2,"mediaType":"`+string(types.OCIManifestSchema1)+`"}`), HostPlatform()); !errors.Is(err, ErrUnsupportedMediaType) {
		t.Errorf("manifest given as index: %v", err)
	}
	if _, err := SelectPlatform([]byte(`not json`), HostPlatform()); !errors.Is(err, ErrInvalidManifest) {
		t.Errorf("garbage index: %v", err)
	}
	if _, err := ParsePlatform("linux//amd64"); err == nil {
		t.Error("ParsePlatform accepted an empty component")
	}
}

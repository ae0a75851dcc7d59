package image

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// HostPlatform is the platform images are pulled for by default.
func HostPlatform() v1.Platform {
	p := v1.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
	if p.Architecture == "arm" {
		p.Variant = "v7"
	}
	return p
}

// FormatPlatform prints p as docker does: "linux/arm64/v8".
func FormatPlatform(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// ParsePlatform parses docker's --platform syntax: "os/arch[/variant]" or
// "arch" alone (meaning linux).
func ParsePlatform(s string) (v1.Platform, error) {
	parts := strings.Split(strings.ToLower(s), "/")
	for _, p := range parts {
		if p == "" {
			return v1.Platform{}, fmt.Errorf("invalid platform %q", s)
		}
	}
	switch len(parts) {
	case 1:
		return v1.Platform{OS: "linux", Architecture: parts[0]}, nil
	case 2:
		return v1.Platform{OS: parts[0], Architecture: parts[1]}, nil
	case 3:
		return v1.Platform{OS: parts[0], Architecture: parts[1], Variant: parts[2]}, nil
	}
	return v1.Platform{}, fmt.Errorf("invalid platform %q", s)
}

// normalizePlatform applies containerd's normalization (which docker uses):
// architecture aliases, arm64's v8 as the default (empty) variant, amd64's v1
// likewise, arm's v7 as the default.
func normalizePlatform(p v1.Platform) v1.Platform {
	p.OS = strings.ToLower(p.OS)
	if p.OS == "" {
		p.OS = "linux"
	}
	p.Architecture = strings.ToLower(p.Architecture)
	p.Variant = strings.ToLower(p.Variant)
	switch p.Architecture {
	case "i386":
		p.Architecture = "386"
		p.Variant = ""
	case "x86_64", "x86-64", "amd64":
		p.Architecture = "amd64"
		if p.Variant == "v1" {
			p.Variant = ""
		}
	case "aarch64", "arm64":
		p.Architecture = "arm64"
		switch p.Variant {
		case "8", "v8", "v8.0":
			p.Variant = ""
		case "9", "9.0", "v9.0":
			p.Variant = "v9"
		}
	case "armhf":
		p.Architecture, p.Variant = "arm", "v7"
	case "armel":
		p.Architecture, p.Variant = "arm", "v6"
	case "arm":
		switch p.Variant {
		case "", "7":
			p.Variant = "v7"
		case "5", "6", "8":
			p.Variant = "v" + p.Variant
		}
	}
	return p
}

// platformVector lists, best first, the platforms a host of platform p can
// run (containerd's platforms.Only): amd64/vN also runs lower amd64 levels and
// 386; arm64 runs arm v8 down to v5; arm/vN runs arm down to v5.
func platformVector(p v1.Platform) []v1.Platform {
	p = normalizePlatform(p)
	vec := []v1.Platform{p}
	variantNum := func(v string) int {
		n, err := strconv.Atoi(strings.TrimPrefix(v, "v"))
		if err != nil {
			return -1
		}
		return n
	}
	switch p.Architecture {
	case "amd64":
		for n := variantNum(p.Variant) - 1; n >= 1; n-- {
			vec = append(vec, normalizePlatform(v1.Platform{OS: p.OS, Architecture: "amd64", Variant: "v" + strconv.Itoa(n)}))
		}
		vec = append(vec, v1.Platform{OS: p.OS, Architecture: "386"})
	case "arm64":
		v := p.Variant
		if v == "" {
			v = "v8"
		}
		vec = append(vec, platformVector(v1.Platform{OS: p.OS, Architecture: "arm", Variant: v})...)
	case "arm":
		for n := variantNum(p.Variant) - 1; n >= 5; n-- {
			vec = append(vec, v1.Platform{OS: p.OS, Architecture: "arm", Variant: "v" + strconv.Itoa(n)})
		}
	}
	return vec
}

func samePlatform(a, b v1.Platform) bool {
	return a.OS == b.OS && a.Architecture == b.Architecture && a.Variant == b.Variant
}

// SelectPlatform picks the manifest for platform p from an OCI image index or
// Docker manifest list, with docker's matching: normalized os/arch/variant,
// an exact match preferred over compatible ones (see platformVector), and
// among equals the first listed. Entries without a platform, or marked
// unknown/unknown (build attestations), are never picked. No match is
// ErrNoMatchingPlatform naming the platforms the index has.
func SelectPlatform(index []byte, p v1.Platform) (v1.Descriptor, error) {
	var idx v1.IndexManifest
	if err := json.Unmarshal(index, &idx); err != nil {
		return v1.Descriptor{}, fmt.Errorf("select platform: %w: %v", ErrInvalidManifest, err)
	}
	if idx.MediaType != "" && !idx.MediaType.IsIndex() {
		return v1.Descriptor{}, fmt.Errorf("select platform: %w: %q is not an index", ErrUnsupportedMediaType, idx.MediaType)
	}
	want := platformVector(p)
	best, bestRank := -1, len(want)
	var available []string
	for i, d := range idx.Manifests {
		if d.Platform == nil || d.Platform.OS == "unknown" || d.Platform.Architecture == "unknown" {
			continue
		}
		// Nested indexes and schema 1 manifests are not images we can run.
		if d.MediaType != "" && !d.MediaType.IsImage() {
			continue
		}
		available = append(available, FormatPlatform(*d.Platform))
		have := normalizePlatform(*d.Platform)
		for rank, w := range want[:bestRank] {
			if samePlatform(have, w) {
				best, bestRank = i, rank
				break
			}
		}
	}
	if best < 0 {
		avail := "none"
		if len(available) > 0 {
			avail = strings.Join(available, ", ")
		}
		return v1.Descriptor{}, fmt.Errorf("%w for %s in the manifest list entries (available: %s)",
			ErrNoMatchingPlatform, FormatPlatform(p), avail)
	}
	return idx.Manifests[best], nil
}

package cli

import (
	"testing"
	"time"

	"github.com/berth-dev/berth/image"
)

// The REPOSITORY[:TAG] argument of `images`: a registry host:port is not a tag.
func TestImageFilterReference(t *testing.T) {
	for _, tc := range []struct {
		arg, ref string
		want     bool
	}{
		{"127.0.0.1:5000/built/app:1", "127.0.0.1:5000/built/app:1", true},
		{"127.0.0.1:5000/built/app", "127.0.0.1:5000/built/app:1", true},
		{"127.0.0.1:5000/built/app:2", "127.0.0.1:5000/built/app:1", false},
		{"busybox", "busybox:latest", true},
		{"busybox:latest", "busybox:latest", true},
		{"busy*", "busybox:latest", true},
		{"busybox:1", "busybox:latest", false},
	} {
		match, err := imageFilter(nil, []string{tc.arg}, nil)
		if err != nil {
			t.Fatal(err)
		}
		r, err := image.ParseReference(tc.ref)
		if err != nil {
			t.Fatal(err)
		}
		if got := match(r, time.Time{}); got != tc.want {
			t.Errorf("images %s on %s: %v, want %v", tc.arg, tc.ref, got, tc.want)
		}
	}
}

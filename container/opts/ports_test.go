package opts

import (
	"strings"
	"testing"

	"github.com/moby/moby/api/types/network"
)

func TestParsePublish(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string // port -> [ip]:hostport, sorted
	}{
		{"80", "80/tcp=:"},
		{"8080:80", "80/tcp=:8080"},
		{"8080:80/udp", "80/udp=:8080"},
		{"127.0.0.1:8080:80", "80/tcp=127.0.0.1:8080"},
		{"127.0.0.1::80", "80/tcp=127.0.0.1:"},
		{"[::1]:8080:80", "80/tcp=::1:8080"},
		{"8000-8001:80-81", "80/tcp=:8000 81/tcp=:8001"},
		{"8000-8010:80", "80/tcp=:8000-8010"},
		{"80-81", "80/tcp=: 81/tcp=:"},
	} {
		pm, exposed, err := ParsePublish([]string{c.in})
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		var got []string
		for _, p := range []string{"80/tcp", "80/udp", "81/tcp"} {
			pp := network.MustParsePort(p)
			for _, b := range pm[pp] {
				ip := ""
				if b.HostIP.IsValid() {
					ip = b.HostIP.String()
				}
				got = append(got, p+"="+ip+":"+b.HostPort)
			}
			if _, ok := pm[pp]; ok {
				if _, ok := exposed[pp]; !ok {
					t.Errorf("%s: %s not exposed", c.in, p)
				}
			}
		}
		if strings.Join(got, " ") != c.want {
			t.Errorf("%s: got %q, want %q", c.in, strings.Join(got, " "), c.want)
		}
	}
	for _, bad := range []string{"", "0", "99999:80", "a:b:c:d", "80/sctpx", "8000-8002:80-81", "x:80:80", "[::1:80:80", "81-80"} {
		if _, _, err := ParsePublish([]string{bad}); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParseExpose(t *testing.T) {
	ps, err := ParseExpose([]string{"80", "53/udp", "1000-1002"})
	if err != nil || len(ps) != 5 {
		t.Fatalf("%v %v", ps, err)
	}
	if _, err := ParseExpose([]string{"x"}); err == nil {
		t.Fatal("bad expose accepted")
	}
}

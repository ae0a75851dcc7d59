package nb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sort"
	"testing"
	"time"

	"github.com/berth-dev/berth/network"
)

func TestPhases(t *testing.T) {
	s, err := network.Open("/tmp/nt1")
	if err != nil { t.Fatal(err) }
	n, err := s.DefaultNetwork()
	if err != nil { t.Fatal(err) }
	var a, b, c []time.Duration
	for i := 0; i < 30; i++ {
		buf := make([]byte, 32); rand.Read(buf); cid := hex.EncodeToString(buf)
		t0 := time.Now()
		p, err := s.CreateNetns(cid)
		if err != nil { t.Fatal(err) }
		t1 := time.Now()
		_, err = s.Attach(context.Background(), cid, p, n, network.EndpointOptions{Name: "x"})
		if err != nil { t.Fatal(err) }
		t2 := time.Now()
		s.Release(context.Background(), cid, false)
		t3 := time.Now()
		a, b, c = append(a, t1.Sub(t0)), append(b, t2.Sub(t1)), append(c, t3.Sub(t2))
	}
	med := func(x []time.Duration) time.Duration { sort.Slice(x, func(i, j int) bool { return x[i] < x[j] }); return x[len(x)/2] }
	t.Logf("median netns %v attach %v release %v", med(a), med(b), med(c))
}

package initplan

import (
	"os"
	"regexp"
	"strconv"
	"testing"
)

// The operation codes here and in plan.h must be the same.
func TestOpsMatchPlanH(t *testing.T) {
	h, err := os.ReadFile("../nsenter/plan.h")
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, m := range regexp.MustCompile(`#define OP_(\w+) (\d+)`).FindAllStringSubmatch(string(h), -1) {
		n, _ := strconv.Atoi(m[2])
		if n >= len(names) || names[n] != m[1] {
			t.Errorf("plan.h OP_%s = %d, initplan has %q there", m[1], n, names[min(n, len(names)-1)])
		}
		found++
	}
	if found != len(names)-1 || int(OpMore) != len(names)-1 {
		t.Errorf("plan.h has %d operations, initplan %d (last %d)", found, len(names)-1, OpMore)
	}
}

func TestEncoding(t *testing.T) {
	var p Plan
	p.Add(OpWrite, "/a", "b", "what")
	p.Add(OpExec, List{"sh", "-c"}, List{})
	b := p.Bytes()
	if string(b[:4]) != "BPL1" || len(b) != 8+4+(4+2)+(4+1)+(4+4)+4+(4+6)+4 {
		t.Fatalf("encoded %q (%d bytes)", b, len(b))
	}
	if got := p.Ops(); len(got) != 2 || got[0] != "WRITE" || got[1] != "EXEC" {
		t.Errorf("ops %v", got)
	}
}

package state

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// A record saved with the config's own bytes loads as one saved by encoding the spec.
func TestSaveConfigJSON(t *testing.T) {
	spec := &specs.Spec{Version: "1.2.0", Hostname: "h", Process: &specs.Process{Args: []string{"sh", "-c", "a && b"}}}
	raw, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	for _, id := range []string{"encoded", "raw"} {
		dir := filepath.Join(root, id)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		s := &State{ID: id, Pid: 42, Created: time.Unix(1, 0).UTC(), Config: spec, Started: true}
		if id == "raw" {
			s.ConfigJSON = raw
		}
		if err := Save(dir, s); err != nil {
			t.Fatal(err)
		}
	}
	a, err := Load(root, "encoded")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Load(root, "raw")
	if err != nil {
		t.Fatal(err)
	}
	b.ID = a.ID
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("loaded differently:\n%+v\n%+v", a, b)
	}
	if !reflect.DeepEqual(b.Config, spec) || !b.Started || b.Pid != 42 {
		t.Fatalf("record %+v, config %+v", b, b.Config)
	}
}

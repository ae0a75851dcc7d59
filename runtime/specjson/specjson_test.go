package specjson

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// fill sets every field reachable from v (two elements per slice and map), so that a marshalled
// Spec exercises every case of the generated decoder.
func fill(v reflect.Value, depth int) {
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), depth)
			}
		}
	case reflect.Ptr:
		if depth > 8 {
			return
		}
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), depth+1)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := 0; i < 2; i++ {
			fill(s.Index(i), depth+1)
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		for _, k := range []string{"a", "b\u00e9<&>"} {
			e := reflect.New(v.Type().Elem()).Elem()
			fill(e, depth+1)
			m.SetMapIndex(reflect.ValueOf(k).Convert(v.Type().Key()), e)
		}
		v.Set(m)
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d \"q\" \\ \n\t\u00e9\u2028<&> \U0001F600", depth))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(-int64(depth + 3))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(depth + 3))
	}
}

func both(t *testing.T, data []byte) (fast bool) {
	t.Helper()
	var want specs.Spec
	werr := json.Unmarshal(data, &want)
	var got specs.Spec
	gerr := Unmarshal(data, &got)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("encoding/json: %v, specjson: %v", werr, gerr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded differently:\n got %+v\nwant %+v", got, want)
	}
	var x specs.Spec
	return decode(data, &x) == nil
}

func TestEveryField(t *testing.T) {
	var s specs.Spec
	fill(reflect.ValueOf(&s).Elem(), 0)
	s.Windows.CredentialSpec = nil // an interface: encoding/json's business
	data, err := json.MarshalIndent(&s, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if !both(t, data) {
		t.Fatal("the generated decoder refused a document encoding/json wrote")
	}
	// Compact and with the escapes Go writes (\u003c, \u0026 ...): the same.
	compact, _ := json.Marshal(&s)
	if !both(t, compact) {
		t.Fatal("refused the compact form")
	}
}

func TestBundleConfig(t *testing.T) {
	for _, p := range []string{os.Getenv("BERTH_BUNDLE") + "/config.json", "../../_build/busybox-bundle/config.json"} {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		if !both(t, data) {
			t.Fatalf("%s: the generated decoder refused it", p)
		}
		return
	}
	t.Skip("no bundle (make bundle)")
}

// Everything the generated decoder does not take gives encoding/json's result.
func TestFallback(t *testing.T) {
	for _, doc := range []string{
		`{"ociVersion":"1.2.0","process":null}`,                     // null
		`{"OCIVERSION":"1.2.0"}`,                                    // another case
		`{"ociVersion":"1.2.0","extension":{"a":[1,2,{"b":null}]}}`, // unknown key
		`{"ociVersion":"1.2.0","ociVersion":"1.3.0"}`,               // repeated key
		`{"process":{"user":{"uid":4294967296}}}`,                   // does not fit
		`{"process":{"user":{"uid":1.0}}}`,                          // not an integer
		`{"process":{"args":["a"],"args":["b"]}}`,                   // repeated list
		`{"linux":{"sysctl":{"a":"1","a":"2"}}}`,                    // repeated map key
		`{"ociVersion":"bad \ud800 surrogate"}`,                     // lone surrogate
		`{"ociVersion":"1.2.0"} trailing`,                           // not JSON
		`{"ociVersion":"1.2.0",}`,                                   // not JSON
		`{"hostname":"x\u0041y","annotations":{}, "mounts":[]}`,     // escapes, empty
		`{"windows":{"credentialSpec":{"x":1}}}`,                    // an interface
		"{\"hostname\":\"\xff\"}",                                   // invalid UTF-8
	} {
		t.Run(strings.NewReplacer(" ", "_").Replace(doc[:min(len(doc), 40)]), func(t *testing.T) {
			both(t, []byte(doc))
		})
	}
}

// decode_gen.go is what the generator writes for the runtime-spec version in go.mod.
func TestGeneratedIsCurrent(t *testing.T) {
	out := filepath.Join(t.TempDir(), "decode_gen.go")
	cmd := exec.Command("go", "run", ".")
	cmd.Dir = "internal/gen"
	cmd.Env = append(os.Environ(), "SPECJSON_OUT="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run ./internal/gen: %v: %s", err, b)
	}
	want, _ := os.ReadFile(out)
	got, _ := os.ReadFile("decode_gen.go")
	if !bytes.Equal(got, want) {
		t.Fatal("decode_gen.go is stale: run go generate ./runtime/specjson")
	}
}

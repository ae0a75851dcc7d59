// Package specjson decodes config.json into runtime-spec's Spec without reflection.
//
// Why: a runtime is a short-lived process, and encoding/json's first decode of a type builds
// its field tables by reflection: for Spec that is most of the 1.3-1.6 ms (3 ms without the
// jsonv2 experiment) berth-runtime spent reading config.json on every container start, while
// the decode itself takes 20-70 us once warm. The decoder here is generated from the Spec type
// (internal/gen) over container/jsonlite's raw values and takes the document as encoders
// write it; anything else (a null where encoding/json leaves a nil, a key in another case, an
// unknown or repeated key, a number that does not fit) goes to encoding/json, so the result
// is always encoding/json's, only faster in the common case.
package specjson

//go:generate sh -c "cd internal/gen && go run ."

import (
	"encoding/json"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Unmarshal decodes data into v as json.Unmarshal would.
func Unmarshal(data []byte, v *specs.Spec) error {
	var fast specs.Spec
	if err := decode(data, &fast); err == nil {
		*v = fast
		return nil
	}
	return json.Unmarshal(data, v)
}

func decode(data []byte, v *specs.Spec) error { return decSpec(data, v) }

package specjson

import (
	"errors"
	"strconv"
	"unicode/utf8"

	"github.com/berth-dev/berth/container/jsonlite"
)

// errFallback: the input is valid JSON for all we know, but not in the form this decoder takes
// (a null where encoding/json would leave a nil, a key in another case, an unknown or repeated
// key, a number that does not fit, malformed text...): encoding/json decides.
var errFallback = errors.New("specjson: fall back to encoding/json")

// The values below are raw JSON values as container/jsonlite hands them out. A null is the
// zero value, as encoding/json leaves a field it does not touch.

func null(b []byte) bool { return string(b) == "null" }

func str(b []byte) (string, error) {
	s, err := jsonlite.String(b)
	if err != nil || !utf8.ValidString(s) { // encoding/json replaces invalid UTF-8
		return "", errFallback
	}
	return s, nil
}

func integer(b []byte, bits int) (int64, error) {
	if null(b) {
		return 0, nil
	}
	n, err := strconv.ParseInt(string(b), 10, bits)
	if err != nil {
		return 0, errFallback
	}
	return n, nil
}

func unsigned(b []byte, bits int) (uint64, error) {
	if null(b) {
		return 0, nil
	}
	n, err := strconv.ParseUint(string(b), 10, bits)
	if err != nil {
		return 0, errFallback
	}
	return n, nil
}

func boolean(b []byte) (bool, error) {
	v, err := jsonlite.ParseBool(b)
	if err != nil {
		return false, errFallback
	}
	return v, nil
}

// object and array wrap jsonlite's: any error means encoding/json decides.
func object(b []byte, fn func(key string, val []byte) error) error {
	if err := jsonlite.Object(b, fn); err != nil {
		return errFallback
	}
	return nil
}

func array(b []byte, fn func(val []byte) error) error {
	if err := jsonlite.Array(b, fn); err != nil {
		return errFallback
	}
	return nil
}

// seen marks field bit in *mask and reports a repeated key (encoding/json merges those).
func seen(mask *uint64, bit uint) error {
	if *mask&(1<<bit) != 0 {
		return errFallback
	}
	*mask |= 1 << bit
	return nil
}

package logfile

import (
	"errors"
	"time"

	"github.com/berth-dev/berth/container/jsonlite"
)

// appendEntry appends one json-file line for line read from stream at t.
func appendEntry(dst, line []byte, stream string, t time.Time) []byte {
	dst = append(dst, `{"log":`...)
	dst = jsonlite.AppendString(dst, line)
	dst = append(dst, `,"stream":`...)
	dst = jsonlite.AppendString(dst, stream)
	dst = append(dst, `,"time":"`...)
	dst = t.UTC().AppendFormat(dst, time.RFC3339Nano)
	return append(dst, "\"}\n"...)
}

var errSyntax = errors.New("logfile: malformed json-file entry")

// parseEntry decodes one json-file line (without its newline). Unknown keys are skipped.
func parseEntry(b []byte, e *Entry) error {
	err := jsonlite.Object(b, func(key string, val []byte) error {
		var err error
		switch key {
		case "log":
			e.Line, err = jsonlite.Unquote(val)
		case "stream":
			e.Stream, err = jsonlite.String(val)
		case "time":
			var s string
			if s, err = jsonlite.String(val); err == nil {
				e.Time, err = time.Parse(time.RFC3339Nano, s)
			}
		}
		return err
	})
	if errors.Is(err, jsonlite.ErrSyntax) {
		return errSyntax
	}
	return err
}

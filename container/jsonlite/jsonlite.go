// Package jsonlite is the small JSON codec of berth's lean processes (the container
// monitor, and the json-file log format it writes and the CLI reads): encoding/json
// (reflection) would double the monitor's binary and its resident size. Encoding follows
// encoding/json's output (HTML-safe strings, time.Time as RFC 3339); decoding accepts any
// valid JSON, walks objects and arrays as raw values, and skips what a caller does not ask
// for. container/monitor's json_test.go checks both against encoding/json.
package jsonlite

import (
	"errors"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrSyntax is any malformed input.
var ErrSyntax = errors.New("malformed JSON")

// --- encoding ---

// Writer builds one JSON object (or array) in B.
type Writer struct{ B []byte }

func (w *Writer) Raw(s string) { w.B = append(w.B, s...) }

// key writes `,"k":` (without the comma for the first key of an object).
func (w *Writer) Key(k string) {
	if n := len(w.B); n > 0 && w.B[n-1] != '{' && w.B[n-1] != '[' {
		w.B = append(w.B, ',')
	}
	w.B = AppendString(w.B, k)
	w.B = append(w.B, ':')
}

func (w *Writer) Str(k, v string) {
	w.Key(k)
	w.B = AppendString(w.B, v)
}

func (w *Writer) Int(k string, v int64) {
	w.Key(k)
	w.B = strconv.AppendInt(w.B, v, 10)
}

func (w *Writer) Uint(k string, v uint64) {
	w.Key(k)
	w.B = strconv.AppendUint(w.B, v, 10)
}

func (w *Writer) Bool(k string, v bool) {
	w.Key(k)
	w.B = strconv.AppendBool(w.B, v)
}

func (w *Writer) Time(k string, t time.Time) {
	w.Key(k)
	w.B = append(w.B, '"')
	w.B = t.AppendFormat(w.B, time.RFC3339Nano)
	w.B = append(w.B, '"')
}

func (w *Writer) Strs(k string, v []string) {
	w.Key(k)
	if v == nil {
		w.Raw("null")
		return
	}
	w.B = append(w.B, '[')
	for i, s := range v {
		if i > 0 {
			w.B = append(w.B, ',')
		}
		w.B = AppendString(w.B, s)
	}
	w.B = append(w.B, ']')
}

// AppendString appends s as a JSON string escaped as encoding/json does (HTML-safe, invalid
// UTF-8 replaced by U+FFFD, U+2028/9 escaped), which is also what docker's json-file logs hold.
func AppendString[T ~string | ~[]byte](dst []byte, s T) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// --- decoding ---

// SkipSpace returns the index of the first non-space byte at or after i.
func SkipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// ValueEnd returns the index after the value that starts at b[i], validating it.
func ValueEnd(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, ErrSyntax
	}
	switch c := b[i]; {
	case c == '"':
		for i++; i < len(b); i++ {
			switch b[i] {
			case '\\':
				i++
			case '"':
				return i + 1, nil
			default:
				if b[i] < 0x20 {
					return 0, ErrSyntax
				}
			}
		}
		return 0, ErrSyntax
	case c == '{' || c == '[':
		closing := byte('}')
		if c == '[' {
			closing = ']'
		}
		i = SkipSpace(b, i+1)
		if i < len(b) && b[i] == closing {
			return i + 1, nil
		}
		for {
			if c == '{' {
				if i >= len(b) || b[i] != '"' {
					return 0, ErrSyntax
				}
				end, err := ValueEnd(b, i)
				if err != nil {
					return 0, err
				}
				i = SkipSpace(b, end)
				if i >= len(b) || b[i] != ':' {
					return 0, ErrSyntax
				}
				i = SkipSpace(b, i+1)
			}
			end, err := ValueEnd(b, i)
			if err != nil {
				return 0, err
			}
			i = SkipSpace(b, end)
			if i >= len(b) {
				return 0, ErrSyntax
			}
			if b[i] == closing {
				return i + 1, nil
			}
			if b[i] != ',' {
				return 0, ErrSyntax
			}
			i = SkipSpace(b, i+1)
		}
	default:
		if j, ok := literalEnd(b, i); ok {
			return j, nil
		}
		if j, ok := numberEnd(b, i); ok {
			return j, nil
		}
		return 0, ErrSyntax
	}
}

func literalEnd(b []byte, i int) (int, bool) {
	for _, lit := range []string{"true", "false", "null"} {
		if len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit {
			return i + len(lit), true
		}
	}
	return 0, false
}

// numberEnd returns the end of the JSON number at b[i] (RFC 8259 grammar).
func numberEnd(b []byte, i int) (int, bool) {
	digits := func(i int) int {
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return i
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(i)
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		j := digits(i + 1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}

// Object calls fn with each key and raw value of the object b (null: no call).
func Object(b []byte, fn func(key string, val []byte) error) error {
	i := SkipSpace(b, 0)
	if string(b[i:]) == "null" {
		return nil
	}
	end, err := ValueEnd(b, i)
	if err != nil || b[i] != '{' || SkipSpace(b, end) != len(b) {
		return ErrSyntax
	}
	i = SkipSpace(b, i+1)
	for i < end-1 {
		kend, _ := ValueEnd(b, i)
		key, err := String(b[i:kend])
		if err != nil {
			return err
		}
		i = SkipSpace(b, SkipSpace(b, kend)+1)
		vend, _ := ValueEnd(b, i)
		if err := fn(key, b[i:vend]); err != nil {
			return err
		}
		i = SkipSpace(b, vend)
		if b[i] == ',' {
			i = SkipSpace(b, i+1)
		}
	}
	return nil
}

// Array calls fn with each raw element of the array b (null: no call).
func Array(b []byte, fn func(val []byte) error) error {
	i := SkipSpace(b, 0)
	if string(b[i:]) == "null" {
		return nil
	}
	end, err := ValueEnd(b, i)
	if err != nil || b[i] != '[' || SkipSpace(b, end) != len(b) {
		return ErrSyntax
	}
	i = SkipSpace(b, i+1)
	for i < end-1 {
		vend, _ := ValueEnd(b, i)
		if err := fn(b[i:vend]); err != nil {
			return err
		}
		i = SkipSpace(b, vend)
		if b[i] == ',' {
			i = SkipSpace(b, i+1)
		}
	}
	return nil
}

// String decodes the JSON string b (with its quotes; null is "").
func String(b []byte) (string, error) {
	out, err := Unquote(b)
	return string(out), err
}

// Unquote decodes the JSON string b (with its quotes; null is empty) into a new slice.
func Unquote(b []byte) ([]byte, error) {
	if string(b) == "null" {
		return nil, nil
	}
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return nil, ErrSyntax
	}
	q := b[1 : len(b)-1]
	simple := true
	for _, c := range q {
		if c == '\\' || c >= utf8.RuneSelf {
			simple = false
			break
		}
	}
	if simple {
		return append([]byte(nil), q...), nil
	}
	out := make([]byte, 0, len(q))
	for i := 0; i < len(q); {
		c := q[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(q[i:])
			out = utf8.AppendRune(out, r) // invalid UTF-8 becomes U+FFFD, as encoding/json
			i += size
			continue
		}
		if c != '\\' {
			out = append(out, c)
			i++
			continue
		}
		if i+1 >= len(q) {
			return nil, ErrSyntax
		}
		switch q[i+1] {
		case '"', '\\', '/':
			out = append(out, q[i+1])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(q, i+2)
			if !ok {
				return nil, ErrSyntax
			}
			i += 6
			if utf16.IsSurrogate(r) {
				if r2, ok := hex4(q, i+2); ok && i+1 < len(q) && q[i] == '\\' && q[i+1] == 'u' {
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						out = utf8.AppendRune(out, d)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			out = utf8.AppendRune(out, r)
			continue
		default:
			return nil, ErrSyntax
		}
		i += 2
	}
	return out, nil
}

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

func ParseInt(b []byte) (int64, error) {
	if string(b) == "null" {
		return 0, nil
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return 0, ErrSyntax
	}
	return n, nil
}

func ParseBool(b []byte) (bool, error) {
	switch string(b) {
	case "true":
		return true, nil
	case "false", "null":
		return false, nil
	}
	return false, ErrSyntax
}

func Strings(b []byte) ([]string, error) {
	var out []string
	err := Array(b, func(v []byte) error {
		s, err := String(v)
		out = append(out, s)
		return err
	})
	return out, err
}

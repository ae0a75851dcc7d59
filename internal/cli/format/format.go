// Package format renders command output the way the docker CLI does: aligned tables with
// upper-case headers, --format Go templates ("table ..." adds the header row, "json" prints one
// JSON object per line), human sizes ("117MB") and times ("2 weeks ago").
package format

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/docker/go-units"
)

// Size prints bytes as docker does (three significant digits, SI units).
func Size(n int64) string { return units.HumanSizeWithPrecision(float64(n), 3) }

// Since prints how long ago t was, as docker's CREATED column.
func Since(t time.Time) string {
	if t.IsZero() {
		return "N/A"
	}
	return units.HumanDuration(time.Since(t)) + " ago"
}

// Truncate shortens s to n characters with an ellipsis, as docker's CREATED BY column.
func Truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

var funcs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"upper":    strings.ToUpper,
	"lower":    strings.ToLower,
	"join":     strings.Join,
	"truncate": func(s string, n int) string { return Truncate(s, n) },
}

// Table renders rows with a template. format is the user's --format ("" = defaultFormat,
// which starts with "table"); headers maps each field to its column title. A "json" format
// prints each row as one JSON line.
func Table(w io.Writer, format, defaultFormat string, headers map[string]string, rows []any) error {
	if format == "" {
		format = defaultFormat
	}
	if format == "json" {
		enc := json.NewEncoder(w)
		for _, r := range rows {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	table := strings.HasPrefix(format, "table")
	if table {
		format = strings.TrimSpace(strings.TrimPrefix(format, "table"))
	}
	// docker accepts "\t" typed literally on the command line.
	format = strings.ReplaceAll(format, `\t`, "\t")
	tmpl, err := template.New("format").Funcs(funcs).Parse(format + "\n")
	if err != nil {
		return fmt.Errorf("invalid --format template: %w", err)
	}
	out := w
	var tw *tabwriter.Writer
	if table {
		tw = tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
		out = tw
		if err := tmpl.Execute(out, headers); err != nil {
			return fmt.Errorf("invalid --format template: %w", err)
		}
	}
	for _, r := range rows {
		if err := tmpl.Execute(out, r); err != nil {
			return fmt.Errorf("--format template: %w", err)
		}
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

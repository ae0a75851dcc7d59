// Command gen writes ../../decode_gen.go: a decoder for runtime-spec's Spec without
// reflection at run time (runtime/specjson says why). Run `go generate ./runtime/specjson`
// after updating github.com/opencontainers/runtime-spec.
package main

import (
	"bytes"
	"fmt"
	"go/format"
	"os"
	"reflect"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

type gen struct {
	done    map[reflect.Type]bool
	queue   []reflect.Type
	imports map[string]string // path -> name
	out     bytes.Buffer
}

func (g *gen) typeExpr(t reflect.Type) string {
	if t.Name() != "" && t.PkgPath() != "" {
		name := t.PkgPath()[strings.LastIndex(t.PkgPath(), "/")+1:]
		if t.PkgPath() == "github.com/opencontainers/runtime-spec/specs-go" {
			name = "specs"
		}
		g.imports[t.PkgPath()] = name
		return name + "." + t.Name()
	}
	switch t.Kind() {
	case reflect.Ptr:
		return "*" + g.typeExpr(t.Elem())
	case reflect.Slice:
		return "[]" + g.typeExpr(t.Elem())
	case reflect.Map:
		return "map[" + g.typeExpr(t.Key()) + "]" + g.typeExpr(t.Elem())
	}
	return t.String()
}

func (g *gen) structFunc(t reflect.Type) string {
	if !g.done[t] {
		g.done[t] = true
		g.queue = append(g.queue, t)
	}
	return "dec" + t.Name()
}

// value writes statements that decode the raw JSON value in variable val into target
// (addressable). It reports false when they always return (a kind left to encoding/json).
func (g *gen) value(t reflect.Type, target, val string, depth int) bool {
	w := &g.out
	switch t.Kind() {
	case reflect.Struct:
		fmt.Fprintf(w, "if err := %s(%s, &%s); err != nil { return err }\n", g.structFunc(t), val, target)
	case reflect.Ptr, reflect.Slice, reflect.Map:
		if g.fallsBack(t) {
			fmt.Fprintf(w, "return errFallback\n")
			return false
		}
		// encoding/json leaves these nil for a null; an empty one is not the same.
		fmt.Fprintf(w, "if null(%s) { return errFallback }\n", val)
		switch t.Kind() {
		case reflect.Ptr:
			fmt.Fprintf(w, "%s = new(%s)\n", target, g.typeExpr(t.Elem()))
			if t.Elem().Kind() == reflect.Struct {
				fmt.Fprintf(w, "if err := %s(%s, %s); err != nil { return err }\n", g.structFunc(t.Elem()), val, target)
				return true
			}
			return g.value(t.Elem(), "(*"+target+")", val, depth)
		case reflect.Slice:
			e, ev := fmt.Sprintf("e%d", depth), fmt.Sprintf("v%d", depth)
			fmt.Fprintf(w, "%s = %s{}\n", target, g.typeExpr(t))
			fmt.Fprintf(w, "if err := array(%s, func(%s []byte) error {\nvar %s %s\n", val, ev, e, g.typeExpr(t.Elem()))
			g.value(t.Elem(), e, ev, depth+1)
			fmt.Fprintf(w, "%s = append(%s, %s)\nreturn nil\n}); err != nil { return err }\n", target, target, e)
		case reflect.Map:
			e, ev, k := fmt.Sprintf("e%d", depth), fmt.Sprintf("v%d", depth), fmt.Sprintf("k%d", depth)
			fmt.Fprintf(w, "%s = %s{}\n", target, g.typeExpr(t))
			fmt.Fprintf(w, "if err := object(%s, func(%s string, %s []byte) error {\nvar %s %s\n", val, k, ev, e, g.typeExpr(t.Elem()))
			g.value(t.Elem(), e, ev, depth+1)
			fmt.Fprintf(w, "%s[%s] = %s\nreturn nil\n}); err != nil { return err }\n", target, k, e)
		}
	case reflect.String:
		fmt.Fprintf(w, "{ x, err := str(%s); if err != nil { return err }; %s = %s(x) }\n", val, target, g.typeExpr(t))
	case reflect.Bool:
		fmt.Fprintf(w, "{ x, err := boolean(%s); if err != nil { return err }; %s = %s(x) }\n", val, target, g.typeExpr(t))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		fmt.Fprintf(w, "{ x, err := integer(%s, %d); if err != nil { return err }; %s = %s(x) }\n", val, t.Bits(), target, g.typeExpr(t))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		fmt.Fprintf(w, "{ x, err := unsigned(%s, %d); if err != nil { return err }; %s = %s(x) }\n", val, t.Bits(), target, g.typeExpr(t))
	default: // interfaces, floats: encoding/json's business
		fmt.Fprintf(w, "return errFallback\n")
		return false
	}
	return true
}

// fallsBack says whether a value of type t is always left to encoding/json.
func (g *gen) fallsBack(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Struct, reflect.String, reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16,
		reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32,
		reflect.Uint64:
		return false
	case reflect.Ptr, reflect.Slice:
		return g.fallsBack(t.Elem())
	case reflect.Map:
		return t.Key().Kind() != reflect.String || t.Key().Name() != "string" || g.fallsBack(t.Elem())
	}
	return true
}

func (g *gen) structDecoder(t reflect.Type) {
	w := &g.out
	fmt.Fprintf(w, "\nfunc dec%s(b []byte, v *%s) error {\nvar mask uint64\nreturn object(b, func(k string, val []byte) error {\nswitch k {\n", t.Name(), g.typeExpr(t))
	bit := 0
	names := map[string]bool{}
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() || f.Anonymous && f.Type.Kind() == reflect.Struct {
			continue
		}
		name := f.Name
		if tag, ok := f.Tag.Lookup("json"); ok {
			if tag == "-" {
				continue
			}
			if n, _, _ := strings.Cut(tag, ","); n != "" {
				name = n
			}
		}
		if names[name] {
			panic(fmt.Sprintf("%s: key %q twice", t, name))
		}
		names[name] = true
		if bit >= 64 {
			panic(fmt.Sprintf("%s: more than 64 fields", t))
		}
		fmt.Fprintf(w, "case %q:\nif err := seen(&mask, %d); err != nil { return err }\n", name, bit)
		if g.value(f.Type, "v."+f.Name, "val", 0) {
			fmt.Fprintf(w, "return nil\n")
		}
		bit++
	}
	fmt.Fprintf(w, "}\nreturn errFallback\n})\n}\n")
}

func main() {
	g := &gen{done: map[reflect.Type]bool{}, imports: map[string]string{}}
	g.structFunc(reflect.TypeOf(specs.Spec{}))
	for len(g.queue) > 0 {
		t := g.queue[0]
		g.queue = g.queue[1:]
		g.structDecoder(t)
	}
	var head bytes.Buffer
	head.WriteString("// Code generated by runtime/specjson/internal/gen; DO NOT EDIT.\n\n" +
		"//lint:file-ignore SA1019 every field of the spec is decoded, the deprecated ones too.\n\n" +
		"package specjson\n\nimport (\n")
	var paths []string
	for p := range g.imports {
		paths = append(paths, p)
	}
	// The standard library first, then the others, as goimports groups them.
	std := func(p string) bool { return !strings.Contains(strings.Split(p, "/")[0], ".") }
	sort.Slice(paths, func(i, j int) bool {
		if std(paths[i]) != std(paths[j]) {
			return std(paths[i])
		}
		return paths[i] < paths[j]
	})
	for i, p := range paths {
		if i > 0 && std(paths[i-1]) && !std(p) {
			head.WriteString("\n")
		}
		if g.imports[p] == "specs" {
			fmt.Fprintf(&head, "specs %q\n", p)
		} else {
			fmt.Fprintf(&head, "%q\n", p)
		}
	}
	head.WriteString(")\n")
	out := "../../decode_gen.go"
	if o := os.Getenv("SPECJSON_OUT"); o != "" { // the freshness test
		out = o
	}
	src, err := format.Source(append(head.Bytes(), g.out.Bytes()...))
	if err != nil {
		os.WriteFile(out, append(head.Bytes(), g.out.Bytes()...), 0o644)
		panic(err)
	}
	if err := os.WriteFile(out, src, 0o644); err != nil {
		panic(err)
	}
}

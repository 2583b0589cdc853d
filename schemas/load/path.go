package load

import (
	"reflect"
	"strconv"
	"strings"

	"github.com/gitgate/gitgate/schemas"
)

// Paths are kept as segments: a field or map key is its name, a list index
// is "[N]". formatPath writes them as "routes.api.backends[0].weight"; a key
// that is not a plain name is quoted: routes["v1.api"].

func formatPath(p []string) string {
	var b strings.Builder
	for i, s := range p {
		switch {
		case strings.HasPrefix(s, "["):
			b.WriteString(s)
		case plainName(s):
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(s)
		default:
			b.WriteByte('[')
			b.WriteString(strconv.Quote(s))
			b.WriteByte(']')
		}
	}
	return b.String()
}

func plainName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

var configType = reflect.TypeFor[schemas.Config]()

// cuePath converts a CUE error path, where list indices are bare numbers,
// into segments, using the Go types to tell list indices from keys.
func cuePath(p []string) []string {
	out := make([]string, 0, len(p))
	t := configType
	for _, s := range p {
		if t != nil && t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch {
		case t != nil && t.Kind() == reflect.Slice:
			out = append(out, "["+s+"]")
			t = t.Elem()
		case t != nil && t.Kind() == reflect.Map:
			out = append(out, s)
			t = t.Elem()
		case t != nil && t.Kind() == reflect.Struct:
			out = append(out, s)
			t = fieldType(t, s)
		default:
			out = append(out, s)
			t = nil
		}
	}
	return out
}

// fieldType returns the type of the field of struct t whose JSON name is
// name, or nil.
func fieldType(t reflect.Type, name string) reflect.Type {
	for i := range t.NumField() {
		f := t.Field(i)
		if jsonName(f) == name {
			return f.Type
		}
	}
	return nil
}

func jsonName(f reflect.StructField) string {
	tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if tag == "" {
		return f.Name
	}
	return tag
}

// fieldNames returns the JSON field names allowed at the struct that path p
// (segments) lands on, or nil when p is not a struct.
func fieldNames(p []string) []string {
	t := configType
	for _, s := range p {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Slice, reflect.Map:
			t = t.Elem()
		case reflect.Struct:
			t = fieldType(t, s)
			if t == nil {
				return nil
			}
		default:
			return nil
		}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	names := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		names = append(names, jsonName(t.Field(i)))
	}
	return names
}

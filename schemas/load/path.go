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

// closest returns the candidate nearest to s by edit distance when it is
// close enough to be a likely typo, else "".
func closest(s string, candidates []string) string {
	best, bestD := "", len(s)/2+2
	for _, c := range candidates {
		if d := editDistance(strings.ToLower(s), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 30
	}
	// Optimal string alignment distance: a swap of two neighbours ("weigth")
	// costs one, like any other typo.
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

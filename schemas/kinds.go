package schemas

import (
	"reflect"
	"strings"
)

// A policy kind is a pointer field of Policy: its JSON name is the kind's
// name ("rateLimit"), its type the kind's settings. Adding a kind is adding
// the field (and its CUE definition); the kind lists below, the loader's
// exactly-one rule, the gateway's registry check and the diff read the
// fields, so no other list names the kinds.

// policyKind is one pointer field of Policy.
type policyKind struct {
	name  string
	index int
}

var policyKinds = func() []policyKind {
	t := reflect.TypeFor[Policy]()
	var out []policyKind
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Type.Kind() != reflect.Pointer || !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		out = append(out, policyKind{name: name, index: i})
	}
	return out
}()

// PolicyKinds returns the names of every policy kind, in the order of
// Policy's fields.
func PolicyKinds() []string {
	out := make([]string, len(policyKinds))
	for i, k := range policyKinds {
		out[i] = k.name
	}
	return out
}

// Kinds returns the names of the kinds set in p, in field order. A valid
// policy has exactly one.
func (p Policy) Kinds() []string {
	v := reflect.ValueOf(p)
	var out []string
	for _, k := range policyKinds {
		if !v.Field(k.index).IsNil() {
			out = append(out, k.name)
		}
	}
	return out
}

// Kind returns the name of the first kind set in p, or "" when none is.
func (p Policy) Kind() string {
	name, _ := p.Spec()
	return name
}

// Spec returns the name and the settings (a non-nil pointer such as
// *RateLimit) of the first kind set in p, or "" and nil when none is.
func (p Policy) Spec() (string, any) {
	v := reflect.ValueOf(p)
	for _, k := range policyKinds {
		if f := v.Field(k.index); !f.IsNil() {
			return k.name, f.Interface()
		}
	}
	return "", nil
}

// WithSpec returns a policy of kind name with settings spec, a pointer of
// the kind's type; ok is false when name is not a kind or spec has another
// type.
func WithSpec(name string, spec any) (p Policy, ok bool) {
	v := reflect.ValueOf(&p).Elem()
	for _, k := range policyKinds {
		if k.name != name {
			continue
		}
		f := v.Field(k.index)
		sv := reflect.ValueOf(spec)
		if !sv.IsValid() || sv.Type() != f.Type() {
			return Policy{}, false
		}
		f.Set(sv)
		return p, true
	}
	return Policy{}, false
}

// clone copies the settings of every kind set in p (one struct level, what
// ApplyDefaults writes to).
func (p Policy) clone() Policy {
	v := reflect.ValueOf(&p).Elem()
	for _, k := range policyKinds {
		if f := v.Field(k.index); !f.IsNil() {
			c := reflect.New(f.Type().Elem())
			c.Elem().Set(f.Elem())
			f.Set(c)
		}
	}
	return p
}

package policy

import (
	"fmt"
	"maps"
	"slices"
)

// A kind of policy is registered once, in the init function of the file
// that implements it, under the JSON name of its field in schemas.Policy:
//
//	func init() { registerKind("cors", runFirst, compileCORS) }
//
// Compile finds a policy's kind by that name (schemas.Policy.Spec) and calls
// the registered compile function; Wrap orders the chain by the kind's
// order. Nothing else in the gateway lists the kinds.

// build is what a kind's compile function gets for one policy.
type build struct {
	// set is the Set being compiled: options, metrics, state handed on.
	set *Set
	// prev is the Set of the running config, nil on the first compile.
	prev *Set
	// name is the policy's name, path its settings' field path
	// ("policies.<name>.<kind>").
	name, path string
	diags      *diagnostics
}

// problem reports a problem with the field at b.path+field.
func (b *build) problem(field, format string, args ...any) {
	b.diags.add(b.path+field, fmt.Sprintf(format, args...))
}

// kindOrder places a kind's policies in a route's chain.
type kindOrder int

const (
	// runFirst kinds run before the others, whatever the route's order
	// (cors: a preflight is answered before any auth policy, and refusals
	// still carry CORS headers).
	runFirst kindOrder = iota
	// inOrder kinds run in the order the route lists them.
	inOrder
)

// kind is one registered policy kind.
type kind struct {
	name  string
	order kindOrder
	// compile builds the middleware from spec, the non-nil settings
	// pointer of the kind's schemas type; it returns nil after reporting
	// problems with b.problem or b.diags.
	compile func(b *build, spec any) middleware
}

var kinds = map[string]kind{}

// registerKind makes the kind name known to Compile. compile receives the
// kind's settings type T (such as schemas.CORS). It panics on a second
// registration of one name: two files claim the same kind.
func registerKind[T any](name string, order kindOrder, compile func(b *build, spec *T) middleware) {
	if _, dup := kinds[name]; dup {
		panic(fmt.Sprintf("policy kind %q registered twice", name))
	}
	kinds[name] = kind{name: name, order: order, compile: func(b *build, spec any) middleware {
		t, ok := spec.(*T)
		if !ok {
			b.problem("", "policy kind %q expects settings of type %T, got %T", name, (*T)(nil), spec)
			return nil
		}
		return compile(b, t)
	}}
}

// registeredKinds returns the registered kind names, sorted.
func registeredKinds() []string { return slices.Sorted(maps.Keys(kinds)) }

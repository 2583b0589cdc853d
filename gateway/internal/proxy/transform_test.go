package proxy

import (
	"maps"
	"math/rand/v2"
	"net/http"
	"net/textproto"
	"reflect"
	"slices"
	"testing"

	"github.com/gitgate/gitgate/gateway/internal/headers"
	"github.com/gitgate/gitgate/schemas"
)

// The value list a set shares with every request stays as compiled,
// whatever a request's header does with it after: an add of the same
// name by the same ops, or an append by a later stage.
func TestHeaderOpsSetSharesNoGrowth(t *testing.T) {
	t.Parallel()
	ops := compileHeaderOps(&schemas.HeaderOps{
		Set: map[string]string{"x-env": "prod", "X-Tier": "gold"},
		Add: map[string]string{"X-Env": "extra"},
	}, "route", func(path, format string, args ...any) { t.Fatalf(format, args...) })
	for i := range 3 {
		h := http.Header{"X-Env": {"client"}, "X_env": {"alias"}}
		ops.apply(h)
		want := http.Header{"X-Env": {"prod", "extra"}, "X-Tier": {"gold"}}
		if !reflect.DeepEqual(h, want) {
			t.Fatalf("request %d: header %v, want %v", i, h, want)
		}
		h["X-Tier"] = append(h["X-Tier"], "late") // a later stage adds
		h["X-Tier"][0] = "changed"                // or rewrites its copy
	}
}

// apply's one pass over the header removes what removing and setting the
// names one after the other did (nameByName), for every mix of spellings:
// of two set names that are spellings of one another, only the later is
// left. Set names are distinct in canonical form, as the order between
// two that are not is not defined.
func TestHeaderOpsApplyInOnePass(t *testing.T) {
	t.Parallel()
	names := []string{"X-Tenant", "X_Tenant", "x-tenant", "X_tenant", "X-Debug", "X_Debug", "X-Other", "Accept"}
	setNames := []string{"X-Tenant", "X_tenant", "X-Debug", "X_debug", "X-Other", "Accept"}
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range 500 {
		spec := &schemas.HeaderOps{Set: map[string]string{}, Add: map[string]string{}}
		for _, n := range names {
			switch rnd.IntN(4) {
			case 0:
				spec.Remove = append(spec.Remove, n)
			case 1:
				spec.Add[n] = "add-" + n
			}
		}
		for _, n := range setNames {
			if rnd.IntN(3) == 0 {
				spec.Set[n] = "set-" + n
			}
		}
		ops := compileHeaderOps(spec, "route", func(path, format string, args ...any) { t.Fatalf(format, args...) })
		if ops == nil {
			continue
		}
		in := http.Header{}
		for _, n := range names {
			if rnd.IntN(2) == 0 {
				in[n] = []string{"client-" + n}
			}
		}
		got, want := in.Clone(), in.Clone()
		ops.apply(got)
		nameByName(want, spec, ops.add)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("case %d: ops %+v on %v:\none pass %v\nname by name %v", i, spec, in, got, want)
		}
	}
}

// nameByName is apply as it was before its one pass: each removed name,
// then each set name in key order, loses every spelling before it is set;
// then add (compiled, so that two adds of one name keep apply's order).
func nameByName(h http.Header, spec *schemas.HeaderOps, add []kv) {
	for _, n := range spec.Remove {
		headers.DeleteAll(h, textproto.CanonicalMIMEHeaderKey(n))
	}
	set := map[string]string{}
	for n, v := range spec.Set {
		set[textproto.CanonicalMIMEHeaderKey(n)] = v
	}
	for _, k := range slices.Sorted(maps.Keys(set)) {
		headers.DeleteAll(h, k)
		h[k] = []string{set[k]}
	}
	for _, e := range add {
		h[e.k] = append(h[e.k], e.v)
	}
}

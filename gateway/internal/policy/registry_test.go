package policy

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/schemas"
	"github.com/gitgate/gitgate/schemas/rules"
)

// stampSpec is the settings of testStamp, a kind that exists only in this
// file: it sets a request header. It shows what a new kind takes: one file
// that registers itself. (A real kind also adds its field to
// schemas.Policy and its CUE definition, so that a config can carry it.)
type stampSpec struct {
	Header string
	Value  string
}

type stamp struct{ header, value string }

func (s *stamp) wrap(_ string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Set(s.header, s.value)
		next.ServeHTTP(w, r)
	})
}

func init() {
	registerKind("testStamp", inOrder, func(b *build, spec *stampSpec) middleware {
		if !rules.Token(spec.Header) {
			b.problem(".header", "%q is not a valid header name", spec.Header)
			return nil
		}
		return &stamp{header: http.CanonicalHeaderKey(spec.Header), value: spec.Value}
	})
}

// TestRegisteredKindEndToEnd compiles the test-only kind next to a real one
// and serves a request through the chain Wrap builds.
func TestRegisteredKindEndToEnd(t *testing.T) {
	t.Parallel()
	specs := map[string]policySpec{
		"stamp": {kind: "testStamp", spec: &stampSpec{Header: "X-Stamp", Value: "v1"}},
		"deny":  {kind: "ipDeny", spec: &schemas.IPList{CIDRs: []string{"192.0.2.0/24"}}},
	}
	set, err := compileSpecs(specs, nil, Options{}, nil)
	if err != nil {
		t.Fatalf("compileSpecs: %v", err)
	}
	up := newUpstream(t)
	srv := httptest.NewServer(set.Wrap("r", []string{"deny", "stamp"}, proxyTo(t, up)))
	t.Cleanup(srv.Close)
	g := &gateway{set: set, up: up, srv: srv}
	res := g.do(t, http.MethodGet, "/", nil)
	if res.status != http.StatusOK || res.seen.Header.Get("X-Stamp") != "v1" {
		t.Fatalf("status %d, upstream saw X-Stamp %q; want 200 and v1", res.status, res.seen.Header.Get("X-Stamp"))
	}
}

func TestRegisteredKindProblems(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		spec     policySpec
		wantPath string
		wantMsg  string
	}{
		{"the kind's own check", policySpec{kind: "testStamp", spec: &stampSpec{Header: "bad header"}},
			"policies.p.testStamp.header", "not a valid header name"},
		{"settings of another type", policySpec{kind: "testStamp", spec: &schemas.CORS{}},
			"policies.p.testStamp", "expects settings of type"},
		{"a kind this gateway does not know", policySpec{kind: "cache", spec: &stampSpec{}},
			"policies.p", `policy kind "cache" is not supported by this gateway`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := compileSpecs(map[string]policySpec{"p": tt.spec}, nil, Options{}, nil)
			var inv *schemas.InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("err = %v, want *schemas.InvalidError", err)
			}
			for _, d := range inv.Diagnostics {
				if d.Path == tt.wantPath && strings.Contains(d.Message, tt.wantMsg) {
					return
				}
			}
			t.Fatalf("no diagnostic at %s containing %q in %v", tt.wantPath, tt.wantMsg, inv)
		})
	}
}

// TestEverySchemaKindIsRegistered keeps schemas.Policy and the registry in
// step: a field without a registered kind would be refused by every
// gateway, a registered kind without a field can never be configured.
func TestEverySchemaKindIsRegistered(t *testing.T) {
	t.Parallel()
	schemaKinds := schemas.PolicyKinds()
	for _, k := range schemaKinds {
		if _, ok := kinds[k]; !ok {
			t.Errorf("schemas.Policy has kind %q but no file of this package registers it", k)
		}
	}
	for _, k := range registeredKinds() {
		if k != "testStamp" && !slices.Contains(schemaKinds, k) {
			t.Errorf("kind %q is registered but schemas.Policy has no field for it", k)
		}
	}
	// Each kind takes the type of its field: empty settings may be refused,
	// but never for their type.
	pt := reflect.TypeFor[schemas.Policy]()
	for i := range pt.NumField() {
		f := pt.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		var diags diagnostics
		s := &Set{policies: map[string]compiled{}, limiters: map[string]*limiterStore{}}
		s.opts.fill()
		s.compilePolicies(map[string]policySpec{"p": {kind: name, spec: reflect.New(f.Type.Elem()).Interface()}}, nil, &diags)
		for _, d := range diags {
			if strings.Contains(d.Message, "expects settings of type") {
				t.Errorf("kind %q: %s", name, d.Message)
			}
		}
	}
}

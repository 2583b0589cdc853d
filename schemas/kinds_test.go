package schemas

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// everyKind is a config with one policy of every kind, each with settings
// that ApplyDefaults completes.
func everyKind(t *testing.T) Config {
	t.Helper()
	c := Config{
		Upstreams: map[string]Upstream{"u": {Targets: []string{"http://127.0.0.1:9"}, HealthCheck: &HealthCheck{}}},
		Routes:    map[string]Route{"r": {Backends: []Backend{{Upstream: "u", Weight: 100}}, Retries: &Retries{}}},
		Policies:  map[string]Policy{},
	}
	for _, name := range PolicyKinds() {
		typ := reflect.TypeOf(Policy{}).Field(fieldIndex(t, name)).Type.Elem()
		p, ok := WithSpec(name, reflect.New(typ).Interface())
		if !ok {
			t.Fatalf("WithSpec(%q) refused its own type", name)
		}
		c.Policies[name] = p
	}
	return c
}

func fieldIndex(t *testing.T, kind string) int {
	t.Helper()
	for _, k := range policyKinds {
		if k.name == kind {
			return k.index
		}
	}
	t.Fatalf("no kind %q", kind)
	return 0
}

func TestPolicyKindsFromFields(t *testing.T) {
	t.Parallel()
	c := everyKind(t)
	if n := reflect.TypeFor[Policy]().NumField(); len(PolicyKinds()) != n {
		t.Fatalf("%d kinds for %d fields of Policy", len(PolicyKinds()), n)
	}
	for name, p := range c.Policies {
		if got := p.Kinds(); len(got) != 1 || got[0] != name || p.Kind() != name {
			t.Errorf("policy of kind %q: Kinds() = %q, Kind() = %q", name, got, p.Kind())
		}
	}
	if _, ok := WithSpec("rateLimit", &CORS{}); ok {
		t.Error("WithSpec accepted settings of another kind")
	}
}

// TestWithDefaultsLeavesTheOriginal checks that WithDefaults copies every
// struct it fills, for every policy kind, so a bundle's digest holds.
func TestWithDefaultsLeavesTheOriginal(t *testing.T) {
	t.Parallel()
	c := everyKind(t)
	before, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	d := c.WithDefaults()
	after, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if string(before) != string(after) {
		t.Fatalf("WithDefaults changed its receiver:\nbefore %s\nafter  %s", before, after)
	}
	if d.Policies["jwt"].JWT.Header != "Authorization" || d.Policies["rateLimit"].RateLimit.Burst != 1 {
		t.Fatalf("defaults not applied to the copy: %+v", d.Policies)
	}
}

func TestPolicyDefaultsFollowRate(t *testing.T) {
	t.Parallel()
	got := Policy{RateLimit: &RateLimit{Rate: 2.5, Key: "route"}}.Defaults()
	want := RateLimit{Per: Duration(1e9), Burst: 3, Key: "client_ip", MaxKeys: DefaultRateLimitMaxKeys, Store: RateLimitStoreLocal}
	if got.RateLimit == nil || *got.RateLimit != want {
		t.Fatalf("Defaults() = %+v, want %+v", got.RateLimit, want)
	}
}

func TestJWTDefaultsFollowJWKSURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		jwt  JWT
		want Duration
	}{
		{"remote JWKS: refresh 5m", JWT{Algorithms: []string{"RS256"}, JWKSURL: "https://idp.test/jwks"}, Duration(5 * time.Minute)},
		{"inline keys: no refresh", JWT{Algorithms: []string{"RS256"}, JWKS: &JWKS{}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := Policy{JWT: &tt.jwt}.Defaults()
			if got.JWT == nil || got.JWT.JWKSRefresh != tt.want || got.JWT.JWKSURL != "" || got.JWT.Header != "Authorization" {
				t.Fatalf("Defaults() = %+v, want jwksRefresh %v, no jwksURL, header Authorization", got.JWT, tt.want)
			}
		})
	}
}

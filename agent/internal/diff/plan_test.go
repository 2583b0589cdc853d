package diff

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gitgate/gitgate/schemas"
)

// route is a small valid route to build test configs from.
func route(host string, backends ...schemas.Backend) schemas.Route {
	return schemas.Route{Match: schemas.Match{Hosts: []string{host}, Path: "/"}, Backends: backends}
}

func be(upstream string, weight int) schemas.Backend {
	return schemas.Backend{Upstream: upstream, Weight: weight}
}

func defaulted(c schemas.Config) *schemas.Config {
	c.ApplyDefaults()
	return &c
}

func TestCompute(t *testing.T) {
	t.Parallel()
	up := schemas.Upstream{Targets: []string{"http://10.0.0.1:8080"}}
	tests := []struct {
		name     string
		old, new *schemas.Config
		want     []Change
	}{
		{name: "both nil", want: nil},
		{name: "empty and nil", old: &schemas.Config{}, want: nil},
		{
			name: "identical",
			old:  defaulted(schemas.Config{Routes: map[string]schemas.Route{"web": route("a", be("s", 100))}}),
			new:  defaulted(schemas.Config{Routes: map[string]schemas.Route{"web": route("a", be("s", 100))}}),
			want: nil,
		},
		{
			name: "route created",
			new:  &schemas.Config{Routes: map[string]schemas.Route{"api": route("api.example.com", be("api", 100))}},
			want: []Change{{Action: ActionCreate, Kind: KindRoute, Name: "api", Fields: []Field{
				{Path: "backends", New: "api 100"},
				{Path: "match.hosts", New: "[api.example.com]"},
			}}},
		},
		{
			name: "created route lists only fields set away from their defaults",
			new: defaulted(schemas.Config{Routes: map[string]schemas.Route{"api": func() schemas.Route {
				r := route("api.example.com", be("api", 100))
				r.Match.Path = "/v1"
				r.Timeout = schemas.Duration(30 * time.Second) // the default, written out
				r.MaxBodyBytes = 1 << 20
				return r
			}()}}),
			want: []Change{{Action: ActionCreate, Kind: KindRoute, Name: "api", Fields: []Field{
				{Path: "backends", New: "api 100"},
				{Path: "match.hosts", New: "[api.example.com]"},
				{Path: "match.path", New: "/v1"},
				{Path: "maxBodyBytes", New: "1048576"},
			}}},
		},
		{
			name: "created blocks left at their defaults still show",
			new: defaulted(schemas.Config{
				Routes:    map[string]schemas.Route{"r": {Backends: []schemas.Backend{be("u", 100)}, Retries: &schemas.Retries{}}},
				Upstreams: map[string]schemas.Upstream{"u": {Targets: []string{"http://u"}, HealthCheck: &schemas.HealthCheck{Path: "/ready"}, CircuitBreaker: &schemas.CircuitBreaker{}}},
			}),
			want: []Change{
				{Action: ActionCreate, Kind: KindRoute, Name: "r", Fields: []Field{
					{Path: "backends", New: "u 100"},
					{Path: "match", New: "(defaults)"},
					{Path: "retries", New: "(defaults)"},
				}},
				{Action: ActionCreate, Kind: KindUpstream, Name: "u", Fields: []Field{
					{Path: "circuitBreaker", New: "(defaults)"},
					{Path: "healthCheck.path", New: "/ready"},
					{Path: "targets", New: "[http://u]"},
				}},
			},
		},
		{
			name: "created rate limit hides its defaults",
			new:  defaulted(schemas.Config{Policies: map[string]schemas.Policy{"rl": {RateLimit: &schemas.RateLimit{Rate: 2.5, Key: "header:X-User"}}}}),
			want: []Change{{Action: ActionCreate, Kind: KindPolicy, Name: "rl", Fields: []Field{
				{Path: "rateLimit.key", New: "header:X-User"},
				{Path: "rateLimit.rate", New: "2.5"},
			}}},
		},
		{
			name: "rate limit moved to a redis store shows the defaults it gains",
			old:  defaulted(schemas.Config{Policies: map[string]schemas.Policy{"rl": {RateLimit: &schemas.RateLimit{Rate: 100}}}}),
			new: defaulted(schemas.Config{Policies: map[string]schemas.Policy{"rl": {RateLimit: &schemas.RateLimit{Rate: 100, Store: "redis",
				Redis: &schemas.RedisStore{Address: "redis.internal:6379", PasswordRef: &schemas.SecretRef{Env: "REDIS_PASSWORD"}}}}}}),
			want: []Change{{Action: ActionUpdate, Kind: KindPolicy, Name: "rl", Fields: []Field{
				{Path: "rateLimit.onStoreError", New: "local"},
				{Path: "rateLimit.redis.address", New: "redis.internal:6379"},
				{Path: "rateLimit.redis.keyPrefix", New: "gitgate:ratelimit:"},
				{Path: "rateLimit.redis.passwordRef.env", New: "REDIS_PASSWORD"},
				{Path: "rateLimit.redis.timeout", New: "50ms"},
				{Path: "rateLimit.store", Old: "local", New: "redis"},
			}}},
		},
		{
			name: "upstream deleted",
			old:  &schemas.Config{Upstreams: map[string]schemas.Upstream{"legacy": up}},
			new:  &schemas.Config{},
			want: []Change{{Action: ActionDelete, Kind: KindUpstream, Name: "legacy"}},
		},
		{
			name: "weights shifted",
			old:  &schemas.Config{Routes: map[string]schemas.Route{"web": route("a", be("stable", 90), be("canary", 10))}},
			new:  &schemas.Config{Routes: map[string]schemas.Route{"web": route("a", be("stable", 75), be("canary", 25))}},
			want: []Change{{Action: ActionUpdate, Kind: KindRoute, Name: "web", Fields: []Field{
				{Path: "backends", Old: "stable 90, canary 10", New: "stable 75, canary 25", Note: "stable 90→75, canary 10→25"},
			}}},
		},
		{
			name: "backend added and removed",
			old:  &schemas.Config{Routes: map[string]schemas.Route{"web": route("a", be("old", 20), be("stable", 80))}},
			new:  &schemas.Config{Routes: map[string]schemas.Route{"web": route("a", be("stable", 90), be("canary", 10))}},
			want: []Change{{Action: ActionUpdate, Kind: KindRoute, Name: "web", Fields: []Field{
				{Path: "backends", Old: "old 20, stable 80", New: "stable 90, canary 10", Note: "stable 80→90, +canary 10, -old 20"},
			}}},
		},
		{
			name: "route turned into a maintenance page, compression and redirect edited",
			old: defaulted(schemas.Config{Routes: map[string]schemas.Route{
				"web": route("a", be("s", 100)),
				"old": {Match: schemas.Match{Path: "/old"}, Redirect: &schemas.Redirect{Prefix: "/new"}},
				"api": func() schemas.Route {
					r := route("api", be("s", 100))
					r.Compress = &schemas.Compress{}
					return r
				}(),
			}}),
			new: defaulted(schemas.Config{Routes: map[string]schemas.Route{
				"web": {Match: schemas.Match{Hosts: []string{"a"}, Path: "/"}, DirectResponse: &schemas.DirectResponse{Status: 503, Body: "down"}},
				"old": {Match: schemas.Match{Path: "/old"}, Redirect: &schemas.Redirect{Prefix: "/new", Status: 301}},
				"api": func() schemas.Route {
					r := route("api", be("s", 100))
					r.Compress = &schemas.Compress{Algorithms: []string{"gzip"}, MinBytes: 256}
					return r
				}(),
			}}),
			want: []Change{
				{Action: ActionUpdate, Kind: KindRoute, Name: "api", Fields: []Field{
					{Path: "compress.algorithms", Old: "[zstd, gzip]", New: "[gzip]", Note: "removed zstd"},
					{Path: "compress.minBytes", Old: "1024", New: "256"},
				}},
				{Action: ActionUpdate, Kind: KindRoute, Name: "old", Fields: []Field{
					{Path: "redirect.status", Old: "302", New: "301"},
				}},
				{Action: ActionUpdate, Kind: KindRoute, Name: "web", Fields: []Field{
					{Path: "backends", Old: "s 100", Note: "-s 100"},
					{Path: "directResponse.body", New: "down"},
					{Path: "directResponse.contentType", New: `"text/plain; charset=utf-8"`},
					{Path: "directResponse.status", New: "503"},
				}},
			},
		},
		{
			name: "cache ttl changed",
			old: defaulted(schemas.Config{Routes: map[string]schemas.Route{"web": func() schemas.Route {
				r := route("a", be("s", 100))
				r.Cache = &schemas.RouteCache{TTL: schemas.Duration(time.Minute)}
				return r
			}()}}),
			new: defaulted(schemas.Config{Routes: map[string]schemas.Route{"web": func() schemas.Route {
				r := route("a", be("s", 100))
				r.Cache = &schemas.RouteCache{TTL: schemas.Duration(5 * time.Minute), Key: &schemas.CacheKey{Query: []string{"page"}}}
				return r
			}()}}),
			want: []Change{{Action: ActionUpdate, Kind: KindRoute, Name: "web", Fields: []Field{
				{Path: "cache.key.query", New: "[page]", Note: "added page"},
				{Path: "cache.ttl", Old: "1m0s", New: "5m0s"},
			}}},
		},
		{
			name: "policy attached and detached",
			old: &schemas.Config{Routes: map[string]schemas.Route{"web": func() schemas.Route {
				r := route("a", be("s", 100))
				r.Policies = []string{"cors", "ratelimit"}
				return r
			}()}},
			new: &schemas.Config{Routes: map[string]schemas.Route{"web": func() schemas.Route {
				r := route("a", be("s", 100))
				r.Policies = []string{"ratelimit", "jwt"}
				return r
			}()}},
			want: []Change{{Action: ActionUpdate, Kind: KindRoute, Name: "web", Fields: []Field{
				{Path: "policies", Old: "[cors, ratelimit]", New: "[ratelimit, jwt]", Note: "attached jwt; detached cors"},
			}}},
		},
		{
			name: "first policy attached",
			old:  &schemas.Config{Routes: map[string]schemas.Route{"web": route("a", be("s", 100))}},
			new: &schemas.Config{Routes: map[string]schemas.Route{"web": func() schemas.Route {
				r := route("a", be("s", 100))
				r.Policies = []string{"ratelimit"}
				return r
			}()}},
			want: []Change{{Action: ActionUpdate, Kind: KindRoute, Name: "web", Fields: []Field{
				{Path: "policies", New: "[ratelimit]", Note: "attached ratelimit"},
			}}},
		},
		{
			name: "match hosts, path and timeout changed",
			old: &schemas.Config{Routes: map[string]schemas.Route{"web": func() schemas.Route {
				r := route("a.example.com", be("s", 100))
				r.Timeout = schemas.Duration(30 * time.Second)
				return r
			}()}},
			new: &schemas.Config{Routes: map[string]schemas.Route{"web": func() schemas.Route {
				r := route("b.example.com", be("s", 100))
				r.Match.Path = "/v2"
				r.Timeout = schemas.Duration(10 * time.Second)
				return r
			}()}},
			want: []Change{{Action: ActionUpdate, Kind: KindRoute, Name: "web", Fields: []Field{
				{Path: "match.hosts", Old: "[a.example.com]", New: "[b.example.com]", Note: "added b.example.com; removed a.example.com"},
				{Path: "match.path", Old: "/", New: "/v2"},
				{Path: "timeout", Old: "30s", New: "10s"},
			}}},
		},
		{
			name: "upstream target added",
			old:  &schemas.Config{Upstreams: map[string]schemas.Upstream{"s": up}},
			new:  &schemas.Config{Upstreams: map[string]schemas.Upstream{"s": {Targets: []string{"http://10.0.0.1:8080", "http://10.0.0.2:8080"}}}},
			want: []Change{{Action: ActionUpdate, Kind: KindUpstream, Name: "s", Fields: []Field{
				{Path: "targets", Old: "[http://10.0.0.1:8080]", New: "[http://10.0.0.1:8080, http://10.0.0.2:8080]", Note: "added http://10.0.0.2:8080"},
			}}},
		},
		{
			name: "failover groups reordered",
			old:  &schemas.Config{Upstreams: map[string]schemas.Upstream{"api": {Failover: &schemas.Failover{Groups: []string{"eu", "us"}}}}},
			new:  &schemas.Config{Upstreams: map[string]schemas.Upstream{"api": {Failover: &schemas.Failover{Groups: []string{"us", "eu"}, MinHealthy: 2}}}},
			want: []Change{{Action: ActionUpdate, Kind: KindUpstream, Name: "api", Fields: []Field{
				{Path: "failover.groups", Old: "[eu, us]", New: "[us, eu]", Note: "reordered"},
				{Path: "failover.minHealthy", New: "2"},
			}}},
		},
		{
			name: "api key hash masked, consumer visible",
			old:  &schemas.Config{Policies: map[string]schemas.Policy{"keys": {APIKey: &schemas.APIKey{Keys: map[string]string{"ci": "sha256:aa"}}}}},
			new:  &schemas.Config{Policies: map[string]schemas.Policy{"keys": {APIKey: &schemas.APIKey{Keys: map[string]string{"ci": "sha256:bb", "deploy": "sha256:cc"}}}}},
			want: []Change{{Action: ActionUpdate, Kind: KindPolicy, Name: "keys", Fields: []Field{
				{Path: "apiKey.keys.ci", Old: Sensitive, New: Sensitive, Note: "changed"},
				{Path: "apiKey.keys.deploy", New: Sensitive},
			}}},
		},
		{
			name: "jwt secret reference shown, jwks masked",
			old: &schemas.Config{Policies: map[string]schemas.Policy{"jwt": {JWT: &schemas.JWT{Algorithms: []string{"HS256"},
				Secret: &schemas.SecretRef{Env: "JWT_OLD"}, JWKS: &schemas.JWKS{Keys: []schemas.JWK{{Kty: "RSA", N: "n1", E: "AQAB"}}}}}}},
			new: &schemas.Config{Policies: map[string]schemas.Policy{"jwt": {JWT: &schemas.JWT{Algorithms: []string{"HS256"},
				Secret: &schemas.SecretRef{Env: "JWT_NEW"}, JWKS: &schemas.JWKS{Keys: []schemas.JWK{{Kty: "RSA", N: "n2", E: "AQAB"}}}}}}},
			want: []Change{{Action: ActionUpdate, Kind: KindPolicy, Name: "jwt", Fields: []Field{
				{Path: "jwt.jwks", Old: Sensitive, New: Sensitive, Note: "changed"},
				{Path: "jwt.secret.env", Old: "JWT_OLD", New: "JWT_NEW"},
			}}},
		},
		{
			name: "secret-looking header values masked, others shown",
			old:  &schemas.Config{Routes: map[string]schemas.Route{"web": route("a", be("s", 100))}},
			new: &schemas.Config{Routes: map[string]schemas.Route{"web": func() schemas.Route {
				r := route("a", be("s", 100))
				r.RequestHeaders = &schemas.HeaderOps{Set: map[string]string{"Authorization": "Bearer abc", "X-Env": "prod"}}
				r.Match.Headers = map[string]schemas.StringMatch{"Cookie": {Exact: "session=1"}}
				return r
			}()}},
			want: []Change{{Action: ActionUpdate, Kind: KindRoute, Name: "web", Fields: []Field{
				{Path: "match.headers.Cookie", New: Sensitive},
				{Path: "requestHeaders.set.Authorization", New: Sensitive},
				{Path: "requestHeaders.set.X-Env", New: "prod"},
			}}},
		},
		{
			name: "upstream moved to dns discovery",
			old:  &schemas.Config{Upstreams: map[string]schemas.Upstream{"s": up}},
			new: &schemas.Config{Upstreams: map[string]schemas.Upstream{"s": {Targets: []string{"dns://api.internal:8080"},
				Discovery: &schemas.Discovery{MinInterval: schemas.Duration(5 * time.Second)}}}},
			want: []Change{{Action: ActionUpdate, Kind: KindUpstream, Name: "s", Fields: []Field{
				{Path: "discovery.minInterval", New: "5s"},
				{Path: "targets", Old: "[http://10.0.0.1:8080]", New: "[dns://api.internal:8080]", Note: "added dns://api.internal:8080; removed http://10.0.0.1:8080"},
			}}},
		},
		{
			name: "url credentials hidden",
			old:  &schemas.Config{},
			new:  &schemas.Config{Upstreams: map[string]schemas.Upstream{"s": {Targets: []string{"https://bob:hunter2@10.0.0.1/"}}}},
			want: []Change{{Action: ActionCreate, Kind: KindUpstream, Name: "s", Fields: []Field{
				{Path: "targets", New: "[https://xxxxx@10.0.0.1/]"},
			}}},
		},
		{
			name: "policy kind changed",
			old:  &schemas.Config{Policies: map[string]schemas.Policy{"p": {RateLimit: &schemas.RateLimit{Rate: 10}}}},
			new:  &schemas.Config{Policies: map[string]schemas.Policy{"p": {IPAllow: &schemas.IPList{CIDRs: []string{"10.0.0.0/8"}}}}},
			want: []Change{{Action: ActionUpdate, Kind: KindPolicy, Name: "p", Fields: []Field{
				{Path: "ipAllow.cidrs", New: "[10.0.0.0/8]", Note: "added 10.0.0.0/8"},
				{Path: "rateLimit.rate", Old: "10"},
			}}},
		},
		{
			name: "odd header name quoted in path",
			old:  &schemas.Config{Routes: map[string]schemas.Route{"web": route("a", be("s", 100))}},
			new: &schemas.Config{Routes: map[string]schemas.Route{"web": func() schemas.Route {
				r := route("a", be("s", 100))
				r.ResponseHeaders = &schemas.HeaderOps{Add: map[string]string{"x.trace id": "on, off"}}
				return r
			}()}},
			want: []Change{{Action: ActionUpdate, Kind: KindRoute, Name: "web", Fields: []Field{
				{Path: `responseHeaders.add["x.trace id"]`, New: `"on, off"`},
			}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := Compute(tt.old, tt.new)
			if !reflect.DeepEqual(p.Changes, tt.want) {
				got, _ := json.MarshalIndent(p.Changes, "", "  ")
				want, _ := json.MarshalIndent(tt.want, "", "  ")
				t.Errorf("Compute changes:\n%s\nwant:\n%s", got, want)
			}
			if p.Empty() != (len(tt.want) == 0) {
				t.Errorf("Empty() = %v with %d changes", p.Empty(), len(tt.want))
			}
		})
	}
}

func TestComputeOrderAndSummary(t *testing.T) {
	t.Parallel()
	up := schemas.Upstream{Targets: []string{"http://u"}}
	old := &schemas.Config{
		Upstreams: map[string]schemas.Upstream{"z": up, "a": up},
		Policies:  map[string]schemas.Policy{"p1": {RateLimit: &schemas.RateLimit{Rate: 1}}},
	}
	new := &schemas.Config{
		Routes:    map[string]schemas.Route{"b": route("b", be("a", 100)), "a": route("a", be("a", 100)), "c": route("c", be("a", 100))},
		Upstreams: map[string]schemas.Upstream{"a": {Targets: []string{"http://v"}}, "m": up},
		Policies:  map[string]schemas.Policy{"p1": {RateLimit: &schemas.RateLimit{Rate: 2}}},
	}
	want := []string{"route a", "route b", "route c", "upstream a", "upstream m", "upstream z", "policy p1"}
	first := Compute(old, new)
	var got []string
	for _, c := range first.Changes {
		got = append(got, string(c.Kind)+" "+c.Name)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("order = %q, want %q", got, want)
	}
	// Map iteration is random; the plan must not be.
	for range 20 {
		if again := Compute(old, new); !reflect.DeepEqual(again, first) {
			t.Fatal("Compute is not deterministic")
		}
	}
	wantSum := Summary{
		Routes:    Counts{Create: 3},
		Upstreams: Counts{Create: 1, Update: 1, Delete: 1},
		Policies:  Counts{Update: 1},
		Total:     Counts{Create: 4, Update: 2, Delete: 1},
	}
	if s := first.Summary(); s != wantSum {
		t.Errorf("Summary = %+v, want %+v", s, wantSum)
	}
}

func TestJSONShape(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		plan       *Plan
		wantCounts [3]int // create, update, delete list lengths
	}{
		{name: "empty plan", plan: Compute(nil, nil)},
		{name: "nil plan", plan: nil},
		{name: "realistic plan", plan: Compute(realisticOld(), realisticNew()), wantCounts: [3]int{3, 5, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := tt.plan.JSON()
			if err != nil {
				t.Fatal(err)
			}
			var top map[string]json.RawMessage
			if err := json.Unmarshal(b, &top); err != nil {
				t.Fatal(err)
			}
			if len(top) != 2 || top["changes"] == nil || top["summary"] == nil {
				t.Fatalf("top-level keys of %s: want exactly changes and summary", b)
			}
			var changes map[string][]map[string]any
			if err := json.Unmarshal(top["changes"], &changes); err != nil {
				t.Fatal(err)
			}
			for i, action := range []string{"create", "update", "delete"} {
				list, ok := changes[action]
				if !ok || list == nil {
					t.Errorf("changes.%s missing or null in %s", action, top["changes"])
				}
				if len(list) != tt.wantCounts[i] {
					t.Errorf("len(changes.%s) = %d, want %d", action, len(list), tt.wantCounts[i])
				}
				for _, c := range list {
					if c["kind"] == nil || c["name"] == nil {
						t.Errorf("change %v lacks kind or name", c)
					}
				}
			}
			var sum Summary
			if err := json.Unmarshal(top["summary"], &sum); err != nil {
				t.Fatal(err)
			}
			if sum != tt.plan.Summary() {
				t.Errorf("summary = %+v, want %+v", sum, tt.plan.Summary())
			}
			if sum.Total != (Counts{tt.wantCounts[0], tt.wantCounts[1], tt.wantCounts[2]}) {
				t.Errorf("summary.total = %+v, want %v", sum.Total, tt.wantCounts)
			}
		})
	}
}

// TestSecretsNeverRendered plants distinct secret values everywhere a
// secret may sit and checks that no rendering shows one.
func TestSecretsNeverRendered(t *testing.T) {
	t.Parallel()
	secrets := []string{"S3CRET-hash-1", "S3CRET-jwk-n", "S3CRET-bearer", "S3CRET-cookie", "S3CRET-query", "S3CRET-pw", "S3CRET-user"}
	cfg := func(v string) *schemas.Config {
		r := route("a", be("s", 100))
		r.RequestHeaders = &schemas.HeaderOps{Set: map[string]string{"Authorization": "Bearer S3CRET-bearer" + v}}
		r.ResponseHeaders = &schemas.HeaderOps{Add: map[string]string{"Set-Cookie": "S3CRET-cookie" + v}}
		r.Match.Query = map[string]schemas.StringMatch{"access_token": {Exact: "S3CRET-query" + v}}
		return &schemas.Config{
			Routes:    map[string]schemas.Route{"web": r},
			Upstreams: map[string]schemas.Upstream{"s": {Targets: []string{"https://S3CRET-user:S3CRET-pw" + v + "@h/"}}},
			Policies: map[string]schemas.Policy{
				"keys": {APIKey: &schemas.APIKey{Keys: map[string]string{"ci": "sha256:S3CRET-hash-1" + v}}},
				"jwt":  {JWT: &schemas.JWT{Algorithms: []string{"RS256"}, JWKS: &schemas.JWKS{Keys: []schemas.JWK{{Kty: "RSA", N: "S3CRET-jwk-n" + v}}}}},
			},
		}
	}
	plans := map[string]*Plan{"create": Compute(nil, cfg("a")), "update": Compute(cfg("a"), cfg("b"))}
	for name, p := range plans {
		js, err := p.JSON()
		if err != nil {
			t.Fatal(err)
		}
		for format, out := range map[string]string{"text": p.Text(), "markdown": p.Markdown(0), "json": string(js)} {
			for _, s := range secrets {
				if strings.Contains(out, s) {
					t.Errorf("%s plan rendered as %s shows secret %q:\n%s", name, format, s, out)
				}
			}
			if !strings.Contains(out, Sensitive) {
				t.Errorf("%s plan rendered as %s masks nothing", name, format)
			}
		}
	}
}

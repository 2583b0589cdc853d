package runtime_test

// This test holds the agent and the gateway to one verdict: each shared rule
// (package schemas/rules) is broken once in a config written as YAML, which
// the agent's loader reads from a directory, and once in a bundle built
// from the same document without the loader, which the gateway's engine
// applies. Both must refuse it at the same field path with the same words.
//
// It lives with the gateway because only code under gateway/ may import
// gateway/internal/runtime. Importing schemas/load (and so CUE) here is a
// test dependency only: the gateway binary never links it, which
// schemas/deps_test.go checks.

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/gitgate/gitgate/gateway/internal/runtime"
	"github.com/gitgate/gitgate/schemas"
	"github.com/gitgate/gitgate/schemas/load"
)

// upstreamAndRoute is a valid base the cases add to.
const upstreamAndRoute = `
upstreams:
  u: {targets: ["http://127.0.0.1:9"]}
  v: {targets: ["http://127.0.0.1:10"]}
`

func TestSharedRulesSameVerdict(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		yaml string // added to upstreamAndRoute
		path string // the field both must refuse; "": both accept
	}{
		{"regex over the instruction limit", `
routes:
  r: {match: {path: "/[a-z]{500}[a-z]{500}[a-z]{500}[a-z]{500}[a-z]{100}", pathType: regex}, backends: [{upstream: u, weight: 100}]}
`, "routes.r.match.path"},
		{"regex does not compile", `
routes:
  r: {match: {path: "/a/(b", pathType: regex}, backends: [{upstream: u, weight: 100}]}
`, "routes.r.match.path"},
		{"header regex over the limit", `
routes:
  r: {match: {path: /, headers: {X-A: {regex: "[a-z]{1000}[a-z]{1000}[a-z]{100}"}}}, backends: [{upstream: u, weight: 100}]}
`, "routes.r.match.headers.X-A.regex"},
		{"rewrite regex over the limit", `
routes:
  r: {match: {path: /}, rewrite: {regex: {pattern: "[a-z]{1000}[a-z]{1000}[a-z]{100}", replacement: x}}, backends: [{upstream: u, weight: 100}]}
`, "routes.r.rewrite.regex.pattern"},
		{"string match with two ways", `
routes:
  r: {match: {path: /, headers: {X-A: {exact: a, prefix: b}}}, backends: [{upstream: u, weight: 100}]}
`, "routes.r.match.headers.X-A"},
		{"template parameter inside a segment", `
routes:
  r: {match: {path: "/users/x{id}", pathType: template}, backends: [{upstream: u, weight: 100}]}
`, "routes.r.match.path"},
		{"rewrite parameter without a template", `
routes:
  r: {match: {path: /users}, rewrite: {path: "/v2/{id}"}, backends: [{upstream: u, weight: 100}]}
`, "routes.r.rewrite.path"},
		{"weights not summing to 100", `
routes:
  r: {match: {path: /}, backends: [{upstream: u, weight: 60}, {upstream: v, weight: 30}]}
`, "routes.r.backends"},
		{"one upstream twice", `
routes:
  r: {match: {path: /}, backends: [{upstream: u, weight: 60}, {upstream: u, weight: 40}]}
`, "routes.r.backends[1].upstream"},
		{"cache ttl over maxTtl", `
routes:
  r: {match: {path: /}, backends: [{upstream: u, weight: 100}], cache: {ttl: 2h, maxTtl: 1h}}
`, "routes.r.cache.ttl"},
		{"cache keyed on Authorization", `
routes:
  r: {match: {path: /}, backends: [{upstream: u, weight: 100}], cache: {key: {headers: [authorization]}}}
`, "routes.r.cache.key.headers[0]"},
		{"cache of HEAD alone", `
routes:
  r: {match: {path: /}, backends: [{upstream: u, weight: 100}], cache: {methods: [HEAD]}}
`, "routes.r.cache.methods"},
		{"cache accepted", `
routes:
  r: {match: {path: /}, backends: [{upstream: u, weight: 100}], cache: {ttl: 1m, methods: [GET], key: {query: [page], headers: [X-Tenant]}, maxEntryBytes: 1000}}
`, ""},
		{"unknown upstream", `
routes:
  r: {match: {path: /}, backends: [{upstream: w, weight: 100}]}
`, "routes.r.backends[0].upstream"},
		{"split hashing two attributes", `
routes:
  r: {match: {path: /}, split: {hashOn: {header: X-User, clientIP: true}}, backends: [{upstream: u, weight: 100}]}
`, "routes.r.split.hashOn"},
		{"h2c upgrade", `
routes:
  r: {match: {path: /}, upgrades: [h2c], backends: [{upstream: u, weight: 100}]}
`, "routes.r.upgrades[0]"},
		{"redirect and backends both", `
routes:
  r: {match: {path: /}, redirect: {scheme: https}, backends: [{upstream: u, weight: 100}]}
`, "routes.r.backends"},
		// A cached redirect keeps the first request's query in its
		// Location, and key.query may leave that query out of the key.
		{"cache on a redirect", `
routes:
  r: {match: {path: /}, redirect: {scheme: https}, cache: {ttl: 1m, key: {query: []}}}
`, "routes.r.cache"},
		{"cache on a direct response", `
routes:
  r: {match: {path: /}, directResponse: {body: ok}, cache: {ttl: 1m}}
`, "routes.r.cache"},
		{"neither backends nor an answer", `
routes:
  r: {match: {path: /}}
`, "routes.r.backends"},
		{"redirect prefix on an exact match", `
routes:
  r: {match: {path: /old, pathType: exact}, redirect: {prefix: /new}}
`, "routes.r.redirect.prefix"},
		{"redirect path naming another host", `
routes:
  r: {match: {path: /}, redirect: {path: "//evil.example/x"}}
`, "routes.r.redirect.path"},
		{"redirect path parameter not in the template", `
routes:
  r: {match: {path: "/users/{id}", pathType: template}, redirect: {path: "/u/{uid}"}}
`, "routes.r.redirect.path"},
		{"redirect path parameter without a template", `
routes:
  r: {match: {path: /users}, redirect: {path: "/u/{id}"}}
`, "routes.r.redirect.path"},
		{"redirect status 303", `
routes:
  r: {match: {path: /}, redirect: {status: 303}}
`, "routes.r.redirect.status"},
		{"retries on a redirect", `
routes:
  r: {match: {path: /}, redirect: {scheme: https}, retries: {attempts: 2}}
`, "routes.r.retries"},
		{"direct response body on a 204", `
routes:
  r: {match: {path: /}, directResponse: {status: 204, body: x}}
`, "routes.r.directResponse.body"},
		{"direct response setting Content-Length", `
routes:
  r: {match: {path: /}, directResponse: {body: x, headers: {Content-Length: "9"}}}
`, "routes.r.directResponse.headers.Content-Length"},
		{"compress algorithm twice", `
routes:
  r: {match: {path: /}, compress: {algorithms: [gzip, gzip]}, backends: [{upstream: u, weight: 100}]}
`, "routes.r.compress.algorithms[1]"},
		{"redirect, direct response and compression accepted", `
routes:
  r: {match: {path: /old}, redirect: {scheme: https, prefix: /new, status: 308}}
  t: {match: {path: "/users/{id}", pathType: template}, redirect: {path: "/u/{id}"}}
  d: {match: {path: /robots.txt, pathType: exact}, directResponse: {body: "User-agent: *\n", headers: {Cache-Control: max-age=3600}}}
  c: {match: {path: /c}, compress: {algorithms: [gzip], minBytes: 10, contentTypes: [text/*]}, backends: [{upstream: u, weight: 100}]}
`, ""},
		{"unknown policy", `
routes:
  r: {match: {path: /}, policies: [auht], backends: [{upstream: u, weight: 100}]}
policies:
  auth: {ipAllow: {cidrs: [10.0.0.0/8]}}
`, "routes.r.policies[0]"},
		{"target with credentials", `
upstreams:
  w: {targets: ["http://user:pw@127.0.0.1:9"]}
`, "upstreams.w.targets[0]"},
		{"target with a query", `
upstreams:
  w: {targets: ["http://127.0.0.1:9/?a=b"]}
`, "upstreams.w.targets[0]"},
		{"dns target accepted", `
upstreams:
  w: {targets: ["dns://api.internal.example:8080"], discovery: {minInterval: 2s}}
`, ""},
		{"srv target accepted", `
upstreams:
  w: {targets: ["srv://_http._tcp.api.internal.example"]}
`, ""},
		{"dns target without a port", `
upstreams:
  w: {targets: ["dns://api.internal.example"]}
`, "upstreams.w.targets[0]"},
		{"dns target naming an address", `
upstreams:
  w: {targets: ["dns://10.0.0.1:80"]}
`, "upstreams.w.targets[0]"},
		{"srv target without _tcp", `
upstreams:
  w: {targets: ["srv://_http.api.internal.example"]}
`, "upstreams.w.targets[0]"},
		{"dns target beside another", `
upstreams:
  w: {targets: ["http://127.0.0.1:9", "dns://api.internal.example:80"]}
`, "upstreams.w.targets[1]"},
		{"discovery without a discovery target", `
upstreams:
  w: {targets: ["http://127.0.0.1:9"], discovery: {minInterval: 2s}}
`, "upstreams.w.discovery"},
		{"discovery minInterval above maxInterval", `
upstreams:
  w: {targets: ["dns://api.internal.example:80"], discovery: {minInterval: 2m, maxInterval: 1m}}
`, "upstreams.w.discovery.maxInterval"},
		{"target not http", `
upstreams:
  w: {targets: ["ftp://127.0.0.1"]}
`, "upstreams.w.targets[0]"},
		{"target port out of range", `
upstreams:
  w: {targets: ["http://127.0.0.1:70000"]}
`, "upstreams.w.targets[0]"},
		{"h2 with an http:// target", `
upstreams:
  w: {targets: ["http://127.0.0.1:9"], protocol: h2}
`, "upstreams.w.targets[0]"},
		{"h2c with an https:// target", `
upstreams:
  w: {targets: ["https://127.0.0.1:9"], protocol: h2c}
`, "upstreams.w.targets[0]"},
		{"h2c with an http:// target", `
upstreams:
  w: {targets: ["http://127.0.0.1:9"], protocol: h2c}
`, ""},
		{"gRPC health check over http1", `
upstreams:
  w: {targets: ["http://127.0.0.1:9"], healthCheck: {grpc: {}}}
`, "upstreams.w.healthCheck.grpc"},
		{"hashOn without the hash balancer", `
upstreams:
  w: {targets: ["http://127.0.0.1:9"], hashOn: {clientIP: true}}
`, "upstreams.w.hashOn"},
		{"health check timeout over the interval", `
upstreams:
  w: {targets: ["http://127.0.0.1:9"], healthCheck: {interval: 1s, timeout: 2s}}
`, "upstreams.w.healthCheck.timeout"},
		{"per-try timeout over the default timeout", `
routes:
  r: {match: {path: /}, perTryTimeout: 60s, backends: [{upstream: u, weight: 100}]}
`, "routes.r.perTryTimeout"},
		{"backoffMax under the default backoffBase", `
routes:
  r: {match: {path: /}, retries: {backoffMax: 10ms}, backends: [{upstream: u, weight: 100}]}
`, "routes.r.retries.backoffMax"},
		{"maxEjection under the default baseEjection", `
upstreams:
  w: {targets: ["http://127.0.0.1:9"], outlierDetection: {maxEjection: 10s}}
`, "upstreams.w.outlierDetection.maxEjection"},
		{"upstream tls client certificate without its key", `
upstreams:
  w: {targets: ["https://127.0.0.1:9"], tls: {clientCertRef: {file: /run/tls/client.pem}}}
`, "upstreams.w.tls.clientKeyRef"},
		{"upstream tls reference with env and file", `
upstreams:
  w: {targets: ["https://127.0.0.1:9"], tls: {caRef: {env: CA, file: /run/tls/ca.pem}}}
`, "upstreams.w.tls.caRef"},
		{"failover group unknown", `
upstreams:
  w: {failover: {groups: [u, x]}}
`, "upstreams.w.failover.groups[1]"},
		{"failover group is a failover upstream", `
upstreams:
  w: {failover: {groups: [u, z]}}
  z: {failover: {groups: [v, w]}}
`, "upstreams.w.failover.groups[1]"},
		{"failover group named twice", `
upstreams:
  w: {failover: {groups: [u, v, u]}}
`, "upstreams.w.failover.groups[2]"},
		{"failover without groups", `
upstreams:
  w: {failover: {groups: []}}
`, "upstreams.w.failover.groups"},
		{"failover with targets", `
upstreams:
  w: {targets: ["http://127.0.0.1:9"], failover: {groups: [u, v]}}
`, "upstreams.w.targets"},
		{"failover with a health check", `
upstreams:
  w: {failover: {groups: [u, v]}, healthCheck: {path: /healthz}}
`, "upstreams.w.healthCheck"},
		{"failover upstream as a route backend", `
upstreams:
  w: {failover: {groups: [u, v], minHealthy: 2}}
routes:
  r: {match: {path: /}, backends: [{upstream: w, weight: 90}, {upstream: u, weight: 10}]}
`, ""},
		// Both accept: an unset field takes its default on both sides.
		{"short health interval, timeout unset", `
upstreams:
  w: {targets: ["http://127.0.0.1:9"], healthCheck: {interval: 500ms}}
`, ""},
		{"long per-try timeout within a long timeout", `
routes:
  r: {match: {path: /}, timeout: 2m, perTryTimeout: 60s, backends: [{upstream: u, weight: 100}]}
`, ""},
		{"policy of two kinds", `
policies:
  p: {ipAllow: {cidrs: [10.0.0.0/8]}, ipDeny: {cidrs: [10.1.0.0/16]}}
`, "policies.p"},
		{"HS256 without a secret", `
policies:
  p: {jwt: {algorithms: [HS256]}}
`, "policies.p.jwt.algorithms"},
		{"RS256 without keys", `
policies:
  p: {jwt: {algorithms: [RS256]}}
`, "policies.p.jwt.algorithms"},
		{"secret with both env and file", `
policies:
  p: {jwt: {algorithms: [HS256], secret: {env: JWT_SECRET, file: /run/secret}}}
`, "policies.p.jwt.secret"},
		{"JWKS URL over plain http", `
policies:
  p: {jwt: {algorithms: [RS256], jwksURL: "http://idp.example.com/jwks.json"}}
`, "policies.p.jwt.jwksURL"},
		{"JWKS URL and jwksRef both", `
policies:
  p: {jwt: {algorithms: [RS256], jwksURL: "https://idp.example.com/jwks.json", jwksRef: {file: /run/jwks.json}}}
`, "policies.p.jwt.jwksRef"},
		{"JWKS refresh too short", `
policies:
  p: {jwt: {algorithms: [RS256], jwksURL: "https://idp.example.com/jwks.json", jwksRefresh: 1s}}
`, "policies.p.jwt.jwksRefresh"},
		{"JWKS CA without a URL", `
policies:
  p: {jwt: {algorithms: [HS256], secret: {env: JWT_SECRET}, jwksCARef: {file: /run/ca.pem}}}
`, "policies.p.jwt.jwksCARef"},
		{"redis store without a server", `
policies:
  p: {rateLimit: {rate: 10, store: redis}}
`, "policies.p.rateLimit.redis"},
		{"redis settings on a local store", `
policies:
  p: {rateLimit: {rate: 10, redis: {address: "127.0.0.1:6379"}}}
`, "policies.p.rateLimit.redis"},
		{"redis timeout too long", `
policies:
  p: {rateLimit: {rate: 10, store: redis, redis: {address: "127.0.0.1:6379", timeout: 10s}}}
`, "policies.p.rateLimit.redis.timeout"},
		{"CORS any origin with credentials", `
policies:
  p: {cors: {allowOrigins: ["*"], allowCredentials: true}}
`, "policies.p.cors.allowCredentials"},
		{"CORS origin with a path", `
policies:
  p: {cors: {allowOrigins: ["https://app.example.com/x"]}}
`, "policies.p.cors.allowOrigins[0]"},
		{"CORS null origin", `
policies:
  p: {cors: {allowOrigins: ["null"]}}
`, "policies.p.cors.allowOrigins[0]"},
		{"CIDR with a zone", `
policies:
  p: {ipDeny: {cidrs: ["fe80::1%eth0"]}}
`, "policies.p.ipDeny.cidrs[0]"},
		{"API key in upper-case hex", `
policies:
  p: {apiKey: {keys: {bob: "sha256:` + strings.Repeat("AB", 32) + `"}}}
`, "policies.p.apiKey.keys.bob"},
		{"consumer header the proxy removes", `
policies:
  p: {apiKey: {consumerHeader: Connection, keys: {bob: "sha256:` + strings.Repeat("ab", 32) + `"}}}
`, "policies.p.apiKey.consumerHeader"},
		{"claim header the gateway sets, underscore spelling", `
policies:
  p: {jwt: {algorithms: [HS256], secret: {env: JWT_SECRET}, claimsToHeaders: {sub: X_Forwarded_For}}}
`, "policies.p.jwt.claimsToHeaders.sub"},
		{"identity headers of one's own", `
policies:
  p: {apiKey: {consumerHeader: X-Consumer, keys: {bob: "sha256:` + strings.Repeat("ab", 32) + `"}}}
`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			doc := mergeYAML(t, upstreamAndRoute, tt.yaml)
			if tt.path == "" {
				bothAccept(t, doc)
				return
			}
			agent := agentVerdict(t, doc, tt.path)
			gateway := gatewayVerdict(t, doc, tt.path)
			if len(agent) == 0 || !slices.Equal(agent, gateway) {
				t.Fatalf("at %s\nagent:   %q\ngateway: %q", tt.path, agent, gateway)
			}
		})
	}
}

// bothAccept requires the loader and the engine to accept doc.
func bothAccept(t *testing.T, doc []byte) {
	t.Helper()
	if err := agentLoad(t, doc).Err(); err != nil {
		t.Errorf("agent refused: %v", err)
	}
	e := runtime.New(runtime.Options{})
	t.Cleanup(func() { _ = e.Close() })
	if err := e.Apply(bundleFrom(t, doc)); err != nil {
		t.Errorf("gateway refused: %v", err)
	}
}

// bundleFrom decodes doc into a bundle without the loader. The agent
// pushes configs with defaults applied; ApplyDefaults is idempotent, so a
// bundle without them compiles the same way.
func bundleFrom(t *testing.T, doc []byte) *schemas.Bundle {
	t.Helper()
	var cfg schemas.Config
	if err := yaml.UnmarshalStrict(doc, &cfg); err != nil {
		t.Fatal(err)
	}
	b, err := schemas.NewBundle("v1", schemas.Source{}, cfg, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// mergeYAML returns base with the top-level maps of extra merged in.
func mergeYAML(t *testing.T, base, extra string) []byte {
	t.Helper()
	var a, b map[string]map[string]any
	if err := yaml.Unmarshal([]byte(base), &a); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal([]byte(extra), &b); err != nil {
		t.Fatal(err)
	}
	for k, m := range b {
		if a[k] == nil {
			a[k] = map[string]any{}
		}
		for n, v := range m {
			a[k][n] = v
		}
	}
	out, err := yaml.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// agentVerdict loads doc from a directory with the agent's loader and
// returns the messages of the diagnostics at path.
func agentVerdict(t *testing.T, doc []byte, path string) []string {
	t.Helper()
	return messagesAt(agentLoad(t, doc).Diagnostics, path, "agent", t)
}

// agentLoad writes doc to a config directory and loads it as the agent
// does.
func agentLoad(t *testing.T, doc []byte) load.Result {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "gitgate.yaml"), doc, 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := load.Dir(dir, load.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// gatewayVerdict decodes doc into a bundle without the loader and returns
// the messages of the engine's diagnostics at path.
func gatewayVerdict(t *testing.T, doc []byte, path string) []string {
	t.Helper()
	e := runtime.New(runtime.Options{})
	t.Cleanup(func() { _ = e.Close() })
	err := e.Apply(bundleFrom(t, doc))
	var inv *schemas.InvalidError
	if !errors.As(err, &inv) {
		t.Fatalf("gateway: Apply = %v, want *schemas.InvalidError", err)
	}
	return messagesAt(inv.Diagnostics, path, "gateway", t)
}

func messagesAt(diags []schemas.Diagnostic, path, who string, t *testing.T) []string {
	var out []string
	for _, d := range diags {
		if d.Path == path {
			out = append(out, d.Message)
		}
	}
	if len(out) == 0 {
		t.Errorf("%s: no diagnostic at %s in %v", who, path, diags)
	}
	slices.Sort(out)
	return out
}

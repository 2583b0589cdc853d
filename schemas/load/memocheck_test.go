package load

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// warmConfig is valid and shares its field names, and many of its values,
// with the cases of the fast-path tests, so that those take the
// field-by-field path rather than the first, whole-struct check.
const warmConfig = `upstreams:
  web:
    targets: [http://10.0.0.1:8080]
    healthCheck: {path: /healthz, interval: 5s}
  hashed:
    targets: [http://10.0.0.2:8080]
    balance: hash
    hashOn: {header: X-User}
policies:
  limit:
    rateLimit: {rate: 10, burst: 20}
  keys:
    apiKey:
      keys: {alice: "sha256:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"}
routes:
  a:
    match: {hosts: [a.example.com], path: /a, pathType: prefix, methods: [GET]}
    backends: [{upstream: web, weight: 100}]
    timeout: 15s
    policies: [limit]
  b:
    match:
      path: /b
      headers: {X-Canary: {exact: "1"}}
    backends:
      - {upstream: web, weight: 90}
      - {upstream: hashed, weight: 10}
    retries: {attempts: 2, on: ["502", "503"]}
`

// fastAgrees runs every literal entry of yaml through the fast path and
// the full evaluation, in order and sharing one memo, and fails when the
// fast path accepts what the full evaluation refuses or decodes something
// else. It returns the names of the entries the fast path accepted.
func fastAgrees(t *testing.T, yaml string) map[string]bool {
	t.Helper()
	srcs, diags := parse(File{Path: "c.yaml", Data: []byte(yaml)})
	if len(diags) > 0 {
		return nil
	}
	ctx, defs := newContext()
	idx := newPosIndex(srcs)
	entries, diags := collect(ctx, srcs, idx)
	if len(diags) > 0 {
		return nil
	}
	fc := newFastChecker(ctx, defs, newPassed())
	accepted := make(map[string]bool)
	for _, e := range entries {
		if len(e.parts) != 1 || !e.literal() {
			continue
		}
		fast := make([]decoded, 1)
		var full decoded
		slow := fc.decodeAll([]*entry{e}, []int{0}, fast)
		e.validate(ctx, defs[e.section], &full, idx)
		if len(slow) > 0 {
			continue
		}
		accepted[sections[e.section].name+"."+e.name] = true
		if len(full.diags) > 0 {
			t.Fatalf("fast path accepted %s %s, full evaluation refused it: %v", sections[e.section].name, e.name, full.diags)
		}
		if !reflect.DeepEqual(fast[0], full) {
			t.Fatalf("%s %s decoded differently:\nfast %+v\nfull %+v", sections[e.section].name, e.name, fast[0], full)
		}
	}
	return accepted
}

func TestFastPathAgrees(t *testing.T) {
	t.Parallel()
	route := func(name, body string) string {
		return "routes:\n  " + name + ":\n" + body
	}
	const backends = "    backends: [{upstream: web, weight: 100}]\n"
	tests := []struct {
		name string
		add  string // appended to warmConfig's routes
		fast bool   // whether the fast path must accept the added entry
	}{
		{"same shape new values", route("c", "    match: {hosts: [c.example.com], path: /c, pathType: exact, methods: [POST]}\n"+backends+"    timeout: 1m\n    policies: [keys]\n"), true},
		{"typo in nested struct", route("c", "    match: {hosts: [c.example.com], path: /c, pathType: exact, methodz: [GET]}\n"+backends), false},
		{"bad enum in known shape", route("c", "    match: {hosts: [a.example.com], path: /a, pathType: suffix, methods: [GET]}\n"+backends+"    timeout: 15s\n    policies: [limit]\n"), false},
		{"lower-case method in known shape", route("c", "    match: {hosts: [a.example.com], path: /a, pathType: prefix, methods: [get]}\n"+backends+"    timeout: 15s\n    policies: [limit]\n"), false},
		{"empty path", route("c", "    match: {hosts: [a.example.com], path: \"\", pathType: prefix, methods: [GET]}\n"+backends+"    timeout: 15s\n    policies: [limit]\n"), false},
		{"weight out of range", route("c", "    match: {path: /c}\n    backends: [{upstream: web, weight: 101}]\n"), false},
		{"weight as string", route("c", "    match: {path: /c}\n    backends: [{upstream: web, weight: \"100\"}]\n"), false},
		{"zero duration", route("c", "    match: {hosts: [a.example.com], path: /a, pathType: prefix, methods: [GET]}\n"+backends+"    timeout: 0s\n    policies: [limit]\n"), false},
		{"null field", route("c", "    match: {hosts: [a.example.com], path: /a, pathType: prefix, methods: [GET]}\n"+backends+"    timeout: null\n    policies: [limit]\n"), false},
		{"missing required", route("c", "    match: {path: /c}\n    backends: [{upstream: web}]\n"), false},
		// Exactly one of backends, redirect and directResponse is a Go
		// rule (schemas/rules), checked after CUE: the fast path accepts.
		{"no backends, redirect or direct response", route("c", "    match: {path: /c}\n"), true},
		{"redirect instead of backends", route("c", "    match: {path: /c}\n    redirect: {scheme: https, status: 301}\n"), true},
		{"direct response instead of backends", route("c", "    match: {path: /c}\n    directResponse: {status: 503, body: down}\n"), true},
		{"redirect status out of range", route("c", "    match: {path: /c}\n    redirect: {status: 200}\n"), false},
		{"empty backends", route("c", "    match: {path: /c}\n    backends: []\n"), false},
		{"unknown top-level field", route("c", "    match: {path: /c}\n"+backends+"    timeoutt: 15s\n"), false},
		{"bad header name under known keys", route("c", "    match:\n      path: /b\n      headers: {\"X Canary\": {exact: \"1\"}}\n"+backends+"    retries: {attempts: 2, on: [\"502\", \"503\"]}\n"), false},
		{"unknown string match field", route("c", "    match:\n      path: /b\n      headers: {X-Canary: {exactly: \"1\"}}\n"+backends+"    retries: {attempts: 2, on: [\"502\", \"503\"]}\n"), false},
		{"retries out of range", route("c", "    match:\n      path: /b\n      headers: {X-Canary: {exact: \"1\"}}\n"+backends+"    retries: {attempts: 11, on: [\"502\", \"503\"]}\n"), false},
		{"escapes and unicode", route("c", "    match: {hosts: [a.example.com], path: \"/caf\\u00e9\\t\\\"q\\\"\", pathType: prefix, methods: [GET]}\n"+backends+"    timeout: 15s\n    policies: [limit]\n"), true},
		{"multi-line string", route("c", "    match:\n      hosts: [a.example.com]\n      path: |\n        /a\n        b\n      pathType: prefix\n      methods: [GET]\n"+backends+"    timeout: 15s\n    policies: [limit]\n"), true},
		{"float where int", route("c", "    match: {path: /c}\n    backends: [{upstream: web, weight: 100.0}]\n"), false},
		{"big int", route("c", "    match: {path: /c}\n"+backends+"    maxBodyBytes: 100000000000000000000000\n"), false},
		{"negative priority", route("c", "    match: {path: /c}\n"+backends+"    priority: -5\n"), true},
		{"upstream plain ok", "upstreams:\n  u2:\n    targets: [http://10.0.0.3:8080]\n    healthCheck: {path: /ready, interval: 1s}\n", true},
		{"upstream without targets", "upstreams:\n  u2:\n    healthCheck: {path: /ready, interval: 1s}\n", false},
		{"upstream health path relative", "upstreams:\n  u2:\n    targets: [http://10.0.0.3:8080]\n    healthCheck: {path: ready, interval: 1s}\n", false},
		{"policy typo", "policies:\n  p2:\n    rateLimit: {rate: 10, brust: 20}\n", false},
		{"policy rate zero", "policies:\n  p2:\n    rateLimit: {rate: 0, burst: 20}\n", false},
		{"policy fractional rate", "policies:\n  p2:\n    rateLimit: {rate: 0.5, burst: 20}\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			doc := warmConfig
			if strings.HasPrefix(tt.add, "routes:\n") {
				doc += strings.TrimPrefix(tt.add, "routes:\n")
			} else {
				doc += "---\n" + tt.add
			}
			accepted := fastAgrees(t, doc)
			for _, name := range []string{"routes.a", "routes.b", "upstreams.web", "policies.limit"} {
				if !accepted[name] {
					t.Errorf("fast path refused the valid warm-up entry %s", name)
				}
			}
			added := ""
			for k := range accepted {
				if k == "routes.c" || strings.HasSuffix(k, ".u2") || strings.HasSuffix(k, ".p2") {
					added = k
				}
			}
			if got := added != ""; got != tt.fast {
				t.Errorf("fast path accepted the added entry: %v, want %v", got, tt.fast)
			}
		})
	}
}

// TestFastPathGenerated checks that a generated config validates almost
// entirely on the fast path, and identically to the full evaluation.
func TestFastPathGenerated(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	for _, f := range genConfig(300) {
		b.Write(f.Data)
		b.WriteString("---\n")
	}
	accepted := fastAgrees(t, b.String())
	if len(accepted) != 325 {
		t.Errorf("fast path accepted %d of 325 entries", len(accepted))
	}
}

func TestJSONNumber(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in string
		ok bool
	}{
		{"0", true}, {"10", true}, {"1.5", true}, {"1e3", true}, {"2.5E-3", true},
		{"01", false}, {"0x10", false}, {"0o17", false}, {"1_000", false}, {"1.", false},
		{".5", false}, {"1e", false}, {"", false}, {"+Inf", false}, {"number & 1", false},
	} {
		t.Run(fmt.Sprintf("%q", tt.in), func(t *testing.T) {
			t.Parallel()
			if got := jsonNumber(tt.in); got != tt.ok {
				t.Fatalf("jsonNumber(%q) = %v, want %v", tt.in, got, tt.ok)
			}
		})
	}
}

// FuzzFastPath checks on random input, after the warm-up config, that the
// fast path never accepts what the full evaluation refuses and decodes the
// same values.
func FuzzFastPath(f *testing.F) {
	seedCorpus(f)
	f.Add([]byte("routes:\n  c:\n    match: {hosts: [a.example.com], path: /a, pathType: prefix, methods: [GET]}\n    backends: [{upstream: web, weight: 100}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 16<<10 {
			return
		}
		fastAgrees(t, warmConfig+"---\n"+string(data))
	})
}

// TestContextRenewal validates more invalid entries than one CUE context
// may evaluate, so that workers replace their contexts midway, and checks
// that every entry still gets its diagnostic.
func TestContextRenewal(t *testing.T) {
	t.Parallel()
	const n = 2*contextBudget/fastPerFull + 50
	var b strings.Builder
	b.WriteString("upstreams:\n  web: {targets: [\"http://127.0.0.1:1\"]}\nroutes:\n")
	for i := range n {
		fmt.Fprintf(&b, "  r%d:\n    match: {path: /r%d}\n    backends: [{upstream: web, weight: 100}]\n    timeoutt: 1s\n", i, i)
	}
	res := Files([]File{{Path: "r.yaml", Data: []byte(b.String())}}, Limits{})
	if len(res.Diagnostics) != n {
		t.Fatalf("got %d diagnostics, want one per route (%d)", len(res.Diagnostics), n)
	}
	for _, d := range res.Diagnostics {
		if !strings.Contains(d.Message, `unknown field "timeoutt"`) || d.Line == 0 {
			t.Fatalf("unexpected diagnostic %v", d)
		}
	}
}

// TestBatchedScalars puts one bad scalar, in a shape seen before, among
// many new ones checked in one batch: the batch fails, and exactly the bad
// entry must be reported while the others still validate.
func TestBatchedScalars(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, bad, want string
	}{
		{"empty path", `""`, "routes.r150.match.path"},
		{"path of a number", `150`, "routes.r150.match.path"},
		{"no bad entry", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var b strings.Builder
			b.WriteString("upstreams:\n  web: {targets: [\"http://127.0.0.1:1\"]}\nroutes:\n")
			for i := range 300 {
				path := fmt.Sprintf("/r%d", i)
				if i == 150 && tt.bad != "" {
					path = tt.bad
				}
				fmt.Fprintf(&b, "  r%d:\n    match: {path: %s}\n    backends: [{upstream: web, weight: 100}]\n", i, path)
			}
			res := Files([]File{{Path: "r.yaml", Data: []byte(b.String())}}, Limits{})
			if tt.want == "" {
				if len(res.Diagnostics) > 0 || len(res.Config.Routes) != 300 {
					t.Fatalf("want 300 valid routes, got %v", res.Diagnostics)
				}
				return
			}
			if len(res.Diagnostics) != 1 || res.Diagnostics[0].Path != tt.want || res.Diagnostics[0].Line != 455 {
				t.Fatalf("want one diagnostic at %s line 455, got %v", tt.want, res.Diagnostics)
			}
		})
	}
}

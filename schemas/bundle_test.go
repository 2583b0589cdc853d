package schemas

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleConfig() Config {
	return Config{
		Upstreams: map[string]Upstream{"a": {Targets: []string{"http://127.0.0.1:1"}}, "b": {Targets: []string{"http://127.0.0.1:2"}, Balance: BalanceHash}},
		Routes: map[string]Route{"r": {
			Match:    Match{Path: "/api"},
			Backends: []Backend{{Upstream: "a", Weight: 90}, {Upstream: "b", Weight: 10}},
			Retries:  &Retries{},
		}},
		Policies: map[string]Policy{"rl": {RateLimit: &RateLimit{Rate: 2.5}}},
	}
}

func TestDigestIsCanonical(t *testing.T) {
	t.Parallel()
	a, b := sampleConfig(), sampleConfig()
	// Maps built in another order must give the same digest.
	b.Upstreams = map[string]Upstream{"b": a.Upstreams["b"], "a": a.Upstreams["a"]}
	da, err := Digest(&a)
	if err != nil {
		t.Fatal(err)
	}
	db, _ := Digest(&b)
	if da != db || !strings.HasPrefix(da, "sha256:") || len(da) != len("sha256:")+64 {
		t.Fatalf("digests %q and %q", da, db)
	}
	b.Routes["r"].Backends[0].Weight = 89
	if dc, _ := Digest(&b); dc == da {
		t.Fatal("a changed weight kept the digest")
	}
}

func TestApplyDefaultsIsIdempotent(t *testing.T) {
	t.Parallel()
	c := sampleConfig()
	c.ApplyDefaults()
	first, _ := Digest(&c)
	c.ApplyDefaults()
	if again, _ := Digest(&c); again != first {
		t.Fatal("a second ApplyDefaults changed the config")
	}
	r := c.Routes["r"]
	checks := []struct {
		name string
		ok   bool
	}{
		{"path type prefix", r.Match.PathType == PathPrefix},
		{"route timeout", r.Timeout.D() == DefaultRouteTimeout},
		{"retry attempts", r.Retries.Attempts == 2 && len(r.Retries.On) == 5},
		{"hash balance defaults to client IP", c.Upstreams["b"].HashOn != nil && c.Upstreams["b"].HashOn.ClientIP},
		{"burst rounds the rate up", c.Policies["rl"].RateLimit.Burst == 3},
		{"rate limit key", c.Policies["rl"].RateLimit.Key == "client_ip"},
	}
	for _, tc := range checks {
		if !tc.ok {
			t.Errorf("%s: not defaulted", tc.name)
		}
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	good, err := NewBundle("abc", Source{Commit: "abc"}, sampleConfig(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mutate func(*Bundle)
		want   error
	}{
		{"good", func(*Bundle) {}, nil},
		{"api version", func(b *Bundle) { b.APIVersion = "gitgate.dev/v0" }, ErrAPIVersion},
		{"no version", func(b *Bundle) { b.Version = "" }, ErrNoVersion},
		{"config edited after digest", func(b *Bundle) { b.Config.Routes["r"].Backends[0].Weight = 100 }, ErrDigest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, err := DecodeBundle(mustJSON(t, good))
			if err != nil {
				t.Fatal(err)
			}
			tc.mutate(b)
			if err := b.Verify(); !errors.Is(err, tc.want) {
				t.Fatalf("Verify() = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestDecodeBundleIsStrict(t *testing.T) {
	t.Parallel()
	good, _ := NewBundle("abc", Source{}, sampleConfig(), time.Unix(0, 0))
	raw := string(mustJSON(t, good))
	tests := []struct {
		name, data string
		ok         bool
	}{
		{"round trip", raw, true},
		{"unknown field", strings.Replace(raw, `"version"`, `"versoin":"x","version"`, 1), false},
		{"trailing data", raw + `{}`, false},
		{"not json", "nope", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, err := DecodeBundle([]byte(tc.data))
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && !reflect.DeepEqual(b.Config, good.Config) {
				t.Fatal("config changed in a round trip")
			}
		})
	}
}

func TestDiagnosticString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		d    Diagnostic
		want string
	}{
		{Diagnostic{File: "routes.yaml", Line: 7, Column: 9, Path: "routes.api.backends[0].weight", Message: "weights sum to 90"}, "routes.yaml:7:9: routes.api.backends[0].weight: weights sum to 90"},
		{Diagnostic{Path: "routes.api", Message: "m"}, "routes.api: m"},
		{Diagnostic{File: "a.yaml", Message: "m"}, "a.yaml: m"},
	}
	for _, tc := range tests {
		if got := tc.d.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func FuzzDecodeBundle(f *testing.F) {
	good, err := NewBundle("v1", Source{Commit: "v1"}, sampleConfig(), time.Unix(0, 0))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(mustJSON(f, good))
	f.Add([]byte(`{"apiVersion":"gitgate.dev/v1","version":"v","config":{"routes":{"r":{"match":{},"backends":[]}}}}`))
	f.Add([]byte(`{"config":{"upstreams":{"a":{"targets":["x"],"connectTimeout":"-1s"}}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := DecodeBundle(data)
		if err != nil {
			return
		}
		// Whatever decodes must survive a round trip unchanged in digest.
		again, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("decoded bundle does not encode: %v", err)
		}
		b2, err := DecodeBundle(again)
		if err != nil {
			t.Fatalf("re-encoded bundle does not decode: %v", err)
		}
		d1, err1 := Digest(&b.Config)
		d2, err2 := Digest(&b2.Config)
		if err1 != nil || err2 != nil || d1 != d2 {
			t.Fatalf("digest changed in a round trip: %s %v / %s %v", d1, err1, d2, err2)
		}
		_ = b.Verify()
	})
}

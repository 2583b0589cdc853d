package policy

import (
	"net/http"
	"testing"

	"github.com/gitgate/gitgate/schemas"
)

const (
	aliceKey = "k3y-Alice-0123456789"
	bobKey   = "k3y-Bob-9876543210"
)

func apiKeyCfg(in, name string) *schemas.Config {
	return routeCfg(map[string]schemas.Policy{"keys": {APIKey: &schemas.APIKey{
		In:             in,
		Name:           name,
		Keys:           map[string]string{"alice": hashKey(aliceKey), "bob": hashKey(bobKey)},
		ConsumerHeader: "X-Consumer",
	}}}, "keys")
}

func TestAPIKeyHeader(t *testing.T) {
	t.Parallel()
	g := newGateway(t, apiKeyCfg("header", ""), "r", Options{})
	tests := []struct {
		name     string
		header   http.Header
		status   int
		consumer string
	}{
		{name: "valid key", header: hdr("X-API-Key", aliceKey), status: 200, consumer: "alice"},
		{name: "second consumer", header: hdr("X-API-Key", bobKey), status: 200, consumer: "bob"},
		{name: "client-sent consumer header is replaced", header: hdr("X-API-Key", bobKey, "X-Consumer", "alice"), status: 200, consumer: "bob"},
		{name: "header name is case-insensitive", header: http.Header{"X-Api-Key": {aliceKey}}, status: 200, consumer: "alice"},
		{name: "missing", status: 401},
		{name: "empty", header: hdr("X-API-Key", ""), status: 401},
		{name: "differs only in case", header: hdr("X-API-Key", "K3Y-ALICE-0123456789"), status: 401},
		{name: "one trailing byte more", header: hdr("X-API-Key", aliceKey+"0"), status: 401},
		{name: "one trailing byte less", header: hdr("X-API-Key", aliceKey[:len(aliceKey)-1]), status: 401},
		{name: "the stored hash itself", header: hdr("X-API-Key", hashKey(aliceKey)), status: 401},
		{name: "two keys are ambiguous", header: hdr("X-API-Key", aliceKey, "X-API-Key", bobKey), status: 401},
		{name: "key in the query is not read", header: nil, status: 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			target := "/x"
			if tc.name == "key in the query is not read" {
				target += "?X-API-Key=" + aliceKey
			}
			res := g.do(t, "GET", target, tc.header)
			if res.status != tc.status {
				t.Fatalf("status %d, want %d (%s)", res.status, tc.status, res.body)
			}
			if tc.status == 401 {
				if got := res.header.Get("WWW-Authenticate"); got == "" {
					t.Error("401 without WWW-Authenticate")
				}
				return
			}
			if got := res.seen.Header.Get("X-Consumer"); got != tc.consumer {
				t.Errorf("upstream X-Consumer %q, want %q", got, tc.consumer)
			}
			if n := len(res.seen.Header.Values("X-Consumer")); n != 1 {
				t.Errorf("upstream got %d X-Consumer values", n)
			}
			if v := res.seen.Header.Values("X-Api-Key"); len(v) != 0 {
				t.Errorf("the key went upstream: %q", v)
			}
		})
	}
}

func TestAPIKeyQuery(t *testing.T) {
	t.Parallel()
	g := newGateway(t, apiKeyCfg("query", "api_key"), "r", Options{})
	tests := []struct {
		name      string
		query     string
		status    int
		upstreamQ string
	}{
		{name: "valid key is stripped", query: "api_key=" + aliceKey, status: 200, upstreamQ: ""},
		{name: "other parameters stay byte for byte", query: "b=2&api_key=" + aliceKey + "&a=%2F1&c", status: 200, upstreamQ: "b=2&a=%2F1&c"},
		{name: "escaped parameter name is recognised", query: "api%5Fkey=" + aliceKey + "&z=1", status: 200, upstreamQ: "z=1"},
		{name: "missing", query: "a=1", status: 401},
		{name: "differs only in case", query: "api_key=K3Y-ALICE-0123456789", status: 401},
		{name: "one trailing byte more", query: "api_key=" + aliceKey + "x", status: 401},
		{name: "twice is ambiguous", query: "api_key=" + aliceKey + "&api_key=" + bobKey, status: 401},
		{name: "bad escape", query: "api_key=%zz", status: 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := g.do(t, "GET", "/p?"+tc.query, nil)
			if res.status != tc.status {
				t.Fatalf("status %d, want %d (%s)", res.status, tc.status, res.body)
			}
			if tc.status != 200 {
				return
			}
			if res.seen.RawQuery != tc.upstreamQ {
				t.Errorf("upstream query %q, want %q", res.seen.RawQuery, tc.upstreamQ)
			}
			if res.seen.Header.Get("X-Consumer") != "alice" {
				t.Errorf("upstream X-Consumer %q", res.seen.Header.Get("X-Consumer"))
			}
		})
	}
}

func TestAPIKeyLookupComparesEveryKey(t *testing.T) {
	t.Parallel()
	cfg := apiKeyCfg("header", "")
	cfg.ApplyDefaults()
	set, err := Compile(cfg, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	k := set.policies["keys"].mw.(*apiKey)
	for _, tc := range []struct {
		name, key, consumer string
		ok                  bool
	}{
		{name: "first", key: aliceKey, consumer: "alice", ok: true},
		{name: "last", key: bobKey, consumer: "bob", ok: true},
		{name: "none", key: "nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := k.lookup(tc.key)
			if ok != tc.ok || got != tc.consumer {
				t.Fatalf("lookup = %q, %v; want %q, %v", got, ok, tc.consumer, tc.ok)
			}
		})
	}
}

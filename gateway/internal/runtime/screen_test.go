package runtime

import (
	"net/http"
	"reflect"
	"testing"
)

func TestRouteGuardUpgrade(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		allowed  []string
		in       http.Header
		ok       bool
		wantHead http.Header // the header after, when ok
	}{
		{name: "websocket allowed", allowed: []string{"websocket"},
			in:       http.Header{"Connection": {"keep-alive, Upgrade"}, "Upgrade": {"websocket"}},
			ok:       true,
			wantHead: http.Header{"Connection": {"keep-alive, Upgrade"}, "Upgrade": {"websocket"}}},
		{name: "case-insensitive", allowed: []string{"websocket"},
			in: http.Header{"Connection": {"upgrade"}, "Upgrade": {"WebSocket"}}, ok: true,
			wantHead: http.Header{"Connection": {"upgrade"}, "Upgrade": {"WebSocket"}}},
		{name: "h2c dropped with its settings", allowed: []string{"websocket"},
			in: http.Header{"Connection": {"Upgrade"}, "Upgrade": {"h2c"}, "Http2-Settings": {"AAA"}, "Http2_settings": {"B"}}, ok: true,
			wantHead: http.Header{}},
		{name: "h2c taken out of a list", allowed: []string{"websocket"},
			in: http.Header{"Connection": {"Upgrade"}, "Upgrade": {"h2c, websocket"}, "Http2-Settings": {"AAA"}}, ok: true,
			wantHead: http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}}},
		{name: "h2c even when listed", allowed: []string{"h2c"},
			in: http.Header{"Connection": {"Upgrade"}, "Upgrade": {"H2C"}}, ok: true, wantHead: http.Header{}},
		{name: "protocol not listed", allowed: []string{"websocket"},
			in: http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket, foo/2"}}},
		{name: "protocol with a version", allowed: []string{"foo"},
			in: http.Header{"Connection": {"Upgrade"}, "Upgrade": {"foo/2"}}, ok: true,
			wantHead: http.Header{"Connection": {"Upgrade"}, "Upgrade": {"foo/2"}}},
		{name: "none allowed", allowed: []string{},
			in: http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"}}},
		{name: "no upgrade option in Connection", allowed: []string{},
			in: http.Header{"Upgrade": {"websocket"}}, ok: true, wantHead: http.Header{"Upgrade": {"websocket"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := &routeGuard{upgrades: tt.allowed}
			if ok := g.upgrade(tt.in); ok != tt.ok {
				t.Fatalf("upgrade = %v, want %v", ok, tt.ok)
			}
			if tt.ok && !reflect.DeepEqual(tt.in, tt.wantHead) {
				t.Fatalf("header %v, want %v", tt.in, tt.wantHead)
			}
		})
	}
}

func TestCheckPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, path, raw string
		refused         bool
	}{
		{name: "plain", path: "/a/b"},
		{name: "dot-dot parameter", path: "/a/..;/b", refused: true},
		{name: "dot parameter", path: "/a/.;x/b", refused: true},
		{name: "parameter elsewhere (left to the route)", path: "/a;x/b"},
		{name: "dots in a name", path: "/a/..;x.txt/b", refused: true},
		{name: "a name starting with dots", path: "/a/...;x"},
		{name: "double-encoded dot", path: "/a/%2e%2e/b", refused: true},
		{name: "double-encoded slash", path: "/a%2Fb", refused: true},
		{name: "double-encoded backslash", path: "/a%5cb", refused: true},
		{name: "other percent", path: "/100%25"},
		{name: "percent at the end", path: "/a%2"},
		{name: "encoded dot kept raw", path: "/a/x.", raw: "/a/x%2e", refused: true},
		{name: "encoded dots resolved", path: "/a/../b", raw: "/a/%2e%2e/b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := checkPath(tt.path, tt.raw); (got != nil) != tt.refused {
				t.Fatalf("checkPath(%q, %q) = %s, want refused %v", tt.path, tt.raw, got, tt.refused)
			}
		})
	}
}

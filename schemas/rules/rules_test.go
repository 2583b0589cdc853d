package rules

import (
	"strings"
	"testing"

	"github.com/gitgate/gitgate/schemas"
)

func TestRegex(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, re string
		ok       bool
	}{
		{"simple", `^/items/[0-9]+$`, true},
		{"unclosed", `(`, false},
		{"too long", strings.Repeat("a", MaxRegexBytes+1), false},
		{"repeat blowup", `(a{100}){100}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := Regex(tt.re); (err == nil) != tt.ok {
				t.Fatalf("Regex(%.20q) = %v, want ok %v", tt.re, err, tt.ok)
			}
		})
	}
}

func TestPolicyKindCount(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p    schemas.Policy
		want string
	}{
		{"none", schemas.Policy{}, "a policy needs exactly one of rateLimit, apiKey, jwt, cors, ipAllow, ipDeny"},
		{"two", schemas.Policy{CORS: &schemas.CORS{AllowOrigins: []string{"https://a.example"}}, IPDeny: &schemas.IPList{CIDRs: []string{"10.0.0.0/8"}}},
			"a policy has exactly one kind, this one has cors and ipDeny: split it into 2 policies"},
		{"one", schemas.Policy{IPDeny: &schemas.IPList{CIDRs: []string{"10.0.0.0/8"}}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := ""
			if vs := Policy(tt.p); len(vs) > 0 {
				got = vs[0].Message
			}
			if got != tt.want {
				t.Fatalf("Policy() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTemplates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		check   func(string) ([]string, error)
		in      string
		want    []string
		wantErr string
	}{
		{"match params", PathTemplate, "/u/{id}/p/{post}", []string{"id", "post"}, ""},
		{"match param inside a segment", PathTemplate, "/u/x{id}", nil, "must be a literal or a whole {name} parameter"},
		{"match repeat", PathTemplate, "/{a}/{a}", nil, "appears twice"},
		{"rewrite param inside a segment", RewriteTemplate, "/v2/{id}.json", []string{"id"}, ""},
		{"rewrite unbalanced", RewriteTemplate, "/v2/{id", nil, "{ without }"},
		{"rewrite bad name", RewriteTemplate, "/v2/{1d}", nil, "must be a name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.check(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("= %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestUpgrade(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		token string
		ok    bool
	}{
		{name: "websocket", token: "websocket", ok: true},
		{name: "with a version", token: "HTTP/2.0", ok: true},
		{name: "h2c", token: "h2c"},
		{name: "h2c in capitals", token: "H2C"},
		{name: "empty", token: ""},
		{name: "a space", token: "web socket"},
		{name: "a comma", token: "websocket,h2c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := Upgrade(tt.token); (err == nil) != tt.ok {
				t.Fatalf("Upgrade(%q) = %v, want ok %v", tt.token, err, tt.ok)
			}
		})
	}
}

func TestIdentityHeader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, header string
		ok           bool
	}{
		{"own header", "X-Consumer", true},
		{"own header with underscore", "X_Tenant", true},
		{"hop-by-hop", "Connection", false},
		{"hop-by-hop any case", "transfer-ENCODING", false},
		{"framing", "Content-Length", false},
		{"forwarding header", "X-Forwarded-For", false},
		{"forwarding header by CGI name", "x_real_ip", false},
		{"host", "Host", false},
		{"not a token", "X Consumer", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := IdentityHeader(tt.header); (err == nil) != tt.ok {
				t.Fatalf("IdentityHeader(%q) = %v, want ok=%v", tt.header, err, tt.ok)
			}
		})
	}
}

func TestJWKSURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, url, want string // want: part of the message, "" for accepted
	}{
		{"https with a path", "https://idp.example.com/.well-known/jwks.json", ""},
		{"https with a port", "https://127.0.0.1:8443/jwks", ""},
		{"plain http", "http://idp.example.com/jwks.json", "must use https"},
		{"no scheme", "idp.example.com/jwks.json", "must use https"},
		{"no host", "https:///jwks.json", "no host"},
		{"credentials in the URL", "https://user:pass@idp.example.com/jwks.json", "credentials"},
		{"a fragment", "https://idp.example.com/jwks.json#keys", "fragment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := JWKSURL(tt.url)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("JWKSURL(%q) = %v, want accepted", tt.url, err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("JWKSURL(%q) = %v, want an error containing %q", tt.url, err, tt.want)
			case tt.want == "credentials" && strings.Contains(err.Error(), "pass"):
				t.Errorf("the error %q quotes the password", err)
			}
		})
	}
}

func TestRedirectPath(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"/", true}, {"/new/place", true}, {"/a%20b", true}, {"/a:b@c", true},
		{"", false}, {"new", false}, {"//evil.com", false}, {`/\evil.com`, false},
		{"/a\r\nSet-Cookie: x", false}, {"/a b", false}, {"/caf\u00e9", false}, {"/a?b=1", false}, {"/a#top", false},
	} {
		t.Run(tc.path, func(t *testing.T) {
			t.Parallel()
			if err := RedirectPath(tc.path); (err == nil) != tc.ok {
				t.Fatalf("RedirectPath(%q) = %v, want ok %v", tc.path, err, tc.ok)
			}
		})
	}
}

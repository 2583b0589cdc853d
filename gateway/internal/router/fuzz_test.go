package router

import (
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/schemas"
)

// refMatch is a linear reference matcher written from the package doc, not
// from the index: it tries every route and keeps the best by the documented
// order. It shares only canonicalHost with the router (tested on its own).
func refMatch(routes map[string]schemas.Route, r *http.Request) (string, bool) {
	type key struct {
		priority, hostRank, class, litLen, sub, methods, headers, query int
		name                                                            string
	}
	better := func(a, b key) bool { // a before b
		for _, d := range [][2]int{
			{a.priority, b.priority}, {a.hostRank, b.hostRank}, {a.class, b.class}, {a.litLen, b.litLen},
			{a.sub, b.sub}, {a.methods, b.methods}, {a.headers, b.headers}, {a.query, b.query},
		} {
			if d[0] != d[1] {
				return d[0] > d[1]
			}
		}
		return a.name < b.name
	}
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	host = canonicalHost(host)
	path := r.URL.Path
	if path == "" {
		path = "/"
	}
	var best *key
	for name, rt := range routes {
		m := rt.Match
		hostRank, hostOK := -1, len(m.Hosts) == 0
		if hostOK {
			hostRank = 0
		}
		for _, h := range m.Hosts {
			switch {
			case h == "*":
				hostRank, hostOK = max(hostRank, 0), true
			case strings.HasPrefix(h, "*."):
				s := canonicalHost(h[1:])
				if strings.HasSuffix(host, s) && len(host) > len(s) {
					hostRank, hostOK = max(hostRank, len(s)), true
				}
			case canonicalHost(h) == host:
				hostRank, hostOK = math.MaxInt, true
			}
		}
		if !hostOK {
			continue
		}
		k := key{priority: rt.Priority, hostRank: hostRank, name: name,
			headers: len(m.Headers), query: len(m.Query)}
		if len(m.Methods) > 0 {
			k.methods = 1
		}
		p, pt := m.Path, m.PathType
		if p == "" {
			p = "/"
		}
		if pt == "" {
			pt = schemas.PathPrefix
		}
		abs := strings.HasPrefix(path, "/")
		switch pt {
		case schemas.PathExact:
			if !abs || path != p {
				continue
			}
			k.class, k.litLen = 3, len(p)
		case schemas.PathPrefix:
			q := strings.TrimSuffix(p, "/")
			if !abs || (q != "" && path != q && !strings.HasPrefix(path, q+"/")) {
				continue
			}
			k.class, k.litLen = 2, len(q)
		case schemas.PathTemplate:
			ps, ts := strings.Split(path, "/"), strings.Split(p, "/")
			if !abs || len(ps) != len(ts) {
				continue
			}
			k.class, k.sub, k.litLen = 2, 1, len(p)
			ok := true
			for i, t := range ts {
				if strings.HasPrefix(t, "{") {
					k.litLen -= len(t)
					ok = ok && ps[i] != ""
				} else {
					ok = ok && ps[i] == t
				}
			}
			if !ok {
				continue
			}
		case schemas.PathRegex:
			if !regexp.MustCompile(`^(?:` + p + `)$`).MatchString(path) {
				continue
			}
			k.class = 1
		}
		if len(m.Methods) > 0 && !slices.Contains(m.Methods, r.Method) {
			continue
		}
		if !refValues(m.Headers, func(n string) []string { return r.Header.Values(n) }) {
			continue
		}
		qv := r.URL.Query()
		if !refValues(m.Query, func(n string) []string { return qv[n] }) {
			continue
		}
		if best == nil || better(k, *best) {
			best = &k
		}
	}
	if best == nil {
		return "", false
	}
	return best.name, true
}

func refValues(ms map[string]schemas.StringMatch, values func(string) []string) bool {
	for name, sm := range ms {
		found := false
		for _, v := range values(name) {
			switch {
			case sm.Present:
				found = true
			case sm.Exact != "":
				found = v == sm.Exact
			case sm.Prefix != "":
				found = strings.HasPrefix(v, sm.Prefix)
			case sm.Regex != "":
				found = regexp.MustCompile(`^(?:` + sm.Regex + `)$`).MatchString(v)
			}
			if found {
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// fuzzRoutes is the fixed part of the fuzzed table: overlapping hosts, every
// path type, priorities and value matchers.
func fuzzRoutes() map[string]schemas.Route {
	return map[string]schemas.Route{
		"root":       rt("prefix", "/"),
		"api":        rt("prefix", "/api"),
		"api-v1":     rt("prefix", "/api/v1/", methods("GET")),
		"api-exact":  rt("exact", "/api/v1/status"),
		"users":      rt("template", "/api/v1/users/{id}"),
		"orders":     rt("template", "/api/v1/users/{id}/orders/{oid}"),
		"any-seg":    rt("template", "/{a}/{b}"),
		"lit-seg":    rt("template", "/api/{b}"),
		"re":         rt("regex", `/api/v[0-9]+/.*`, prio(1), methods("POST")),
		"re-any":     rt("regex", `.*x`),
		"canary":     rt("prefix", "/api", header("X-Env", schemas.StringMatch{Exact: "canary"})),
		"canary-pre": rt("prefix", "/api", header("X-Env", schemas.StringMatch{Prefix: "can"})),
		"beta":       rt("prefix", "/api", query("beta", schemas.StringMatch{Regex: "[01]"})),
		"flag":       rt("exact", "/api", query("f", schemas.StringMatch{Present: true})),
		"ex-host":    rt("prefix", "/", hosts("a.example.com")),
		"wild":       rt("template", "/api/{x}", hosts("*.example.com")),
		"wild-eu":    rt("prefix", "/api", hosts("*.eu.example.com", "b.example.com")),
		"wild-prio":  rt("exact", "/api/v1/status", hosts("*.com"), prio(2)),
		"empty-seg":  rt("exact", "//", hosts("*")),
		"slash-pre":  rt("prefix", "/a//", hosts("*")),
		"same-a":     rt("prefix", "/same"),
		"same-b":     rt("prefix", "/same"),
	}
}

// FuzzMatch builds the fixed table plus one fuzzed route and checks that
// Match never panics and agrees with the linear reference on fuzzed
// requests.
func FuzzMatch(f *testing.F) {
	f.Add("/api/{id}", uint8(3), "", int8(0), "a.example.com", "/api/v1/users/7", "GET", "canary", "beta=1")
	f.Add("/api/v1", uint8(0), "*.example.com", int8(1), "x.eu.example.com:80", "/api/v1", "POST", "", "f")
	f.Add("/a/.*", uint8(2), "A.Example.com.", int8(-1), "[::1]:8080", "/a//b", "DELETE", "can", "beta=2&beta=0")
	f.Add("/", uint8(1), "*", int8(0), "B.EXAMPLE.COM", "//", "GET", "", "f=%zz&f")
	f.Add("/{a}/{b}/{c}", uint8(3), "", int8(3), "", "/x/y/z", "GET", "", "")
	f.Fuzz(func(t *testing.T, rpath string, rtype uint8, rhost string, rprio int8, host, path, method, env, rawQuery string) {
		routes := fuzzRoutes()
		fz := rt([]string{"exact", "prefix", "regex", "template"}[rtype%4], rpath, prio(int(rprio)%4))
		if rhost != "" {
			fz.Match.Hosts = []string{rhost}
		}
		routes["fz"] = fz
		tab, err := Build(routes)
		if err != nil {
			return // the fuzzed route does not compile; Build said so without panicking
		}
		r := &http.Request{
			Method: method,
			Host:   host,
			URL:    &url.URL{Path: path, RawQuery: rawQuery},
			Header: http.Header{"X-Env": {env}},
		}
		got, gotOK := tab.Match(r)
		want, wantOK := refMatch(routes, r)
		if got.Route != want || gotOK != wantOK {
			t.Fatalf("Match(%s host=%q path=%q query=%q env=%q) = %q, %v; reference says %q, %v (fz=%+v)",
				method, host, path, rawQuery, env, got.Route, gotOK, want, wantOK, fz.Match)
		}
	})
}

package router

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gitgate/gitgate/schemas"
)

// benchRoutes returns n routes of mixed kinds: prefix, exact, template and
// host-bound routes, with a regex route for every 100 (bound to a host so that
// the any-host regex list stays short, as in a real config).
func benchRoutes(n int) map[string]schemas.Route {
	routes := make(map[string]schemas.Route, n)
	for i := range n {
		name := fmt.Sprintf("r%05d", i)
		switch {
		case i%100 == 99:
			routes[name] = rt("regex", fmt.Sprintf(`/re%d/[0-9]+`, i), hosts(fmt.Sprintf("re%d.example.com", i)))
		case i%4 == 0:
			routes[name] = rt("prefix", fmt.Sprintf("/svc%d/api", i))
		case i%4 == 1:
			routes[name] = rt("exact", fmt.Sprintf("/exact%d/status", i), methods("GET"))
		case i%4 == 2:
			routes[name] = rt("template", fmt.Sprintf("/t%d/users/{id}", i))
		default:
			routes[name] = rt("prefix", "/api", hosts(fmt.Sprintf("h%d.example.com", i), fmt.Sprintf("*.h%d.example.org", i)))
		}
	}
	return routes
}

// BenchmarkMatch looks up one route in tables of 1, 1,000 and 10,000 routes.
// The ns/op of the 10,000 case should stay near the 1 case.
func BenchmarkMatch(b *testing.B) {
	kinds := []struct {
		name   string
		route  schemas.Route
		target string
		want   string
	}{
		{name: "prefix", route: rt("prefix", "/shop/api"), target: "http://any.test/shop/api/items/42"},
		{name: "exact", route: rt("exact", "/shop/status", methods("GET")), target: "http://any.test/shop/status"},
		{name: "template", route: rt("template", "/shop/users/{id}/orders/{oid}"), target: "http://any.test/shop/users/42/orders/7"},
		{name: "host", route: rt("prefix", "/api", hosts("shop.example.com")), target: "http://shop.example.com/api/items"},
		{name: "wildcard", route: rt("prefix", "/api", hosts("*.shop.example.com")), target: "http://eu.shop.example.com/api/items"},
		{name: "header", route: rt("prefix", "/shop", header("X-Env", schemas.StringMatch{Exact: "canary"})), target: "http://any.test/shop/x"},
	}
	for _, k := range kinds {
		for _, n := range []int{1, 1000, 10000} {
			b.Run(fmt.Sprintf("%s/routes=%d", k.name, n), func(b *testing.B) {
				routes := benchRoutes(n - 1)
				routes["target"] = k.route
				tab := mustBuild(b, routes)
				r := httptest.NewRequest("GET", k.target, nil)
				r.Header.Set("X-Env", "canary")
				if m, ok := tab.Match(r); !ok || m.Route != "target" {
					b.Fatalf("Match = %q, %v; want target", m.Route, ok)
				}
				b.ReportAllocs()
				measureCPU(b, func() {
					for b.Loop() {
						tab.Match(r)
					}
				})
			})
		}
	}
}

// BenchmarkBuild compiles a 10,000-route table, the router's share of an
// apply.
func BenchmarkBuild(b *testing.B) {
	routes := benchRoutes(10000)
	b.ReportAllocs()
	measureCPU(b, func() {
		for b.Loop() {
			if _, err := Build(routes); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCleanPathDotDot: a 60 KB path of 30,000 bytes and 6,000
// "/x/.." segments. A copy of the path so far for every ".." made it
// quadratic: 33.8 ms.
func BenchmarkCleanPathDotDot(b *testing.B) {
	p := "/" + strings.Repeat("a", 30000) + strings.Repeat("/x/..", 6000)
	for b.Loop() {
		CleanPath(p)
	}
}

// Package router owns the gateway's compiled route table: it turns the routes
// of a validated config into a Table once, off the request path, and answers
// "which route serves this request" for every request.
//
// # Matching
//
// A route matches a request when every part of its match does:
//
//   - Hosts: exact names ("api.example.com") or wildcards ("*.example.com").
//     A wildcard matches one or more labels left of its suffix, so
//     "*.example.com" matches "a.example.com" and "a.b.example.com" but not
//     "example.com". "*" or no hosts at all match any host. The request host
//     (Host header, else the URL's host) is compared without its port, without
//     IPv6 brackets and without a trailing dot, case-insensitively.
//   - Path, by path type, against the request's decoded URL path:
//     exact compares the whole path byte for byte; prefix is segment-aware,
//     like Envoy's path_separated_prefix and Kubernetes Ingress "Prefix": a
//     prefix "/api" (or "/api/") matches "/api", "/api/" and "/api/x" but not
//     "/apix"; prefix "/" matches every path. template matches one path
//     segment per "{param}" ("/users/{id}/orders/{oid}"), a parameter matches
//     exactly one non-empty segment and its value is returned in
//     Match.Params. regex is an RE2 expression matched against the whole path
//     (it is anchored for you); its named groups ((?P<id>...)) become
//     Match.Params.
//   - Methods: the request method is one of them (compared exactly; list HEAD
//     yourself if GET routes should answer it). Empty: any method.
//   - Headers and query parameters: every matcher holds for at least one of
//     the values sent under that name (exact, prefix, anchored RE2 regex, or
//     present).
//
// The router matches the path as the request carries it. It does not clean
// dot segments or merge slashes itself: the caller normalizes the path with
// CleanPath (and refuses encoded slashes with SafeEscapes) before matching
// and forwards the same normalized path, so that the path matched is the
// path forwarded.
//
// # Order
//
// When several routes match, the first in this order wins:
//
//  1. higher Priority;
//  2. more specific host: exact, then wildcards with a longer suffix, then
//     any host;
//  3. more specific path: exact, then template and prefix by longer literal
//     length (the bytes of the path that are not parameters; a template wins
//     a tie with a prefix), then regex;
//  4. more constraints: a route with methods, then more header matchers, then
//     more query matchers;
//  5. route name, for determinism.
//
// # Cost
//
// Lookup does not scan the routes. The table is indexed by exact host and by
// wildcard suffix (one map lookup per label of the request host), then, per
// host, by one trie over path segments: literal segments are map edges, a
// template's {param} is a separate edge, prefix routes sit on the node where
// their segments end and are collected on the way down, exact and template
// routes where the path ends. The walk follows the literal edge first, then
// the param edge, and skips subtrees that cannot beat the best route found so
// far, so cost grows with the number of host labels and path segments, not
// with the number of routes. Two things are scanned: regex routes of a host,
// kept in one list per host in match order, and routes that share the same
// path and host and differ only by methods, headers or query matchers.
//
// A lookup that matches a route without parameters, or matches none, does
// not allocate; Params (a map) is allocated only when the matched route has
// parameters, and a host with upper-case letters or a percent-escaped query
// value costs one copy.
// Match.Index lets the caller keep per-route state in a slice rather than a
// map keyed by name.
package router

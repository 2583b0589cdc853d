// Package cache is the gateway's response cache: a shared cache in the
// sense of RFC 9111, per route, bounded in memory by one LRU across all
// routes, with one upstream request per key while a miss is in flight.
//
// A Store holds the entries; Store.Wrap wraps one route's handler. The
// runtime keeps one Store for the life of the process and, at each apply,
// keeps the entries of routes whose cache-relevant config did not change
// (Store.Retain) and drops the others.
package cache

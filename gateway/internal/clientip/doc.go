// Package clientip decides who the client of a request is: the peer of the
// connection, or, when the peer is a trusted proxy, the right-most entry of
// X-Forwarded-For that is not itself a trusted proxy. It is the one place of
// that rule; the runtime computes it once per request (Of) and hands the
// result to the policies and the proxy through the request's ResponseWriter
// (Carrier), so no request pays for it twice.
package clientip

package proxy

import (
	"net/http"

	"github.com/gitgate/gitgate/gateway/internal/reply"
)

// The answers the proxy makes itself, in the gateway's one answer shape
// (package reply). Those naming an upstream are built per upstream, by
// NewForwarder.
var (
	bodyNoRoute    = reply.New("no_route", "no route", "")
	bodyTooBig     = reply.New("body_too_large", "request body too large", "")
	bodyTimeout    = reply.New("upstream_timeout", "upstream timeout", "")
	bodyBadGW      = reply.New("upstream_failed", "upstream failed", "")
	bodyBadRewrite = reply.New("bad_path", "bad request path: the route's rewrite of it leaves the path with a '..' segment", "")
	bodyBadBody    = reply.New("bad_body", "bad request body", "")
)

// Answers naming an upstream.
func noHealthyBody(upstream string) *reply.Body {
	return reply.New("no_healthy_target", "no healthy target", upstream)
}

func breakerOpenBody(upstream string) *reply.Body {
	return reply.New("breaker_open", "circuit breaker open", upstream)
}

func upstreamFailedBody(upstream string) *reply.Body {
	return reply.New("upstream_failed", "upstream failed", upstream)
}

// NotFound answers 404 no_route.
func NotFound(w http.ResponseWriter) { reply.Write(w, http.StatusNotFound, bodyNoRoute) }

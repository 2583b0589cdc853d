package proxy

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Messages of the error bodies the data plane writes.
const (
	MsgNoRoute       = "no route"
	MsgNoConfig      = "no config loaded"
	MsgBodyTooLarge  = "request body too large"
	MsgUpstreamError = "upstream failed"
	MsgNoHealthy     = "no healthy target"
	MsgBreakerOpen   = "circuit breaker open"
	MsgTimeout       = "upstream timeout"
	MsgBadPath       = "bad request path"
	MsgBadRewrite    = "bad request path: the route's rewrite of it leaves the path with a '..' segment"
	MsgBadBody       = "bad request body"
)

// errorBody is the JSON shape of every error the gateway itself answers.
type errorBody struct {
	Error    string `json:"error"`
	Upstream string `json:"upstream,omitempty"`
}

// ErrorJSON returns the encoded body {"error":msg,"upstream":upstream}.
func ErrorJSON(msg, upstream string) []byte {
	b, _ := json.Marshal(errorBody{Error: msg, Upstream: upstream})
	return append(b, '\n')
}

var (
	bodyNoRoute = ErrorJSON(MsgNoRoute, "")
	bodyTooBig  = ErrorJSON(MsgBodyTooLarge, "")
	bodyTimeout = ErrorJSON(MsgTimeout, "")
	bodyBadGW   = ErrorJSON(MsgUpstreamError, "")

	bodyBadRewrite = ErrorJSON(MsgBadRewrite, "")
	bodyBadBody    = ErrorJSON(MsgBadBody, "")
)

// WriteError answers status with a prebuilt JSON body.
func WriteError(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	h["Cache-Control"] = []string{"no-store"}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// NotFound answers 404 {"error":"no route"}.
func NotFound(w http.ResponseWriter) { WriteError(w, http.StatusNotFound, bodyNoRoute) }

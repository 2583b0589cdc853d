// Package reply writes the answers the gateway makes itself, instead of an
// upstream: refusals before routing, no route, policy refusals and the
// answers for a failed upstream. All have one shape, documented in the
// README ("Errors the gateway itself answers"):
//
//	{"error":"<code>","message":"<text>","upstream":"<name>"}
//
// error is a stable snake_case code a client can branch on, message says
// what happened in words, and upstream names the upstream only when the
// answer is about one. Every answer is application/json with
// Cache-Control: no-store and X-Content-Type-Options: nosniff.
//
// A gRPC call (Content-Type application/grpc or application/grpc+<codec>)
// gets the same answer as gRPC servers give it instead: HTTP 200 with no
// body, its grpc-status and grpc-message in the headers (a "trailers-only"
// response), the code chosen by the HTTP status (see GRPCCode).
package reply

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Body is one encoded answer, built once (at compile time for the fixed
// ones) so that writing it allocates nothing.
type Body struct {
	json    []byte
	length  []string // Content-Length
	grpcMsg []string // grpc-message: the message, percent-encoded
}

// shape is the JSON of a Body.
type shape struct {
	Error    string `json:"error"`
	Message  string `json:"message"`
	Upstream string `json:"upstream,omitempty"`
}

// New encodes the answer code, message and, when not empty, upstream.
func New(code, message, upstream string) *Body {
	b, err := json.Marshal(shape{Error: code, Message: message, Upstream: upstream})
	if err != nil { // three strings always marshal
		panic(err)
	}
	b = append(b, '\n')
	msg := message
	if upstream != "" {
		msg += " (upstream " + upstream + ")"
	}
	return &Body{json: b, length: []string{strconv.Itoa(len(b))}, grpcMsg: []string{grpcEncode(msg)}}
}

// Bytes returns the encoded answer.
func (b *Body) Bytes() []byte { return b.json }

// Shared header values; each slice has capacity 1, so a later append
// copies instead of writing into them.
var (
	contentType = []string{"application/json"}
	noStore     = []string{"no-store"}
	nosniff     = []string{"nosniff"}
)

// Write answers status with body. It is the one writer of the gateway's
// own answers.
func Write(w http.ResponseWriter, status int, body *Body) {
	if forGRPC(w) {
		writeGRPC(w, status, body)
		return
	}
	h := w.Header()
	h["Content-Type"] = contentType
	h["Content-Length"] = body.length
	h["Cache-Control"] = noStore
	h["X-Content-Type-Options"] = nosniff
	w.WriteHeader(status)
	_, _ = w.Write(body.json)
}

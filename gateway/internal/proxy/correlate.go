package proxy

import (
	"math/rand/v2"
	"net/http"
	"unsafe"
)

// maxRequestID bounds the length of an X-Request-Id kept from a trusted
// proxy; a longer one is replaced.
const maxRequestID = 200

// correlation is the request's correlation state: its X-Request-Id, kept
// from a trusted proxy or generated, and whether it carries a valid W3C
// traceparent. It lives in the Observation; the id has an allocation of
// its own (requestID).
type correlation struct {
	id     *requestID
	traced bool // the request has one valid traceparent: it is passed on
	// span is the request's server span, nil when span export is off: a
	// pointer, so that the Observation stays as small as without export.
	span *spanState
}

// requestID is a request's X-Request-Id: apart from the Observation,
// because the server reads the answer's header, which holds it, after the
// Observation may have been recycled (Observation.Release), and a
// generated id's text is written here.
type requestID struct {
	// v backs the value sent upstream and to the client. The slice taken
	// of it has capacity one, so a header "add" copies.
	v [1]string
	// buf backs a generated id: written once, before the string is made
	// of it, and never again.
	buf [32]byte
}

// String returns the id.
func (id *requestID) String() string { return id.v[0] }

// header returns the id as a header value list.
func (id *requestID) header() []string { return id.v[0:1:1] }

// decide keeps a sane X-Request-Id of a trusted proxy or generates one, and
// checks the request's traceparent. Trace context is taken from any peer:
// it names a trace, it grants nothing.
func (c *correlation) decide(r *http.Request, trusted bool) {
	c.id = new(requestID)
	// An untrusted peer's id is not looked at.
	if v := trustedValues(r.Header, "X-Request-Id", trusted); len(v) == 1 && saneRequestID(v[0]) {
		c.id.v[0] = v[0]
	} else {
		c.id.v[0] = newRequestID(&c.id.buf)
	}
	tp := r.Header["Traceparent"]
	c.traced = len(tp) == 1 && validTraceparent(tp[0])
}

// traceID returns the trace id of the gateway's span when span export is
// on, else of the request's valid traceparent, "" when it has none.
func (c *correlation) traceID(r *http.Request) string {
	if c.span != nil {
		return c.span.parent[0][3:35]
	}
	if !c.traced {
		return ""
	}
	return r.Header["Traceparent"][0][3:35]
}

// apply sets the correlation headers of the outgoing request h, a copy of
// the incoming one: the decided X-Request-Id; with span export on, a
// traceparent naming the gateway's span, with the tracestate of a valid
// incoming traceparent; else the traceparent and tracestate only when the
// traceparent is valid. copied says that the copy already left out the
// trace headers of a request without a valid traceparent (leavesOut).
func (c *correlation) apply(h http.Header, copied bool) {
	h["X-Request-Id"] = c.id.header()
	if c.span != nil {
		h["Traceparent"] = c.span.parent[0:1:1]
		if !c.traced && !copied {
			delete(h, "Tracestate")
		}
		return
	}
	if !c.traced && !copied {
		delete(h, "Traceparent")
		delete(h, "Tracestate")
	}
}

// leavesOut reports a header that a copy of the incoming request for
// apply may leave out: both trace headers when the traceparent is not
// valid, which apply would remove or replace.
func (c *correlation) leavesOut(k string) bool {
	return !c.traced && (k == "Traceparent" || k == "Tracestate")
}

// saneRequestID reports whether id is 1 to maxRequestID visible ASCII
// characters.
func saneRequestID(id string) bool {
	if id == "" || len(id) > maxRequestID {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

const hexDigits = "0123456789abcdef"

// newRequestID writes 128 random bits in lowercase hex to b and returns
// them as a string that shares b's memory, so that the id costs no
// allocation: b must not change afterwards. The bits come from
// math/rand/v2's global generator, the runtime's per-thread ChaCha8 seeded
// from the OS: unpredictable enough to correlate, without a system call or
// a lock. A request id is not a secret.
func newRequestID(b *[32]byte) string {
	hi, lo := rand.Uint64(), rand.Uint64()
	for i := 15; i >= 0; i-- {
		b[i] = hexDigits[hi&0xf]
		b[16+i] = hexDigits[lo&0xf]
		hi >>= 4
		lo >>= 4
	}
	return unsafe.String(&b[0], len(b))
}

// validTraceparent reports whether tp is a W3C traceparent this gateway
// passes on: version, trace id, parent id and flags in lowercase hex, the
// version not ff, the ids not all zeros; version 00 has exactly four
// fields, a later version may add fields after a dash.
func validTraceparent(tp string) bool {
	if len(tp) < 55 || tp[2] != '-' || tp[35] != '-' || tp[52] != '-' {
		return false
	}
	if !lowerHex(tp[0:2]) || tp[0:2] == "ff" || !lowerHex(tp[3:35]) || !lowerHex(tp[36:52]) || !lowerHex(tp[53:55]) {
		return false
	}
	if tp[3:35] == "00000000000000000000000000000000" || tp[36:52] == "0000000000000000" {
		return false
	}
	if tp[0:2] == "00" {
		return len(tp) == 55
	}
	return len(tp) == 55 || tp[55] == '-'
}

func lowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && (s[i] < 'a' || s[i] > 'f') {
			return false
		}
	}
	return true
}

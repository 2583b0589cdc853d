package policy

import "net/http"

// credentialMarker is implemented by the ResponseWriter of a request that
// the runtime observes (proxy.Observation): an identity policy that
// authenticated the request says so there, because it may strip the
// credential before the route sees the request, and the route's response
// cache must not share one consumer's answer with another.
type credentialMarker interface {
	MarkCredentialed()
}

// markCredentialed records on w, when it can, that the request was
// authenticated.
func markCredentialed(w http.ResponseWriter) {
	if m, ok := w.(credentialMarker); ok {
		m.MarkCredentialed()
	}
}

// Package client is the Go client of the gateway's admin API, used by the
// agent to push bundles and read the gateway's state over its Unix socket.
//
// It also owns the wire types of that API (Applied, Status, Rejection,
// WatchEvent, ErrorBody), which the server in package admin encodes, so the
// two sides cannot drift apart. It imports only the standard library and
// github.com/gitgate/gitgate/schemas, never gateway internals.
//
// Errors tell the caller how to react: *RejectedError (422) means the bundle
// is bad and must not be retried as is; ErrPreconditionFailed (412, as a
// *PreconditionError carrying the running version) means another writer got
// there first; *TransportError means the gateway could not be reached and the
// push may be retried with backoff.
package client

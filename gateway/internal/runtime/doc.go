// Package runtime owns the gateway's running configuration: it compiles a
// verified bundle into an immutable snapshot (route table, upstream pools,
// per-route handler chains of policies, transforms and proxy) off the
// request path, publishes it with one atomic pointer store, and releases an
// old snapshot's resources once its in-flight requests have finished.
//
// Upstream pools whose settings did not change are carried into the new
// snapshot as they are, so health, ejections, breaker state and kept-alive
// connections survive an apply. Engine is the http.Handler of the data plane;
// the admin socket drives it through Apply and Current, and shows Status.
//
// Each snapshot counts what it serves (package traffic) in counters built
// with it; when a snapshot is replaced its counts are kept as the previous
// version's, so Status shows the running version beside the one before.
package runtime

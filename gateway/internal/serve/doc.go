// Package serve assembles the gateway process: it builds the metrics
// registry, the runtime engine, the last-known-good store and the admin
// server, restores the last-known-good bundle before anything listens, then
// serves the data plane, the admin socket and the optional observe address
// until its context ends, and shuts them down in order.
//
// gateway/main.go only turns flags into a Config and calls Run.
package serve

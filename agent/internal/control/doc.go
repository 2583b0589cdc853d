// Package control owns the agent's control socket: a Unix socket (mode
// 0600) serving JSON endpoints for status, history, sync, rollback and
// resume, and the Client the `agent` CLI commands use to call them.
//
// Routes: GET /v1/status, GET /v1/history?n=N, POST /v1/sync,
// POST /v1/rollback {"rev","hold","reason"}, POST /v1/resume. Errors are
// JSON {"error", "diagnostics"} with a status that says how to handle them.
package control

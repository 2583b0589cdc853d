// Package fleet is the fleet view: what one replica serves read-only on
// its webhook port (GET /v1/replica: its agent and gateway versions, pin,
// desired commit, last error, never a secret), and how `agent fleet`
// queries every replica at once and judges drift and lag.
package fleet

// Package rules holds every semantic rule of a gitgate config that both the
// agent's loader (schemas/load) and the gateway's compile enforce, once, so
// that a bundle the agent accepts compiles in the gateway and a rule says
// the same words wherever it fires.
//
// A rule is a function of a config value that returns nil or the problems
// found, as a *Violation (or a slice of Violation) whose Field is the path
// below the value checked and whose Message is the text a person reads. The
// caller adds where the value is: the loader a file, line and column, the
// gateway the bundle's field path (Violation.At).
//
// The package imports only the standard library and schemas, never CUE:
// the gateway links it.
package rules

// Package load reads a config repository directory, validates it against the
// embedded CUE schema (schemas.CUESchema) and the semantic rules written in
// Go, and returns either a defaulted schemas.Config or diagnostics that point
// at file:line:column and field path of each problem.
//
// It is the only package of the module that imports cuelang.org/go: the
// gateway links package schemas alone and never this one.
//
// The pipeline of Files, in order:
//
//  1. limits: per-file and total byte bounds, UTF-8, nesting depth and YAML
//     alias counts (a byte pre-scan, so bombs are refused before parsing);
//  2. parsing: .yaml/.yml with CUE's YAML decoder (YAML 1.2, exact positions),
//     .json with CUE's JSON decoder, .cue with the CUE parser; duplicate keys
//     are refused;
//  3. validation entry by entry (evaluate.go): each named upstream, route
//     and policy is unified with the other places that define it (conflicts
//     name both) and with its closed definition (unknown fields are
//     refused). Entries written once in YAML or JSON take a memoized fast
//     path (memocheck.go) that asks CUE only about shapes and values it has not
//     seen in this load; whatever it refuses is evaluated in full, and only
//     the full evaluation's diagnostics are reported;
//  4. decoding into schemas.Config and the semantic checks of check.go
//     (references, weights, regexes, duplicate routes, secrets);
//  5. ApplyDefaults.
package load

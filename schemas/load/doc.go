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
//  3. unification of all files, then of the result with #Config: conflicts
//     between files name both places, closed definitions refuse unknown
//     fields;
//  4. decoding into schemas.Config and the semantic checks of check.go
//     (references, weights, regexes, duplicate routes, secrets);
//  5. ApplyDefaults.
package load

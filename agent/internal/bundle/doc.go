// Package bundle owns the agent's durable state in --state-dir: the bundles
// of the last N applied commits (bundles/<sha>.json), an append-only history
// of every sync attempt (history.jsonl) and the sync state (state.json: last
// applied, last attempted, pin, bad commits).
//
// Every whole-file write is atomic (temp file, fsync, rename, fsync of the
// directory) with mode 0600. Each history line carries the CRC-32 and length
// of its JSON, so a line torn by kill -9 is detected and cut off when the
// store is opened; the state survives restarts and kill -9 at any point.
package bundle

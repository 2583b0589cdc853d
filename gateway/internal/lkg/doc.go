// Package lkg keeps the gateway's last-known-good bundle on disk: one JSON
// file written atomically (temp file in the same directory, fsync, rename,
// fsync of the directory) after each successful apply, and read back on
// start so the gateway serves before any agent talks to it.
//
// A file that cannot be read, decoded or verified is never half-loaded:
// Load reports it as a *CorruptError and Quarantine renames it aside.
package lkg

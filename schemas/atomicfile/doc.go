// Package atomicfile replaces a file in one step that survives a crash:
// the agent's state directory (state, bundles, history) and the gateway's
// last-known-good bundle are written through it, so a reader sees the old
// file or the new one, never a part, and the new one is on disk once Write
// returns.
//
// It sits under schemas/ because both binaries persist bundles and neither
// may import the other; like schemas it imports nothing of gitgate's.
package atomicfile

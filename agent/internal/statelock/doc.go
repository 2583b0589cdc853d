// Package statelock gives one agent process exclusive use of a state
// directory. Two agents on one directory would both sync, write the same
// history and take each other's control socket; the second one is refused.
//
// The lock is flock(2) on <dir>/agent.lock, taken without waiting. The
// kernel releases it when the holder exits or crashes (kill -9 included), so
// a stale lock file never blocks a restart. The file holds the holder's pid
// for the refusal message; it is never removed, since removing it would let
// two processes lock different files at the same path.
package statelock

// Package fleetpin encodes the fleet's rollback state as marks of the
// config source (issue 17): one "pin" mark per tracked branch, pointing at
// the pinned revision, and one "bad/<rev>" mark per revision rolled back
// from. A mark's note is a one-line subject for people (`git tag -n`)
// followed by a JSON object with who, when, why, hold and the revision
// rolled back from. The syncer reads and follows them; `agent rollback`
// and `agent resume` write them, from an agent or straight against the
// repository.
package fleetpin

// Package source is the seam between the agent's reconcile loop and where
// the config comes from. The syncer consumes a Source; gitsrc implements it
// for a Git repository. A revision is an opaque string that the source
// names (a Git commit SHA); it becomes the bundle's version, so every
// revision a source returns must pass schemas.CheckVersion.
//
// Another kind of source (Consul or etcd keys, Kubernetes objects, an
// object-storage bucket) is a new package implementing Source: Update
// resolves its head (a modify index, a resourceVersion, a digest of the
// objects' ETags) and makes that revision's files readable, Files reads the
// config directory at a revision, Info and Resolve describe and name
// revisions, Verify checks their authenticity. Errors a user must act on
// wrap the sentinels of this package, so the control socket maps them to the
// same answers whatever the source.
//
// Validate is the one way to read a revision and validate it: the syncer,
// the pull-request check and `agent diff` all go through it.
package source

// Package gitsrc is the Git implementation of source.Source, the agent's
// view of the config repository: a go-git clone with filesystem storage in
// the state directory, a cheap remote head check, fetches of the tracked
// branch only when its head moved, reading the config path at a commit
// straight from the object store (no worktree), commit metadata, SHA-prefix
// resolution for rollback and optional signature verification (PGP, or SSH
// against an allowed_signers file: trust.go). Revisions leave the package as full commit SHAs
// (strings): go-git types stop here. Local reads a repository in place for
// `agent diff`.
//
// History is fetched in full, not shallow: rollback must reach any earlier
// commit of the branch, and a config repository is small. Every access to
// the go-git repository is serialized by the Source, because a go-git
// repository on filesystem storage is not safe for concurrent use.
//
// It also implements source.Marks (marks.go): the fleet's rollback pin and
// bad marks are tags under refs/tags/gitgate/<branch>/, read from the same
// listing of the remote's refs as the head, and written by one atomic
// receive-pack request whose commands carry the old values expected, so
// the server compare-and-swaps. Pushing uses its own credential
// (Options.PushToken, PushSSHKeyFile), never the read token.
//
// go-git writes refs, HEAD and the config in place, not by rename, so a
// kill or a failed write can leave them torn; Open repairs the storage
// before go-git reads it, and Update once more when a fetch trips on an
// emptied ref (repair.go). What it removes, the next fetch writes again.
//
// Each response of an HTTP(S) Git server is capped (Options.MaxFetchBytes,
// capped.go), and so is each pack a fetch writes, over any transport
// (packcap.go): go-git reads a refs listing or a pack to its end, so a
// server streaming without end would fill memory or disk. A failed fetch's
// temp files are removed after it, which go-git does not do.
//
// Credentials (a token, URL userinfo) never appear in errors or logs: every
// error that may carry the remote URL passes through Redact.
package gitsrc

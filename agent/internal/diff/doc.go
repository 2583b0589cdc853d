// Package diff owns the route-level plan between two validated configs: which
// routes, upstreams and policies a change creates, updates and deletes, and
// for updates which fields moved (weights shifted, policies attached or
// detached, match or timeout changed).
//
// Compute builds a Plan; Plan renders itself as terminal text (in the manner
// of `terraform plan`), as Markdown for a pull-request comment or a GitHub
// step summary (under a byte budget, never leaving markdown unbalanced), and
// as JSON. Values that could be secret (API key hashes, JWKS key material,
// header or query values under secret-looking names, URL passwords) are
// masked as "(sensitive)" before they reach any rendering, while secret
// references such as {env: NAME} stay visible because they are not secrets.
package diff

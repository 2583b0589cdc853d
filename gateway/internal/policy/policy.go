// Package policy compiles the policies of a config (rate limits, API keys,
// JWT, CORS, IP lists) into HTTP middleware. PLACEHOLDER: being written.
package policy

import (
	"net/http"

	"github.com/gitgate/gitgate/schemas"
)

// Options configure compilation.
type Options struct {
	// LookupEnv resolves {env: NAME} references. Nil: os.LookupEnv.
	LookupEnv func(string) (string, bool)
}

// Set is the compiled policies of one config.
type Set struct{}

// Compile builds every policy of cfg. prev, when not nil, is the Set of the
// running config, whose state (rate-limit buckets) is kept for policies that
// did not change. An error is a *schemas.InvalidError naming each problem.
func Compile(cfg *schemas.Config, prev *Set, opts Options) (*Set, error) {
	return &Set{}, nil
}

// Wrap returns next behind the policies that route names, in order.
func (s *Set) Wrap(route string, policies []string, next http.Handler) http.Handler {
	return next
}

// Close releases what the set holds (background sweepers).
func (s *Set) Close() {}

package policy

import (
	"github.com/gitgate/gitgate/gateway/internal/secretref"
	"github.com/gitgate/gitgate/schemas"
)

// resolveSecret reads the value a reference points at with the set's
// environment and file system (see secretref.Source.Resolve).
func (s *Set) resolveSecret(ref *schemas.SecretRef) ([]byte, error) {
	return secretref.Source{LookupEnv: s.opts.LookupEnv, ReadFile: s.opts.ReadFile}.Resolve(ref)
}

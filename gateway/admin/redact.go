package admin

import (
	"maps"

	"github.com/gitgate/gitgate/schemas"
)

// RedactedValue replaces each API-key hash in the bundle served on the
// observe address.
const RedactedValue = "(redacted)"

// redactBundle returns a copy of b whose API-key hashes are RedactedValue;
// consumer names, the version and the digest (of the full config) stay.
// b is not modified: only the maps on the path to a hash are copied.
func redactBundle(b *schemas.Bundle) *schemas.Bundle {
	out := *b
	out.Config.Policies = maps.Clone(b.Config.Policies)
	for name, p := range out.Config.Policies {
		if p.APIKey == nil || len(p.APIKey.Keys) == 0 {
			continue
		}
		k := *p.APIKey
		k.Keys = make(map[string]string, len(p.APIKey.Keys))
		for consumer := range p.APIKey.Keys {
			k.Keys[consumer] = RedactedValue
		}
		p.APIKey = &k
		out.Config.Policies[name] = p
	}
	return &out
}

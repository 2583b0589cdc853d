package policy

import (
	"fmt"
	"strings"

	"github.com/gitgate/gitgate/schemas"
	"github.com/gitgate/gitgate/schemas/rules"
)

// resolveSecret reads the value a reference points at. Its error message
// names the reference and never contains the value. A file's trailing
// newline (as written by echo or kubectl create secret --from-file) is
// removed; an empty value is an error.
func (s *Set) resolveSecret(ref *schemas.SecretRef) ([]byte, error) {
	if ref == nil {
		ref = &schemas.SecretRef{}
	}
	if err := rules.SecretRef(*ref); err != nil {
		return nil, err
	}
	switch {
	case ref.Env != "":
		v, ok := s.opts.LookupEnv(ref.Env)
		if !ok {
			return nil, fmt.Errorf("env %s is not set", ref.Env)
		}
		if v == "" {
			return nil, fmt.Errorf("env %s is empty", ref.Env)
		}
		return []byte(v), nil
	default:
		b, err := s.opts.ReadFile(ref.File)
		if err != nil {
			// The error of a read names the path and the cause only.
			return nil, fmt.Errorf("reading file %s: %w", ref.File, err)
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			return nil, fmt.Errorf("file %s is empty", ref.File)
		}
		return []byte(v), nil
	}
}

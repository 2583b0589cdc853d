// Package secretref reads the values that {env|file} secret references of
// the config point at. Policies (JWT secrets, JWKS documents) and upstreams
// (CA bundles, client certificates and keys) resolve their references here,
// so both follow the same rules and their errors name the reference, never
// the value.
package secretref

import (
	"fmt"
	"os"
	"strings"

	"github.com/gitgate/gitgate/schemas"
	"github.com/gitgate/gitgate/schemas/rules"
)

// Source reads references. The zero value reads the process environment
// and the file system.
type Source struct {
	// LookupEnv resolves {env: NAME} references. Nil: os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// ReadFile resolves {file: PATH} references. Nil: os.ReadFile.
	ReadFile func(string) ([]byte, error)
}

// Resolve reads the value ref points at. Its error message names the
// reference and never contains the value. A file's trailing newline (as
// written by echo or kubectl create secret --from-file) is removed; an
// empty value is an error.
func (s Source) Resolve(ref *schemas.SecretRef) ([]byte, error) {
	if ref == nil {
		ref = &schemas.SecretRef{}
	}
	if err := rules.SecretRef(*ref); err != nil {
		return nil, err
	}
	switch {
	case ref.Env != "":
		lookup := s.LookupEnv
		if lookup == nil {
			lookup = os.LookupEnv
		}
		v, ok := lookup(ref.Env)
		if !ok {
			return nil, fmt.Errorf("env %s is not set", ref.Env)
		}
		if v == "" {
			return nil, fmt.Errorf("env %s is empty", ref.Env)
		}
		return []byte(v), nil
	default:
		read := s.ReadFile
		if read == nil {
			read = os.ReadFile
		}
		b, err := read(ref.File)
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

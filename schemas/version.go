package schemas

import (
	"errors"
	"fmt"
)

// MaxVersionLen is the longest bundle version CheckVersion accepts.
const MaxVersionLen = 128

// ErrBadVersion is wrapped by CheckVersion's errors.
var ErrBadVersion = errors.New("not a usable bundle version")

// CheckVersion reports whether v can be a bundle version that the agent
// records: 1 to MaxVersionLen ASCII letters, digits, '.', '_' or '-',
// starting with a letter or a digit. A Git commit SHA passes, and so does a
// revision of another config source (an etcd revision number, an object
// store's digest). The agent uses versions in file names, so the rule
// refuses path separators, "." and "..", hidden names and anything a shell
// or a file system treats specially.
func CheckVersion(v string) error {
	if v == "" || len(v) > MaxVersionLen {
		return fmt.Errorf("%w: %q must be 1 to %d characters", ErrBadVersion, v, MaxVersionLen)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return fmt.Errorf("%w: %q may hold only letters, digits, '.', '_' and '-', and must start with a letter or a digit", ErrBadVersion, v)
		}
	}
	return nil
}

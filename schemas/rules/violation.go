package rules

import (
	"fmt"

	"github.com/gitgate/gitgate/schemas"
)

// Violation is one broken rule.
type Violation struct {
	// Field is the path of the offending field below the value the rule
	// checked, in config syntax (".secret", ".targets[2]"); "" is the value
	// itself.
	Field string
	// Message says what is wrong and what to do about it. It never repeats
	// a secret.
	Message string
}

// Error returns the message.
func (v *Violation) Error() string { return v.Message }

// At returns v as a diagnostic of the value at path base.
func (v Violation) At(base string) schemas.Diagnostic {
	return schemas.Diagnostic{Path: base + v.Field, Message: v.Message}
}

func violation(field, format string, args ...any) Violation {
	return Violation{Field: field, Message: fmt.Sprintf(format, args...)}
}

func fail(format string, args ...any) error {
	return &Violation{Message: fmt.Sprintf(format, args...)}
}

// at returns err, a *Violation of a rule on one value, under field; nil
// stays nil.
func at(field string, err error) []Violation {
	if err == nil {
		return nil
	}
	v := Violation{Field: field, Message: err.Error()}
	return []Violation{v}
}

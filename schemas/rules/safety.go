package rules

import (
	"slices"
	"time"

	"github.com/gitgate/gitgate/schemas"
)

// Safety checks the top-level safety section: the checks that make a
// verdict must fit in the bake window (CheckInterval at most BakeWindow,
// and Breaches consecutive checks within it), and the rule's own fields
// (SafetyRule). s may be defaulted or not.
func Safety(s schemas.Safety) []Violation {
	window := or(s.BakeWindow, schemas.DefaultSafetyBakeWindow)
	interval := or(s.CheckInterval, min(schemas.DefaultSafetyCheckInterval, window))
	breaches := s.Breaches
	if breaches == 0 {
		breaches = schemas.DefaultSafetyBreaches
	}
	var out []Violation
	switch {
	case interval > window:
		out = append(out, violation(".checkInterval", "checkInterval %s is longer than bakeWindow %s: no check would run in the window", interval, window))
	case interval*time.Duration(breaches) > window:
		out = append(out, violation(".breaches", "%d consecutive checks every %s take %s, longer than bakeWindow %s: no breach could ever act; lengthen bakeWindow or lower breaches", breaches, interval, interval*time.Duration(breaches), window))
	}
	return append(out, SafetyRule(s.SafetyRule)...)
}

// SafetyRule checks one set of verdict thresholds, top-level or a route's:
// each error class is listed once.
func SafetyRule(r schemas.SafetyRule) []Violation {
	var out []Violation
	for i, c := range r.ErrorStatuses {
		if slices.Index(r.ErrorStatuses, c) < i {
			out = append(out, violation(".errorStatuses", "errorStatuses lists %q twice", c))
		}
	}
	return out
}

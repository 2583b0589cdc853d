package diff

import "github.com/gitgate/gitgate/schemas"

// safetyEntry returns c's top-level safety section as a map of one entry
// named "safety", or nil when c has none, so that compareKind diffs it as
// it diffs routes.
func safetyEntry(c *schemas.Config) map[string]schemas.Safety {
	if c.Safety == nil {
		return nil
	}
	return map[string]schemas.Safety{"safety": *c.Safety}
}

func safetyLeaves(s *schemas.Safety) []leaf {
	return flatten(*s, func([]string) bool { return false })
}

// safetyDefaults are the leaves of a safety section left empty.
func safetyDefaults(*schemas.Safety) []leaf {
	c := schemas.Config{Safety: &schemas.Safety{}}
	c.ApplyDefaults()
	return safetyLeaves(c.Safety)
}

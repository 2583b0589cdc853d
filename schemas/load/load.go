package load

import (
	"errors"

	"github.com/gitgate/gitgate/schemas"
)

// File is one input file of a config directory.
type File struct {
	// Path is slash-separated and relative to the config directory.
	Path string
	// Data is the file's content.
	Data []byte
}

// Limits bound what the loader reads.
type Limits struct {
	// MaxFileBytes per file. Default 1 MiB.
	MaxFileBytes int64
	// MaxTotalBytes over all files. Default 16 MiB.
	MaxTotalBytes int64
}

// DefaultLimits are used where a Limits field is zero.
var DefaultLimits = Limits{MaxFileBytes: 1 << 20, MaxTotalBytes: 16 << 20}

// Result is the outcome of loading a config: a defaulted Config when
// Diagnostics is empty.
type Result struct {
	Config      *schemas.Config
	Diagnostics []schemas.Diagnostic
}

// Files validates a set of in-memory files (PLACEHOLDER: being written).
func Files(files []File, lim Limits) Result {
	return Result{Diagnostics: []schemas.Diagnostic{{Message: errors.New("loader not built yet").Error()}}}
}

// Dir reads the config directory dir from disk and validates it
// (PLACEHOLDER: being written).
func Dir(dir string, lim Limits) (Result, error) {
	return Files(nil, lim), nil
}

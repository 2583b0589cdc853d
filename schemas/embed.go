package schemas

import _ "embed"

// CUESchema is the CUE schema of a config repository (config.cue). Its
// definition #Config describes one unified config document. Package
// schemas/load compiles it; this package only carries the bytes, so that
// importing the Go types never links CUE.
//
//go:embed config.cue
var CUESchema []byte

// CUESchemaFile is the file name CUESchema is reported under in positions
// and in `agent schema --format cue`.
const CUESchemaFile = "schemas/config.cue"

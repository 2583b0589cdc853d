package load

import (
	"bytes"
	"encoding/json"
	"fmt"

	"cuelang.org/go/cue"
	"cuelang.org/go/cue/cuecontext"
	"cuelang.org/go/encoding/jsonschema"

	"github.com/gitgate/gitgate/schemas"
)

// JSONSchemaID is the $id written into the generated JSON Schema.
const JSONSchemaID = "https://gitgate.dev/schemas/config.json"

// JSONSchema returns a JSON Schema (draft 2020-12) of one config document,
// generated from the embedded CUE definition #Config, indented. Editors use
// it to complete and check config YAML as it is typed. It checks what the
// CUE schema checks; the semantic rules in Go (references, weights summing
// to 100) are not expressible in it.
func JSONSchema() ([]byte, error) {
	ctx := cuecontext.New()
	def := ctx.CompileBytes(schemas.CUESchema, cue.Filename(schemas.CUESchemaFile)).LookupPath(cue.ParsePath("#Config"))
	expr, err := jsonschema.Generate(def, nil)
	if err != nil {
		return nil, fmt.Errorf("generating JSON Schema from the CUE schema: %w", err)
	}
	raw, err := ctx.BuildExpr(expr).MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("encoding JSON Schema: %w", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("decoding generated JSON Schema: %w", err)
	}
	doc["$id"] = JSONSchemaID
	doc["title"] = "gitgate config"
	doc["description"] = "One document of a gitgate config repository: upstreams, routes and policies, keyed by name."
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encoding JSON Schema: %w", err)
	}
	return buf.Bytes(), nil
}

package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"
)

// outputFlags are --output (-o) and its older alias --json, on every
// command that prints data.
type outputFlags struct {
	format string
	json   bool
}

func (o *outputFlags) register(fs *pflag.FlagSet) {
	fs.StringVarP(&o.format, "output", "o", "table", "output format: table (for people), json or yaml")
	fs.BoolVar(&o.json, "json", false, "print JSON (same as --output json)")
}

// resolve returns the chosen format, or an error naming the flag.
func (o *outputFlags) resolve() (string, error) {
	if o.json {
		return "json", nil
	}
	switch o.format {
	case "table", "json", "yaml":
		return o.format, nil
	}
	return "", fmt.Errorf("unknown --output %q: want table, json or yaml", o.format)
}

// writeData writes v as indented JSON or as YAML (the same field names).
func writeData(w io.Writer, format string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding output: %w", err)
	}
	if format == "yaml" {
		if b, err = yaml.JSONToYAML(b); err != nil {
			return fmt.Errorf("encoding output as YAML: %w", err)
		}
		_, err = w.Write(b)
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

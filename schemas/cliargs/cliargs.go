// Package cliargs checks a command line before cobra parses it, for the
// one habit the move from Go's flag package to cobra/pflag breaks: long
// flags written with one dash.
package cliargs

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// SingleDashError is a long flag written with one dash ("-hold"). Go's flag
// package read it as --hold; pflag reads it as the shorthands -h -o -l -d,
// and -h alone would print the help and exit 0 without doing anything.
type SingleDashError struct {
	// Arg is the argument as given, e.g. "-hold" or "-state-dir=/x".
	Arg string
	// Name is the long flag it names, e.g. "hold".
	Name string
}

// Error implements error.
func (e *SingleDashError) Error() string {
	return fmt.Sprintf("%s: long flags take two dashes: --%s", e.Arg, strings.TrimPrefix(e.Arg, "-"))
}

// CheckDashes returns a *SingleDashError for the first argument before "--"
// that is one dash and the name of a long flag (two or more characters) of
// any command under root. Shorthand clusters and values ("-ojson", "-n5")
// pass, as do positional arguments.
func CheckDashes(root *cobra.Command, args []string) error {
	names := map[string]bool{}
	collect(root, names)
	for _, a := range args {
		if a == "--" {
			return nil
		}
		if len(a) < 3 || a[0] != '-' || a[1] == '-' {
			continue
		}
		name, _, _ := strings.Cut(a[1:], "=")
		if names[name] {
			return &SingleDashError{Arg: a, Name: name}
		}
	}
	return nil
}

func collect(c *cobra.Command, names map[string]bool) {
	add := func(f *pflag.Flag) {
		if len(f.Name) > 1 {
			names[f.Name] = true
		}
	}
	c.LocalFlags().VisitAll(add)
	c.InheritedFlags().VisitAll(add)
	names["help"] = true
	for _, sub := range c.Commands() {
		collect(sub, names)
	}
}

package main

import (
	"context"
	"fmt"
	"io"
)

func runRun(_ context.Context, _ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "agent: this command is not built yet")
	return 2
}

package main

import (
	"context"
	"fmt"
	"io"
)

func runValidate(_ context.Context, _ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "agent: this command is not built yet")
	return 2
}

func runSchema(_ context.Context, _ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "agent: this command is not built yet")
	return 2
}

func runBundle(_ context.Context, _ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "agent: this command is not built yet")
	return 2
}

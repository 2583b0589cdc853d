package main

import (
	"context"
	"fmt"
	"io"
)

func runStatus(_ context.Context, _ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "agent: this command is not built yet")
	return 2
}

func runHistory(_ context.Context, _ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "agent: this command is not built yet")
	return 2
}

func runSync(_ context.Context, _ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "agent: this command is not built yet")
	return 2
}

func runRollback(_ context.Context, _ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "agent: this command is not built yet")
	return 2
}

func runResume(_ context.Context, _ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "agent: this command is not built yet")
	return 2
}

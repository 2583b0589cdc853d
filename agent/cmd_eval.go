package main

import (
	"fmt"
	"time"

	"github.com/spf13/pflag"

	"github.com/gitgate/gitgate/schemas/load/budget"
)

// evalFlags are --eval-timeout and --eval-memory: the budget of one
// evaluation of a config that holds .cue files, which runs in a child
// process (YAML and JSON only are validated in the agent's own process).
type evalFlags struct {
	timeout time.Duration
	memory  byteSize
}

const (
	evalTimeoutUsage = "wall-clock `duration` one validation of a config with .cue files may take; it runs in a child process that is killed after it"
	evalMemoryUsage  = "memory `size` (KiB, MiB, GiB) one validation of a config with .cue files may use beyond its process's start"
)

func (e *evalFlags) register(fs *pflag.FlagSet) {
	e.memory = byteSize(budget.Default.Memory)
	fs.DurationVar(&e.timeout, "eval-timeout", budget.Default.Timeout, evalTimeoutUsage)
	fs.Var(&e.memory, "eval-memory", evalMemoryUsage)
}

// evaluator returns the Evaluator of the flags, or an error naming a flag
// that is not positive.
func (e *evalFlags) evaluator() (*budget.Evaluator, error) {
	return newEvaluator(e.timeout, int64(e.memory))
}

func newEvaluator(timeout time.Duration, memory int64) (*budget.Evaluator, error) {
	if timeout <= 0 {
		return nil, fmt.Errorf("eval timeout %s must be positive", timeout)
	}
	if memory < 16<<20 {
		return nil, fmt.Errorf("eval memory %s must be at least 16 MiB", budget.FormatBytes(memory))
	}
	return budget.New(budget.Budget{Timeout: timeout, Memory: memory}), nil
}

// byteSize is a flag.Value of a size written as budget.ParseBytes reads it.
type byteSize int64

func (b *byteSize) String() string { return budget.FormatBytes(int64(*b)) }

// Type names the value in --help.
func (b *byteSize) Type() string { return "size" }

func (b *byteSize) Set(s string) error {
	n, err := budget.ParseBytes(s)
	if err != nil {
		return err
	}
	*b = byteSize(n)
	return nil
}

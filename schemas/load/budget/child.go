package budget

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"

	"github.com/gitgate/gitgate/schemas/load"
)

// childEnv marks a child process and carries its memory budget in bytes.
const childEnv = "GITGATE_EVAL_CHILD"

// ChildMain runs the evaluation child and exits when this process was
// started as one by an Evaluator; otherwise it returns at once. Call it
// first thing in main, and in TestMain of tests that use an Evaluator.
func ChildMain() {
	mem, ok := os.LookupEnv(childEnv)
	if !ok {
		return
	}
	os.Exit(serveChild(mem, os.Stdin, os.Stdout, os.Stderr))
}

// Exit codes of a child besides 0; the Go runtime exits with 2 when it
// runs out of memory.
const exitChildFailed = 3

// serveChild limits this process's memory to mem bytes more than it has
// mapped now, reads a request from in, validates it and writes the
// load.Result to out as JSON.
func serveChild(mem string, in io.Reader, out, errw io.Writer) int {
	n, err := strconv.ParseInt(mem, 10, 64)
	if err != nil || n <= 0 {
		fmt.Fprintf(errw, "gitgate evaluation child: %s=%q is not a byte count\n", childEnv, mem)
		return exitChildFailed
	}
	debug.SetMemoryLimit(n)
	if err := limitAddressSpace(n); err != nil {
		fmt.Fprintf(errw, "gitgate evaluation child: %v\n", err)
		return exitChildFailed
	}
	var req request
	if err := json.NewDecoder(in).Decode(&req); err != nil {
		fmt.Fprintf(errw, "gitgate evaluation child: reading the request: %v\n", err)
		return exitChildFailed
	}
	res := load.Files(req.Files, req.Limits)
	if err := json.NewEncoder(out).Encode(res); err != nil {
		fmt.Fprintf(errw, "gitgate evaluation child: writing the result: %v\n", err)
		return exitChildFailed
	}
	return 0
}

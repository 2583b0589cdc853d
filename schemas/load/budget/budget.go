package budget

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/gitgate/gitgate/schemas/load"
)

// Budget bounds one evaluation of a config that holds CUE files.
type Budget struct {
	// Timeout is the wall-clock time one evaluation may take, from the
	// start of its child process to its result. Zero: Default.Timeout.
	Timeout time.Duration
	// Memory is the memory, in bytes, that one evaluation may allocate
	// beyond what the child process maps when it starts. Zero:
	// Default.Memory.
	Memory int64
}

// Default is the budget of the agent's --eval-timeout and --eval-memory
// defaults. A 10,000-route config with a .cue file validates in about a
// quarter of each.
var Default = Budget{Timeout: 20 * time.Second, Memory: 1 << 30}

func (b Budget) withDefaults() Budget {
	if b.Timeout <= 0 {
		b.Timeout = Default.Timeout
	}
	if b.Memory <= 0 {
		b.Memory = Default.Memory
	}
	return b
}

// maxChildren is how many evaluations of one Evaluator run at once; others
// wait for a slot (bounded by their context). It bounds the memory that
// concurrent pull requests can claim to maxChildren budgets.
const maxChildren = 2

// Evaluator validates configs under a Budget. It is safe for concurrent use.
type Evaluator struct {
	budget Budget
	exe    string
	slots  chan struct{}
}

// New returns an Evaluator with budget b (zero fields take Default's).
func New(b Budget) *Evaluator {
	return &Evaluator{budget: b.withDefaults(), exe: executable(), slots: make(chan struct{}, maxChildren)}
}

// Budget returns the budget e evaluates with, defaults applied.
func (e *Evaluator) Budget() Budget { return e.budget }

// Dir reads dir with load.ReadDir and validates it with Files.
func (e *Evaluator) Dir(ctx context.Context, dir string, lim load.Limits) (load.Result, error) {
	files, diags, err := load.ReadDir(dir, lim)
	if err != nil || len(diags) > 0 {
		return load.Result{Diagnostics: diags}, err
	}
	return e.Files(ctx, files, lim)
}

// Files validates files as load.Files does. Files without CUE code are
// validated in this process; otherwise in a child process under e's budget
// (see the package documentation), and a budget that runs out comes back as
// the diagnostics of an ExceededError. The error is non-nil only when the
// evaluation could not run: ctx ended, or the child could not be started or
// answered nonsense; it is worth a retry, a diagnostic is not.
func (e *Evaluator) Files(ctx context.Context, files []load.File, lim load.Limits) (load.Result, error) {
	cue := load.CUEFiles(files)
	if len(cue) == 0 || os.Getenv(childEnv) != "" {
		// Data only; or this is a child already, which must not start
		// another (a program that forgot ChildMain).
		return load.FilesContext(ctx, files, lim)
	}
	select {
	case e.slots <- struct{}{}:
	case <-ctx.Done():
		return load.Result{}, fmt.Errorf("waiting to evaluate %s: %w", strings.Join(cue, ", "), ctx.Err())
	}
	defer func() { <-e.slots }()
	return e.inChild(ctx, files, lim, cue)
}

// request is what the parent writes to the child's stdin.
type request struct {
	Files  []load.File
	Limits load.Limits
}

// Output and stderr bounds of a child.
const (
	minOutputBytes = 64 << 20
	stderrBytes    = 16 << 10
)

func (e *Evaluator) inChild(ctx context.Context, files []load.File, lim load.Limits, cue []string) (load.Result, error) {
	in, err := json.Marshal(request{Files: files, Limits: lim})
	if err != nil {
		return load.Result{}, fmt.Errorf("encoding the files for the evaluation child: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, e.budget.Timeout)
	defer cancel()
	maxOut := max(minOutputBytes, 4*lim.MaxTotalBytes, 4*load.DefaultLimits.MaxTotalBytes)
	stdout := &capped{max: maxOut, overflow: cancel}
	stderr := &capped{max: stderrBytes}
	cmd := exec.CommandContext(cctx, e.exe)
	cmd.Args = []string{"gitgate-eval"}
	cmd.Env = []string{fmt.Sprintf("%s=%d", childEnv, e.budget.Memory), "GOTRACEBACK=none"}
	cmd.Stdin = bytes.NewReader(in)
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	cmd.SysProcAttr = sysProcAttr()
	cmd.Cancel = func() error { return killGroup(cmd.Process) }
	cmd.WaitDelay = time.Second
	// The kernel sends Pdeathsig when the thread that started the child
	// exits, not the process: keep this goroutine on its thread until the
	// child is reaped, so that no thread exit kills the child early.
	runtime.LockOSThread()
	runErr := cmd.Run()
	runtime.UnlockOSThread()

	switch {
	case runErr == nil && !stdout.over:
		var res load.Result
		if err := json.Unmarshal(stdout.buf.Bytes(), &res); err != nil {
			return load.Result{}, fmt.Errorf("decoding the evaluation child's result: %w", err)
		}
		return res, nil
	case stdout.over:
		return exceeded(ResourceOutput, FormatBytes(maxOut), cue), nil
	case ctx.Err() != nil:
		return load.Result{}, fmt.Errorf("evaluating %s: %w", strings.Join(cue, ", "), ctx.Err())
	case errors.Is(cctx.Err(), context.DeadlineExceeded):
		return exceeded(ResourceTime, e.budget.Timeout.String(), cue), nil
	}
	var exit *exec.ExitError
	if !errors.As(runErr, &exit) {
		return load.Result{}, fmt.Errorf("running the evaluation child %s: %w", e.exe, runErr)
	}
	if outOfMemory(stderr.buf.String()) || killed(exit) {
		// The runtime's allocation failed under RLIMIT_AS, or the kernel's
		// OOM killer stopped the child.
		return exceeded(ResourceMemory, FormatBytes(e.budget.Memory), cue), nil
	}
	// The child crashed for another reason: the input made CUE panic, for
	// instance. Retrying would crash again, so it is the commit's problem.
	return load.Result{Diagnostics: crashed(cue, exit, stderr.buf.String())}, nil
}

// outOfMemory reports whether a child's stderr says that the Go runtime
// (or, in a test binary built with -race, ThreadSanitizer's allocator) ran
// out of address space.
func outOfMemory(stderr string) bool {
	for _, s := range []string{"out of memory", "cannot allocate memory", "failed to create new OS thread",
		"pthread_create failed", "failed to reserve", "errno 12", "failed to allocate",
		"too many address space collisions"} {
		if strings.Contains(stderr, s) {
			return true
		}
	}
	return false
}

// killed reports whether the child died of SIGKILL that its parent did not
// send (the parent's kills are seen as a deadline or an overflow first).
func killed(exit *exec.ExitError) bool {
	ws, ok := exit.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// capped is an io.Writer that keeps the first max bytes. Past max it keeps
// nothing more, notes it and calls overflow (if set) once; it never fails,
// so the child is not left blocked on a pipe nobody reads.
type capped struct {
	buf      bytes.Buffer
	max      int64
	over     bool
	overflow func()
}

func (c *capped) Write(p []byte) (int, error) {
	room := c.max - int64(c.buf.Len())
	if int64(len(p)) > room {
		c.buf.Write(p[:max(room, 0)])
		if !c.over {
			c.over = true
			if c.overflow != nil {
				c.overflow()
			}
		}
		return len(p), nil
	}
	c.buf.Write(p)
	return len(p), nil
}

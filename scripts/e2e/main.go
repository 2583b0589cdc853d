// Command e2e is gitgate's fault battery: it builds the real gateway and
// agent binaries and runs each scenario on loopback against a fresh pair,
// with a config repository made by the git CLI and signed webhooks. Every
// scenario states its pass criterion, checks it, and prints PASS, FAIL,
// SKIP or KNOWN-FAIL; the exit status is 1 when any scenario fails.
//
//	go run ./scripts/e2e                  # the whole battery
//	go run ./scripts/e2e -run 'gateway'   # scenarios whose name matches
//	go run ./scripts/e2e -keep            # keep every scenario's directory (logs, state)
//	go run ./scripts/e2e -lanes 1         # every scenario alone, in order
//
// Everything a scenario starts (processes in their own process groups, an
// HTTP Git host, tmpfs mounts) it stops or unmounts before it ends. The
// automatic-rollback scenarios, which mostly wait out detection windows,
// run in a lane of their own beside the others (-lanes 2, the default):
// the battery takes about 62 s instead of 111 s. Each scenario's report
// is printed whole when it ends.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gitgate/gitgate/scripts/e2e/harness"
)

func main() {
	var (
		runRE   = flag.String("run", "", "run only scenarios whose name matches this regexp")
		keep    = flag.Bool("keep", false, "keep every scenario's directory (logs, state) instead of only failed ones")
		perTest = flag.Duration("scenario-timeout", 60*time.Second, "give up on one scenario after this long")
		list    = flag.Bool("list", false, "list the scenarios and their pass criteria, then exit")
		lanes   = flag.Int("lanes", 2, "2: the scenarios that mostly wait (the automatic-rollback ones) run one after another beside the others; 1: every scenario alone, in order")
	)
	flag.Parse()
	if *list {
		for _, sc := range scenarios {
			fmt.Printf("%s\n    %s\n", sc.name, sc.criterion)
		}
		return
	}
	re, err := regexp.Compile(*runRE)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: -run: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(battery(ctx, re, *keep, *perTest, *lanes))
}

// battery builds the binaries and runs the selected scenarios, in order
// within each lane.
func battery(ctx context.Context, re *regexp.Regexp, keep bool, perTest time.Duration, lanes int) int {
	began := time.Now()
	root, err := harness.ModuleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	top, err := os.MkdirTemp("", "gitgate-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	fmt.Printf("building the gateway and the agent into %s\n", top)
	bins, err := harness.Build(ctx, root, filepath.Join(top, "bin"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	up := harness.NewUpstream()
	defer up.Close()

	type outcome struct {
		name, verdict string
		took          time.Duration
		ran           bool
	}
	selected := []scenario{}
	for _, sc := range scenarios {
		if re.MatchString(sc.name) {
			selected = append(selected, sc)
		}
	}
	results := make([]outcome, len(selected))
	var (
		mu     sync.Mutex // serializes the scenarios' reports on stdout
		failed int
	)
	// runOne runs selected[i] and prints its report once it has ended, so
	// that the reports of scenarios running at once do not interleave.
	runOne := func(i int) {
		sc := selected[i]
		if ctx.Err() != nil {
			return
		}
		var out bytes.Buffer
		fmt.Fprintf(&out, "\n=== RUN   %s\n    criterion: %s\n", sc.name, sc.criterion)
		dir := filepath.Join(top, sc.name)
		t := &T{dir: dir, bins: bins, upstream: up.URL, out: &out}
		start := time.Now()
		err := os.MkdirAll(dir, 0o755)
		if err == nil {
			sctx, cancel := context.WithTimeout(ctx, perTest)
			err = t.run(sctx, sc.run)
			cancel()
		}
		took := time.Since(start)
		verdict := "PASS"
		var skip *skipError
		switch {
		case errors.As(err, &skip):
			verdict = "SKIP"
			fmt.Fprintf(&out, "    skipped: %s\n", skip.reason)
		case err != nil && t.knownFail != "":
			verdict = "KNOWN-FAIL"
			fmt.Fprintf(&out, "    error: %v\n    known failure: %s\n", err, t.knownFail)
		case err != nil:
			verdict = "FAIL"
			fmt.Fprintf(&out, "    error: %v\n    logs and state kept in %s\n", err, dir)
		}
		fmt.Fprintf(&out, "--- %s  %s (%.1fs)\n", verdict, sc.name, took.Seconds())
		if verdict != "FAIL" && !keep {
			_ = os.RemoveAll(dir)
		}
		mu.Lock()
		defer mu.Unlock()
		_, _ = os.Stdout.Write(out.Bytes())
		results[i] = outcome{sc.name, verdict, took, true}
		if verdict == "FAIL" {
			failed++
		}
	}
	// Two lanes: the automatic-rollback scenarios, which spend their time
	// waiting out detection windows at a low request rate, run one after
	// another beside the rest, which also run one after another. With
	// -lanes 1 every scenario runs alone, in order.
	var waiting, rest []int
	for i, sc := range selected {
		if lanes > 1 && sc.waits {
			waiting = append(waiting, i)
		} else {
			rest = append(rest, i)
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for _, i := range waiting {
			runOne(i)
		}
	})
	for _, i := range rest {
		runOne(i)
	}
	wg.Wait()

	fmt.Printf("\n| scenario | result | time |\n|---|---|---|\n")
	ran := 0
	for _, r := range results {
		if !r.ran {
			continue
		}
		ran++
		fmt.Printf("| %s | %s | %.1fs |\n", r.name, r.verdict, r.took.Seconds())
	}
	fmt.Printf("\n%d scenarios, %d failed, %.1fs in all\n", ran, failed, time.Since(began).Seconds())
	if failed > 0 || ctx.Err() != nil {
		return 1
	}
	if !keep {
		_ = os.RemoveAll(top)
	}
	return 0
}

// scenario is one fault with its pass criterion.
type scenario struct {
	name      string
	criterion string
	run       func(ctx context.Context, t *T) error
	// waits marks a scenario that spends its time waiting (detection
	// windows at a low request rate): it runs in the waiting lane.
	waits bool
}

// T is what a scenario gets: its directory, the binaries, the upstream,
// and cleanups that run when it ends (last registered first).
type T struct {
	dir       string
	bins      harness.Bins
	upstream  string
	cleanups  []func()
	knownFail string
	out       io.Writer // the scenario's report, printed when it ends
}

func (t *T) run(ctx context.Context, fn func(context.Context, *T) error) error {
	defer func() {
		for i := len(t.cleanups) - 1; i >= 0; i-- {
			t.cleanups[i]()
		}
	}()
	return fn(ctx, t)
}

// Cleanup registers fn to run when the scenario ends.
func (t *T) Cleanup(fn func()) { t.cleanups = append(t.cleanups, fn) }

// Logf writes a step of the scenario to its report.
func (t *T) Logf(format string, args ...any) { fmt.Fprintf(t.out, "    "+format+"\n", args...) }

// KnownFail marks a failure of this scenario as a known bug (printed,
// not counted).
func (t *T) KnownFail(reason string) { t.knownFail = reason }

// Upstream returns the in-process upstream's URL.
func (t *T) Upstream() string { return t.upstream }

type skipError struct{ reason string }

func (e *skipError) Error() string { return "skipped: " + e.reason }

// Skip ends the scenario as skipped.
func Skip(reason string) error { return &skipError{reason} }

// Stack makes a stack in the scenario's directory, commits the config
// labelled "c1", starts the gateway and the agent, and waits until c1 is
// served. The stack is closed when the scenario ends.
func (t *T) Stack(ctx context.Context, opts harness.Options) (*harness.Stack, string, error) {
	opts.Bins, opts.Dir = t.bins, t.dir
	st, err := harness.NewStack(opts)
	if err != nil {
		return nil, "", err
	}
	t.Cleanup(st.Close)
	c1, err := st.Repo.WriteCommit("config.yaml", harness.ConfigYAML(t.upstream, "c1", nil), "c1")
	if err != nil {
		return nil, "", err
	}
	if err := st.StartGateway(ctx); err != nil {
		return nil, "", err
	}
	if err := st.StartAgent(ctx); err != nil {
		return nil, "", err
	}
	if err := t.waitServed(ctx, st, c1, "c1"); err != nil {
		return nil, "", err
	}
	return st, c1, nil
}

// commit writes the config labelled label and commits it.
func (t *T) commit(st *harness.Stack, label string) (string, error) {
	return st.Repo.WriteCommit("config.yaml", harness.ConfigYAML(t.upstream, label, nil), label)
}

// push commits the config labelled label and sends a signed webhook.
func (t *T) push(ctx context.Context, st *harness.Stack, label string) (string, error) {
	sha, err := t.commit(st, label)
	if err != nil {
		return "", err
	}
	_, err = st.Webhook(ctx)
	return sha, err
}

// pushServed commits yaml as config.yaml with message msg, sends a signed
// webhook and waits until the config labelled label is served (waitServed).
func (t *T) pushServed(ctx context.Context, st *harness.Stack, yaml, msg, label string) (string, error) {
	sha, err := st.Repo.WriteCommit("config.yaml", yaml, msg)
	if err != nil {
		return "", err
	}
	if _, err := st.Webhook(ctx); err != nil {
		return "", err
	}
	return sha, t.waitServed(ctx, st, sha, label)
}

// waitServed waits until the agent applied sha, the gateway runs it, and a
// request on a new connection is answered by the config labelled label.
func (t *T) waitServed(ctx context.Context, st *harness.Stack, sha, label string) error {
	return harness.WaitFor(ctx, 20*time.Second, fmt.Sprintf("%s (%s) to be applied and served", label, short(sha)), func() (bool, error) {
		ok, err := st.Converged(ctx, sha)
		return ok && st.Get("/").OK(label), err
	})
}

// expectServing checks n requests on new connections are all answered by
// the config labelled label.
func expectServing(st *harness.Stack, label string, n int) error {
	for i := range n {
		if r := st.Get("/"); !r.OK(label) {
			return fmt.Errorf("request %d of %d: %s, want 200 from %s", i+1, n, r, label)
		}
	}
	return nil
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// logContains reports whether the process log at path holds substr.
func logContains(path, substr string) bool {
	b, err := os.ReadFile(path)
	return err == nil && strings.Contains(string(b), substr)
}

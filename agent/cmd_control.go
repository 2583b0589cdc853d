package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/gitgate/gitgate/agent/internal/bundle"
	"github.com/gitgate/gitgate/agent/internal/control"
	"github.com/gitgate/gitgate/agent/internal/syncer"
)

// controlSocketEnv names the control socket when no flag is given.
const controlSocketEnv = "GITGATE_CONTROL_SOCKET"

// controlFlags are shared by the commands that talk to a running agent.
type controlFlags struct {
	socket   string
	stateDir string
	out      outputFlags
	// format is out resolved, set by prepare.
	format string
}

func (c *controlFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&c.socket, "control-socket", os.Getenv(controlSocketEnv), "the running agent's control socket (default <state-dir>/agent.sock, or $"+controlSocketEnv+")")
	fs.StringVar(&c.stateDir, "state-dir", "", "the running agent's state dir, to find its control socket")
	c.out.register(fs)
}

func (c *controlFlags) client() (*control.Client, error) {
	p := c.socket
	if p == "" && c.stateDir != "" {
		p = filepath.Join(c.stateDir, "agent.sock")
	}
	if p == "" {
		return nil, errors.New("give --control-socket or --state-dir (or set $" + controlSocketEnv + ")")
	}
	return control.NewClient(p), nil
}

// prepare resolves --output and returns the control client, or the exit
// code to stop with (usage errors reported on stderr).
func (c *controlFlags) prepare(name string, stderr io.Writer) (*control.Client, int) {
	var err error
	if c.format, err = c.out.resolve(); err != nil {
		fmt.Fprintf(stderr, "agent %s: %v\n", name, err)
		return nil, exitUsage
	}
	cl, err := c.client()
	if err != nil {
		fmt.Fprintf(stderr, "agent %s: %v\n", name, err)
		return nil, exitUsage
	}
	return cl, -1
}

// data writes v in the --output format unless it is table; it reports
// whether it did.
func (c *controlFlags) data(w io.Writer, v any) bool {
	if c.format == "table" {
		return false
	}
	_ = writeData(w, c.format, v)
	return true
}

// fail reports err and returns its exit code: 3 when the agent's control
// socket cannot be dialled, else 1.
func fail(stderr io.Writer, cmd string, err error) int {
	fmt.Fprintf(stderr, "agent %s: %v\n", cmd, err)
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return exitUnreachable
	}
	return exitFailed
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	if sha == "" {
		return "-"
	}
	return sha
}

func ago(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return " (" + time.Since(t).Round(time.Second).String() + " ago)"
}

func defineStatus(fs *pflag.FlagSet) body {
	var cf controlFlags
	cf.register(fs)
	return func(ctx context.Context, _ []string, stdout, stderr io.Writer) int {
		c, code := cf.prepare("status", stderr)
		if code >= 0 {
			return code
		}
		st, err := c.Status(ctx)
		if err != nil {
			return fail(stderr, "status", err)
		}
		if !cf.data(stdout, st) {
			writeStatus(stdout, st)
		}
		return exitOK
	}
}

func writeStatus(w io.Writer, st syncer.Status) {
	where := st.Repo + " branch " + st.Branch
	if st.Path != "" {
		where += " path " + st.Path
	}
	if st.Pin != nil {
		hold := "lifts when a new good commit reaches the branch"
		if st.Pin.Hold {
			hold = "held until `agent resume`"
		}
		fmt.Fprintf(w, "Pinned:        to %s since %s: %s (%s)\n", short(st.Pin.SHA), st.Pin.Since.Format(time.RFC3339), st.Pin.Reason, hold)
		if st.PinScope == "fleet" {
			fmt.Fprintf(w, "Pin scope:     fleet: the pin is in the repository and every replica obeys it (set by %s)\n", st.Pin.By)
		} else {
			reason := st.PinScopeReason
			if reason == "" {
				reason = "set before pins were kept in the repository"
			}
			fmt.Fprintf(w, "Pin scope:     THIS REPLICA ONLY: other replicas keep tracking the branch (%s)\n", reason)
		}
		if st.Pin.From != "" {
			fmt.Fprintf(w, "Rolled back:   from %s (marked bad)\n", short(st.Pin.From))
		}
	} else {
		fmt.Fprintf(w, "Tracking:      every new commit of %s is validated and applied\n", st.Branch)
	}
	fmt.Fprintf(w, "Source:        %s\n", where)
	fmt.Fprintf(w, "Branch head:   %s\n", short(st.BranchHead))
	fmt.Fprintf(w, "Last applied:  %s%s\n", short(st.LastApplied), ago(st.LastAppliedAt))
	fmt.Fprintf(w, "Last attempt:  %s %s%s\n", short(st.LastAttempted), st.LastResult, ago(st.LastAttemptedAt))
	gw := "unreachable"
	if st.GatewayReachable {
		gw = "reachable, running " + short(st.GatewayVersion)
		if st.LastApplied != "" && st.GatewayVersion != st.LastApplied {
			gw += ", not the applied " + short(st.LastApplied) + " (drift: edited by hand? the agent heals it)"
		}
	}
	fmt.Fprintf(w, "Gateway:       %s\n", gw)
	if st.GatewayError != "" {
		fmt.Fprintf(w, "Gateway error: %s\n", st.GatewayError)
	}
	if st.GatewayWarning != "" {
		fmt.Fprintf(w, "Gateway warns: %s\n", st.GatewayWarning)
	}
	if st.SourceError != "" {
		fmt.Fprintf(w, "Source error:  %s\n", st.SourceError)
	}
	if st.LastError != "" {
		fmt.Fprintf(w, "Last error:    %s (%d in a row)\n", st.LastError, st.Failures)
	}
	if len(st.Bad) > 0 {
		var b []string
		for _, s := range st.Bad {
			b = append(b, short(s))
		}
		fmt.Fprintf(w, "Bad commits:   %s\n", strings.Join(b, ", "))
	}
	writeBake(w, st.Bake)
}

func defineHistory(fs *pflag.FlagSet) body {
	var cf controlFlags
	cf.register(fs)
	var n int
	fs.IntVarP(&n, "n", "n", 20, "entries to show, newest first (0: all)")
	return func(ctx context.Context, _ []string, stdout, stderr io.Writer) int {
		c, code := cf.prepare("history", stderr)
		if code >= 0 {
			return code
		}
		entries, err := c.History(ctx, n)
		if err != nil {
			return fail(stderr, "history", err)
		}
		if !cf.data(stdout, entries) {
			writeHistory(stdout, entries)
		}
		return exitOK
	}
}

// writeHistory writes entries as a table, with each entry's problems, error
// and heal under it.
func writeHistory(stdout io.Writer, entries []bundle.Entry) {
	var table bytes.Buffer
	tw := tabwriter.NewWriter(&table, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tCOMMIT\tRESULT\tTRIGGER\tDURATION\tAUTHOR\tSUBJECT")
	for _, e := range entries {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%dms\t%s\t%s\n", e.Time.Local().Format("2006-01-02 15:04:05"), short(e.SHA), e.Result, e.Trigger, e.DurationMS, e.Author, e.Subject)
	}
	tw.Flush()
	rows := strings.Split(strings.TrimSuffix(table.String(), "\n"), "\n")
	fmt.Fprintln(stdout, rows[0])
	for i, e := range entries {
		fmt.Fprintln(stdout, rows[i+1])
		for _, d := range e.Diagnostics {
			fmt.Fprintf(stdout, "    %s\n", d.String())
		}
		if e.Error != "" && len(e.Diagnostics) == 0 {
			fmt.Fprintf(stdout, "    %s\n", strings.ReplaceAll(e.Error, "\n", " "))
		}
		if e.Replaced != nil {
			fmt.Fprintf(stdout, "    healed: gateway ran %s\n", e.Replaced)
		}
	}
}

func defineSync(fs *pflag.FlagSet) body {
	var cf controlFlags
	cf.register(fs)
	return func(ctx context.Context, _ []string, stdout, stderr io.Writer) int {
		c, code := cf.prepare("sync", stderr)
		if code >= 0 {
			return code
		}
		st, err := c.Sync(ctx)
		if err != nil {
			return fail(stderr, "sync", err)
		}
		if !cf.data(stdout, st) {
			writeStatus(stdout, st)
		}
		if st.LastError != "" || (st.LastResult == "rejected" && st.LastAttempted == st.BranchHead) {
			return exitFailed // the branch tip is not served
		}
		return exitOK
	}
}

func defineRollback(fs *pflag.FlagSet) body {
	var req control.RollbackRequest
	var rf repoPinFlags
	var cf controlFlags
	cf.register(fs)
	fs.BoolVar(&req.Hold, "hold", false, "keep the pin until 'agent resume', even when new commits arrive")
	fs.StringVar(&req.Reason, "reason", "", "why, shown in status")
	rf.register(fs, true)
	return func(ctx context.Context, pos []string, stdout, stderr io.Writer) int {
		if rf.repo != "" {
			if len(pos) != 1 {
				fmt.Fprintln(stderr, "agent rollback --repo: give the <sha-prefix> to pin the fleet to")
				return exitUsage
			}
			format, err := cf.out.resolve()
			if err != nil {
				fmt.Fprintf(stderr, "agent rollback: %v\n", err)
				return exitUsage
			}
			rf.hold, rf.reason, rf.format = req.Hold, req.Reason, format
			return rollbackRepo(ctx, &rf, pos[0], stdout, stderr)
		}
		if len(pos) == 1 {
			req.Rev = pos[0]
		}
		c, code := cf.prepare("rollback", stderr)
		if code >= 0 {
			return code
		}
		res, err := c.Rollback(ctx, req)
		if err != nil {
			return fail(stderr, "rollback", err)
		}
		if !cf.data(stdout, res) {
			writeRollback(stdout, res)
		}
		return exitOK
	}
}

func writeRollback(stdout io.Writer, res syncer.RollbackResult) {
	fmt.Fprintf(stdout, "Rolled back to %s and pinned", short(res.SHA))
	if res.Pin.Scope == "fleet" {
		fmt.Fprint(stdout, " in the repository: every replica follows")
	} else {
		fmt.Fprintf(stdout, " on THIS REPLICA ONLY (%s)", res.Pin.ScopeReason)
	}
	if res.From != "" {
		fmt.Fprintf(stdout, "; %s is marked bad", short(res.From))
	}
	if res.Pin.Hold {
		fmt.Fprintln(stdout, ". The pin holds until `agent resume`.")
	} else {
		fmt.Fprintln(stdout, ". The pin lifts when a new good commit reaches the branch.")
	}
}

func defineResume(fs *pflag.FlagSet) body {
	var rf repoPinFlags
	var cf controlFlags
	cf.register(fs)
	rf.register(fs, false)
	return func(ctx context.Context, _ []string, stdout, stderr io.Writer) int {
		if rf.repo != "" {
			format, err := cf.out.resolve()
			if err != nil {
				fmt.Fprintf(stderr, "agent resume: %v\n", err)
				return exitUsage
			}
			rf.format = format
			return resumeRepo(ctx, &rf, stdout, stderr)
		}
		c, code := cf.prepare("resume", stderr)
		if code >= 0 {
			return code
		}
		st, err := c.Resume(ctx)
		if err != nil {
			return fail(stderr, "resume", err)
		}
		if !cf.data(stdout, st) {
			fmt.Fprintln(stdout, "Pin lifted: tracking the branch again.")
		}
		return exitOK
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gitgate/gitgate/agent/internal/control"
	"github.com/gitgate/gitgate/agent/internal/syncer"
)

// controlSocketEnv names the control socket when no flag is given.
const controlSocketEnv = "GITGATE_CONTROL_SOCKET"

// controlFlags are shared by the commands that talk to a running agent.
type controlFlags struct {
	socket   string
	stateDir string
	json     bool
}

func (c *controlFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.socket, "control-socket", os.Getenv(controlSocketEnv), "the running agent's control socket (default <state-dir>/agent.sock, or $"+controlSocketEnv+")")
	fs.StringVar(&c.stateDir, "state-dir", "", "the running agent's state dir, to find its control socket")
	fs.BoolVar(&c.json, "json", false, "print JSON")
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

// parseControl parses args for a control command; interspersed flags after
// positional arguments are accepted.
func parseControl(name string, args []string, stderr io.Writer, extra func(*flag.FlagSet)) (*controlFlags, []string, int) {
	fs := flag.NewFlagSet("agent "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cf := &controlFlags{}
	cf.register(fs)
	if extra != nil {
		extra(fs)
	}
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, nil, 0
			}
			return nil, nil, 2
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	return cf, pos, -1
}

func printJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func fail(stderr io.Writer, cmd string, err error) int {
	fmt.Fprintf(stderr, "agent %s: %v\n", cmd, err)
	return 1
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

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cf, pos, code := parseControl("status", args, stderr, nil)
	if code >= 0 {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "agent status: unexpected argument %q\n", pos[0])
		return 2
	}
	c, err := cf.client()
	if err != nil {
		return fail(stderr, "status", err)
	}
	st, err := c.Status(ctx)
	if err != nil {
		return fail(stderr, "status", err)
	}
	if cf.json {
		printJSON(stdout, st)
		return 0
	}
	writeStatus(stdout, st)
	return 0
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

func runHistory(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var n int
	cf, pos, code := parseControl("history", args, stderr, func(fs *flag.FlagSet) {
		fs.IntVar(&n, "n", 20, "entries to show, newest first (0: all)")
	})
	if code >= 0 {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "agent history: unexpected argument %q\n", pos[0])
		return 2
	}
	c, err := cf.client()
	if err != nil {
		return fail(stderr, "history", err)
	}
	entries, err := c.History(ctx, n)
	if err != nil {
		return fail(stderr, "history", err)
	}
	if cf.json {
		printJSON(stdout, entries)
		return 0
	}
	// Align the entry rows, then put each entry's problems under its row.
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
	return 0
}

func runSync(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cf, pos, code := parseControl("sync", args, stderr, nil)
	if code >= 0 {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "agent sync: unexpected argument %q\n", pos[0])
		return 2
	}
	c, err := cf.client()
	if err != nil {
		return fail(stderr, "sync", err)
	}
	st, err := c.Sync(ctx)
	if err != nil {
		return fail(stderr, "sync", err)
	}
	if cf.json {
		printJSON(stdout, st)
	} else {
		writeStatus(stdout, st)
	}
	if st.LastError != "" || (st.LastResult == "rejected" && st.LastAttempted == st.BranchHead) {
		return 1 // the branch tip is not served
	}
	return 0
}

func runRollback(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var req control.RollbackRequest
	var rf repoPinFlags
	cf, pos, code := parseControl("rollback", args, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&req.Hold, "hold", false, "keep the pin until `agent resume`, even when new commits arrive")
		fs.StringVar(&req.Reason, "reason", "", "why, shown in status")
		rf.register(fs, true)
	})
	if code >= 0 {
		return code
	}
	if len(pos) > 1 {
		fmt.Fprintf(stderr, "agent rollback: want at most one <sha-prefix>, got %d\n", len(pos))
		return 2
	}
	if rf.repo != "" {
		if len(pos) != 1 {
			fmt.Fprintln(stderr, "agent rollback --repo: give the <sha-prefix> to pin the fleet to")
			return 2
		}
		rf.hold, rf.reason, rf.asJSON = req.Hold, req.Reason, cf.json
		return rollbackRepo(ctx, &rf, pos[0], stdout, stderr)
	}
	if len(pos) == 1 {
		req.Rev = pos[0]
	}
	c, err := cf.client()
	if err != nil {
		return fail(stderr, "rollback", err)
	}
	res, err := c.Rollback(ctx, req)
	if err != nil {
		return fail(stderr, "rollback", err)
	}
	if cf.json {
		printJSON(stdout, res)
		return 0
	}
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
	return 0
}

func runResume(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var rf repoPinFlags
	cf, pos, code := parseControl("resume", args, stderr, func(fs *flag.FlagSet) { rf.register(fs, false) })
	if code >= 0 {
		return code
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "agent resume: unexpected argument %q\n", pos[0])
		return 2
	}
	if rf.repo != "" {
		return resumeRepo(ctx, &rf, stdout, stderr)
	}
	c, err := cf.client()
	if err != nil {
		return fail(stderr, "resume", err)
	}
	st, err := c.Resume(ctx)
	if err != nil {
		return fail(stderr, "resume", err)
	}
	if cf.json {
		printJSON(stdout, st)
		return 0
	}
	fmt.Fprintln(stdout, "Pin lifted: tracking the branch again.")
	return 0
}

package main

import (
	"fmt"
	"io"
	"time"

	"github.com/gitgate/gitgate/agent/internal/safety"
)

// writeBake writes the bake in progress (or the last one) and its live
// numbers per route under `agent status`.
func writeBake(w io.Writer, b *safety.Status) {
	if b == nil {
		return
	}
	state := "in progress, until " + b.Until.Format(time.RFC3339)
	if b.Done {
		state = b.Result
	}
	fmt.Fprintf(w, "Bake:          %s (replacing %s): %s; %d checks, %d of %d breaches in a row\n",
		short(b.Version), short(b.From), state, b.Checks, b.Streak.Breaches, b.Needed)
	if b.Verdict.Outcome != "" {
		v := string(b.Verdict.Outcome)
		if b.Verdict.Reason != "" {
			v += ": " + b.Verdict.Reason
		}
		fmt.Fprintf(w, "Verdict:       %s\n", v)
	}
	for _, r := range b.Verdict.Routes {
		base := "none"
		if r.BaselineRatio >= 0 {
			base = fmt.Sprintf("%.1f%%", 100*r.BaselineRatio)
		}
		fmt.Fprintf(w, "  route %-20s %-20s %8d requests  errors %5.1f%% (baseline %s)  p99 <= %s\n",
			r.Route, r.Outcome, r.Requests, 100*r.ErrorRatio, base, r.P99)
	}
}

package ghreport

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-github/v60/github"

	"github.com/gitgate/gitgate/schemas"
)

// GitHub's limits.
const (
	// maxDescription is the longest commit status description.
	maxDescription = 140
	// maxComment is the longest issue comment body, in characters.
	maxComment = 65536
	// maxCheckText bounds a check run output's summary and text.
	maxCheckText = 65535
	// annotationsPerRequest is how many annotations one check run request carries.
	annotationsPerRequest = 50
	// maxAnnotationMessage bounds an annotation's message.
	maxAnnotationMessage = 4096
	// maxAnnotations bounds the annotations of one check run (20
	// requests): a pull request with a hundred thousand problems made
	// 2,000 requests on the one report worker, stalling every other
	// report and spending the rate limit. The summary and the comment
	// still count every problem.
	maxAnnotations = 1000
)

// ReportPullRequest evaluates pr and reports on the evaluated head: the
// gitgate/validate status (pending, then success, failure or error), the
// gitgate check run with one annotation per diagnostic, and the plan
// comment. Run calls it for queued events; it is exported for one-shot use.
// A refused write (read-only token) is logged and skipped; the returned
// error joins what could not be reported.
func (r *Reporter) ReportPullRequest(ctx context.Context, pr PullRequest) error {
	if r.opts.Evaluate == nil {
		return errors.New("ghreport: no Evaluator configured")
	}
	log := r.log.With().Int(logPR, pr.Number).Logger()
	var errs []error
	keep := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}

	keep(r.postStatus(ctx, pr.HeadSHA, ContextValidate, "pending", "gitgate is validating this commit against "+pr.BaseRef))
	checkID := r.startCheck(ctx, pr.HeadSHA)

	ectx, cancel := context.WithTimeout(ctx, r.opts.EvaluateTimeout)
	ev, err := r.opts.Evaluate(ectx, pr)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("evaluating pull request #%d: %w", pr.Number, ctx.Err())
		}
		log.Warn().Err(err).Str(logSHA, pr.HeadSHA).Msg("could not evaluate pull request")
		desc := "gitgate could not evaluate this commit: " + redact(err.Error())
		keep(r.postStatus(ctx, pr.HeadSHA, ContextValidate, "error", desc))
		keep(r.finishCheck(ctx, checkID, "failure", "gitgate could not evaluate this commit",
			"The agent could not evaluate this commit; it will try again on the next push.\n\n"+codeBlock(redact(err.Error())), "", nil))
		return errors.Join(append(errs, fmt.Errorf("evaluating pull request #%d: %w", pr.Number, err))...)
	}

	sha := ev.HeadSHA
	if sha == "" {
		sha = pr.HeadSHA
	}
	if sha != pr.HeadSHA {
		// The head moved (a force-push) before it was fetched: close what
		// was opened on the old head and report on what was evaluated.
		log.Info().Str(logSHA, sha).Str("event_sha", pr.HeadSHA).Msg("pull request head moved; reporting on the evaluated commit")
		keep(r.postStatus(ctx, pr.HeadSHA, ContextValidate, "error", "not validated: the pull request head moved to "+short(sha)))
		keep(r.finishCheck(ctx, checkID, "skipped", "superseded by "+short(sha),
			"The pull request head moved to "+short(sha)+" before this commit was validated.", "", nil))
		checkID = r.startCheck(ctx, sha)
	}

	valid := len(ev.Diagnostics) == 0
	state, conclusion := "success", "success"
	if !valid {
		state, conclusion = "failure", "failure"
	}
	keep(r.postStatus(ctx, sha, ContextValidate, state, validateDescription(ev)))

	title, summary := checkSummary(pr, ev, sha)
	text := ""
	if ev.PlanMarkdown != nil {
		text = truncateMarkdown(ev.PlanMarkdown(maxCheckText-1024), maxCheckText)
	}
	keep(r.finishCheck(ctx, checkID, conclusion, title, summary, text, r.annotations(ev.Diagnostics)))

	keep(r.upsertComment(ctx, pr.Number, renderComment(pr, ev, sha, r.opts.ConfigPath, maxComment)))
	log.Info().Str(logSHA, sha).Str(logState, state).Int("problems", len(ev.Diagnostics)).Msg("reported pull request")
	return errors.Join(errs...)
}

// postStatus posts a commit status unless the same one was the last posted
// for sha and context. A refused write is logged once and not returned.
func (r *Reporter) postStatus(ctx context.Context, sha, statusContext, state, desc string) error {
	desc = clip(desc, maxDescription)
	key, value := sha+"\x00"+statusContext, state+"\x00"+desc
	// Skip what was last posted, and a pending over any earlier status of
	// the same commit (a redelivered or reopened event re-evaluates a commit
	// whose result GitHub already shows).
	if r.posted.seen(key, value) || state == "pending" && r.posted.has(key) {
		return nil
	}
	st := &github.RepoStatus{
		State:       github.String(state),
		Description: github.String(desc),
		Context:     github.String(statusContext),
	}
	if r.opts.DetailsURL != "" {
		st.TargetURL = github.String(r.opts.DetailsURL)
	}
	err := r.call(ctx, "posting status "+statusContext, true, func(ctx context.Context) (*github.Response, error) {
		_, resp, err := r.opts.Client.Repositories.CreateStatus(ctx, r.opts.Owner, r.opts.Repo, sha, st)
		return resp, err
	})
	if isForbidden(err) {
		r.warnOnce("status").Err(err).Str(logContext, statusContext).Str(logSHA, sha).
			Msg("GitHub refused a commit status (read-only token or fork); continuing without it")
		return nil
	}
	if err != nil {
		return err
	}
	r.posted.remember(key, value)
	r.log.Debug().Str(logContext, statusContext).Str(logSHA, sha).Str(logState, state).Msg("posted status")
	return nil
}

// startCheck creates the in-progress check run and returns its id, or 0
// when check runs are unavailable (a personal token, a failure).
func (r *Reporter) startCheck(ctx context.Context, sha string) int64 {
	if r.checksOff.Load() {
		return 0
	}
	opts := github.CreateCheckRunOptions{
		Name:      CheckName,
		HeadSHA:   sha,
		Status:    github.String("in_progress"),
		StartedAt: &github.Timestamp{Time: time.Now()},
	}
	if r.opts.DetailsURL != "" {
		opts.DetailsURL = github.String(r.opts.DetailsURL)
	}
	var run *github.CheckRun
	err := r.call(ctx, "creating check run", true, func(ctx context.Context) (*github.Response, error) {
		var resp *github.Response
		var err error
		run, resp, err = r.opts.Client.Checks.CreateCheckRun(ctx, r.opts.Owner, r.opts.Repo, opts)
		return resp, err
	})
	switch {
	case isForbidden(err):
		r.checksOff.Store(true)
		r.log.Warn().Err(err).Msg("GitHub refused to create a check run (check runs need a GitHub App token); reporting with commit statuses only from now on")
		return 0
	case err != nil:
		r.log.Warn().Err(err).Str(logSHA, sha).Msg("could not create check run")
		return 0
	}
	return run.GetID()
}

// finishCheck completes check run id with conclusion, sending annotations
// in batches of 50: every batch but the last in an update that keeps the run
// in progress, the last with the conclusion.
func (r *Reporter) finishCheck(ctx context.Context, id int64, conclusion, title, summary, text string, anns []*github.CheckRunAnnotation) error {
	if id == 0 {
		return nil
	}
	title = clip(title, 255)
	summary = truncateMarkdown(summary, maxCheckText)
	for first := true; first || len(anns) > 0; first = false {
		n := min(len(anns), annotationsPerRequest)
		batch := anns[:n]
		anns = anns[n:]
		out := &github.CheckRunOutput{
			Title:       github.String(title),
			Summary:     github.String(summary),
			Annotations: batch,
		}
		if text != "" {
			out.Text = github.String(text)
		}
		opts := github.UpdateCheckRunOptions{Name: CheckName, Output: out}
		if len(anns) == 0 {
			opts.Status = github.String("completed")
			opts.Conclusion = github.String(conclusion)
			opts.CompletedAt = &github.Timestamp{Time: time.Now()}
		}
		err := r.call(ctx, "updating check run", true, func(ctx context.Context) (*github.Response, error) {
			_, resp, err := r.opts.Client.Checks.UpdateCheckRun(ctx, r.opts.Owner, r.opts.Repo, id, opts)
			return resp, err
		})
		if isForbidden(err) {
			r.warnOnce("check-update").Err(err).Msg("GitHub refused a check run update; continuing without it")
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// annotations turns diagnostics that name a file into failure annotations
// at repository paths, the first maxAnnotations of them. Diagnostics
// without a file are only in the summary.
func (r *Reporter) annotations(diags []schemas.Diagnostic) []*github.CheckRunAnnotation {
	var out []*github.CheckRunAnnotation
	for _, d := range diags {
		if d.File == "" {
			continue
		}
		if len(out) == maxAnnotations {
			break
		}
		p := path.Clean(path.Join(r.opts.ConfigPath, d.File))
		line := max(d.Line, 1)
		a := &github.CheckRunAnnotation{
			Path:            github.String(p),
			StartLine:       github.Int(line),
			EndLine:         github.Int(line),
			AnnotationLevel: github.String("failure"),
			Message:         github.String(clip(redact(d.Message), maxAnnotationMessage)),
			Title:           github.String(clip(nonEmpty(d.Path, "gitgate"), 255)),
		}
		if d.Column > 0 {
			a.StartColumn = github.Int(d.Column)
			a.EndColumn = github.Int(d.Column)
		}
		out = append(out, a)
	}
	return out
}

// upsertComment edits the pull request's plan comment (found by its marker)
// or creates it when there is none, so there is only ever one.
func (r *Reporter) upsertComment(ctx context.Context, number int, body string) error {
	sum := sha256.Sum256([]byte(body))
	key, value := "comment\x00"+strconv.Itoa(number), hex.EncodeToString(sum[:])
	if r.comments.get(number) != 0 && r.posted.seen(key, value) {
		return nil // the comment already says this
	}
	err := r.writeComment(ctx, number, body)
	if err == nil && r.comments.get(number) != 0 {
		r.posted.remember(key, value)
	}
	return err
}

func (r *Reporter) writeComment(ctx context.Context, number int, body string) error {
	edit := func(id int64) error {
		return r.call(ctx, "editing plan comment", true, func(ctx context.Context) (*github.Response, error) {
			_, resp, err := r.opts.Client.Issues.EditComment(ctx, r.opts.Owner, r.opts.Repo, id, &github.IssueComment{Body: github.String(body)})
			return resp, err
		})
	}
	refused := func(err error) bool {
		if isForbidden(err) {
			r.warnOnce("comment").Err(err).Int(logPR, number).Msg("GitHub refused the plan comment (read-only token or fork); continuing without it")
			return true
		}
		return false
	}

	if id := r.comments.get(number); id != 0 {
		err := edit(id)
		if err == nil {
			return nil
		}
		var er *github.ErrorResponse
		if !errors.As(err, &er) || er.Response == nil || er.Response.StatusCode != 404 {
			if refused(err) {
				return nil
			}
			return err
		}
		r.comments.forget(number) // deleted by someone: find or create again
	}

	// Two rounds: a create that timed out or got a 5xx may have been
	// stored, so look again before creating a second time.
	for round := 0; ; round++ {
		id, err := r.findComment(ctx, number)
		if err != nil {
			if refused(err) {
				return nil
			}
			return err
		}
		if id != 0 {
			r.comments.set(number, id)
			err := edit(id)
			if refused(err) {
				return nil
			}
			return err
		}
		var created *github.IssueComment
		err = r.call(ctx, "creating plan comment", false, func(ctx context.Context) (*github.Response, error) {
			var resp *github.Response
			var err error
			created, resp, err = r.opts.Client.Issues.CreateComment(ctx, r.opts.Owner, r.opts.Repo, number, &github.IssueComment{Body: github.String(body)})
			return resp, err
		})
		switch {
		case err == nil:
			r.comments.set(number, created.GetID())
			return nil
		case refused(err):
			return nil
		case round == 0 && isAmbiguous(err) && ctx.Err() == nil:
			r.log.Info().Err(err).Int(logPR, number).Msg("plan comment creation failed ambiguously; looking for it before trying again")
			continue
		default:
			return err
		}
	}
}

// findComment lists the pull request's comments, following pagination,
// and returns the id of the first one carrying the marker, or 0.
func (r *Reporter) findComment(ctx context.Context, number int) (int64, error) {
	opts := &github.IssueListCommentsOptions{ListOptions: github.ListOptions{PerPage: 100}}
	for page := 0; page < 100; page++ {
		var comments []*github.IssueComment
		var resp *github.Response
		err := r.call(ctx, "listing pull request comments", true, func(ctx context.Context) (*github.Response, error) {
			var err error
			comments, resp, err = r.opts.Client.Issues.ListComments(ctx, r.opts.Owner, r.opts.Repo, number, opts)
			return resp, err
		})
		if err != nil {
			return 0, err
		}
		for _, c := range comments {
			if strings.HasPrefix(strings.TrimSpace(c.GetBody()), CommentMarker) {
				return c.GetID(), nil
			}
		}
		if resp == nil || resp.NextPage == 0 {
			return 0, nil
		}
		opts.Page = resp.NextPage
	}
	return 0, fmt.Errorf("listing pull request comments: more than 100 pages")
}

// validateDescription is the one-line status description.
func validateDescription(ev Evaluation) string {
	if n := len(ev.Diagnostics); n > 0 {
		first := ev.Diagnostics[0].String()
		if n == 1 {
			return redact("invalid: " + first)
		}
		return redact(fmt.Sprintf("invalid: %d problems; first: %s", n, first))
	}
	if !ev.Changed {
		return "valid: no change to the gateway config"
	}
	c, u, d := totals(ev.Counts)
	return fmt.Sprintf("valid: %d to create, %d to update, %d to delete", c, u, d)
}

// checkSummary is the check run's title and summary: the counts, or the
// problems that have no file to be annotated on.
func checkSummary(pr PullRequest, ev Evaluation, sha string) (title, summary string) {
	var b strings.Builder
	if n := len(ev.Diagnostics); n > 0 {
		title = fmt.Sprintf("%d problem(s) in the gateway config", n)
		fmt.Fprintf(&b, "Commit `%s` does not validate: %d problem(s). Each one with a file is annotated on the diff.\n\n", short(sha), n)
		writeDiagnostics(&b, ev.Diagnostics, 200)
		return title, b.String()
	}
	if !ev.Changed {
		title = "valid, no change"
	} else {
		c, u, d := totals(ev.Counts)
		title = fmt.Sprintf("valid: %d to create, %d to update, %d to delete", c, u, d)
	}
	fmt.Fprintf(&b, "Commit `%s` validates against `%s`.\n\n", short(sha), pr.BaseRef)
	writeCounts(&b, ev.Counts)
	return title, b.String()
}

// ops are the columns of the counts table.
var ops = []string{"create", "update", "delete"}

func totals(counts map[string]map[string]int) (c, u, d int) {
	for _, m := range counts {
		c += m["create"]
		u += m["update"]
		d += m["delete"]
	}
	return c, u, d
}

func writeCounts(b *strings.Builder, counts map[string]map[string]int) {
	kinds := make([]string, 0, len(counts))
	for k, m := range counts {
		if m["create"]+m["update"]+m["delete"] > 0 {
			kinds = append(kinds, k)
		}
	}
	if len(kinds) == 0 {
		b.WriteString("No change to routes, upstreams or policies.\n")
		return
	}
	sort.Strings(kinds)
	b.WriteString("| kind | create | update | delete |\n| --- | ---: | ---: | ---: |\n")
	for _, k := range kinds {
		fmt.Fprintf(b, "| %s", escapeInline(k))
		for _, op := range ops {
			fmt.Fprintf(b, " | %d", counts[k][op])
		}
		b.WriteString(" |\n")
	}
}

// writeDiagnostics writes up to limit diagnostics as a list.
func writeDiagnostics(b *strings.Builder, diags []schemas.Diagnostic, limit int) {
	for i, d := range diags {
		if i == limit {
			fmt.Fprintf(b, "- … and %d more (see the check run's annotations or run `agent validate`)\n", len(diags)-limit)
			break
		}
		b.WriteString("- ")
		loc := d.File
		if loc != "" && d.Line > 0 {
			loc += fmt.Sprintf(":%d", d.Line)
			if d.Column > 0 {
				loc += fmt.Sprintf(":%d", d.Column)
			}
		}
		if loc != "" {
			b.WriteString(codeSpan(loc))
			b.WriteString(" ")
		}
		if d.Path != "" {
			b.WriteString(codeSpan(d.Path))
			b.WriteString(": ")
		}
		b.WriteString(escapeInline(clip(redact(d.Message), 500)))
		b.WriteString("\n")
	}
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

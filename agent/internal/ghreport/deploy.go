package ghreport

import (
	"context"
	"fmt"

	"github.com/google/go-github/v60/github"
)

// ReportDeploy reports one apply attempt on the tracked branch: the
// gitgate/deploy status, or with Options.Deployments a GitHub Deployment of
// the commit and its success or failure status. Run calls it for queued
// reports; it is exported for one-shot use. A refused write is logged and
// skipped.
func (r *Reporter) ReportDeploy(ctx context.Context, d Deploy) error {
	state, desc := "success", "live as "+d.Version
	if d.Failed {
		state, desc = "failure", d.Reason
	}
	if !r.opts.Deployments {
		return r.postStatus(ctx, d.SHA, ContextDeploy, state, desc)
	}
	return r.postDeployment(ctx, d.SHA, state, clip(desc, maxDescription))
}

// postDeployment creates a Deployment of sha and its status, once per sha
// and state.
func (r *Reporter) postDeployment(ctx context.Context, sha, state, desc string) error {
	key, value := sha+"\x00deployment:"+r.opts.Environment, state+"\x00"+desc
	if r.posted.seen(key, value) {
		return nil
	}
	req := &github.DeploymentRequest{
		Ref:              github.String(sha),
		Task:             github.String("deploy"),
		AutoMerge:        github.Bool(false),
		RequiredContexts: &[]string{}, // the commit is already applied: no checks gate the record
		Environment:      github.String(r.opts.Environment),
		Description:      github.String(desc),
	}
	var dep *github.Deployment
	err := r.call(ctx, "creating deployment", false, func(ctx context.Context) (*github.Response, error) {
		var resp *github.Response
		var err error
		dep, resp, err = r.opts.Client.Repositories.CreateDeployment(ctx, r.opts.Owner, r.opts.Repo, req)
		return resp, err
	})
	if isForbidden(err) {
		r.warnOnce("deployment").Err(err).Str(logSHA, sha).Msg("GitHub refused to create a deployment; continuing without it")
		return nil
	}
	if err != nil {
		return err
	}
	sreq := &github.DeploymentStatusRequest{
		State:       github.String(state),
		Description: github.String(desc),
		Environment: github.String(r.opts.Environment),
	}
	if r.opts.DetailsURL != "" {
		sreq.LogURL = github.String(r.opts.DetailsURL)
	}
	err = r.call(ctx, "creating deployment status", true, func(ctx context.Context) (*github.Response, error) {
		_, resp, err := r.opts.Client.Repositories.CreateDeploymentStatus(ctx, r.opts.Owner, r.opts.Repo, dep.GetID(), sreq)
		return resp, err
	})
	if isForbidden(err) {
		r.warnOnce("deployment").Err(err).Str(logSHA, sha).Msg("GitHub refused a deployment status; continuing without it")
		return nil
	}
	if err != nil {
		return fmt.Errorf("deployment %d of %s: %w", dep.GetID(), short(sha), err)
	}
	r.posted.remember(key, value)
	return nil
}

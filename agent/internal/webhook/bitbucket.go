package webhook

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// bitbucket reads Bitbucket Cloud and Bitbucket Server/Data Center
// deliveries; X-Event-Key tells them apart ("repo:push" and "pullrequest:*"
// from Cloud, "repo:refs_changed", "pr:*" and "diagnostics:ping" from
// Server). Both sign with the webhook's secret as X-Hub-Signature:
// "sha256=" + hex HMAC-SHA256 of the body. A Bitbucket Cloud webhook has no
// secret unless one is set when it is created or edited, and its
// deliveries are then unsigned: they are refused like any other.
type bitbucket struct{}

func (bitbucket) name() string { return "bitbucket" }

func (bitbucket) event(h http.Header) (string, string) {
	_, id := firstHeader(h, "X-Request-UUID", "X-Request-Id")
	return h.Get("X-Event-Key"), id
}

func (bitbucket) events() []string {
	return []string{
		"repo:push", "pullrequest:created", "pullrequest:updated", "pullrequest:fulfilled", "pullrequest:rejected",
		"repo:refs_changed", "pr:opened", "pr:from_ref_updated", "pr:modified", "pr:merged", "pr:declined", "pr:deleted",
		"diagnostics:ping",
	}
}

func (bitbucket) verify(secret []byte, h http.Header, body []byte) error {
	const header = "X-Hub-Signature"
	sig := h.Get(header)
	if sig == "" {
		return verifyHexHMAC(secret, body, header, "")
	}
	hexSig, ok := strings.CutPrefix(sig, "sha256=")
	if !ok {
		return &signatureError{header: header}
	}
	return verifyHexHMAC(secret, body, header, hexSig)
}

// bitbucketRef is a Cloud push change's side: a branch or tag by name.
type bitbucketRef struct {
	Type string `json:"type"` // "branch", "tag", "annotated_tag"
	Name string `json:"name"`
}

// bitbucketServerRepo is how Server names a repository: PROJECT/slug.
type bitbucketServerRepo struct {
	Slug    string `json:"slug"`
	Project struct {
		Key string `json:"key"`
	} `json:"project"`
}

func (r bitbucketServerRepo) fullName() string {
	if r.Slug == "" {
		return ""
	}
	return r.Project.Key + "/" + r.Slug
}

// bitbucketPayload is the part of Cloud's repo:push and pullrequest:*
// and Server's repo:refs_changed and pr:* events the agent reads. Cloud
// names the repository repository.full_name; Server repository.project.key
// and repository.slug (in pullRequest.toRef.repository for pr:*).
type bitbucketPayload struct {
	Repository struct {
		FullName string `json:"full_name"`
		bitbucketServerRepo
	} `json:"repository"`
	// Cloud.
	Push struct {
		Changes []struct {
			New *bitbucketRef `json:"new"`
			Old *bitbucketRef `json:"old"`
		} `json:"changes"`
	} `json:"push"`
	PullRequest struct {
		Destination struct {
			Branch struct {
				Name string `json:"name"`
			} `json:"branch"`
		} `json:"destination"`
	} `json:"pullrequest"`
	// Server.
	Changes []struct {
		RefID string `json:"refId"`
		Ref   struct {
			ID string `json:"id"`
		} `json:"ref"`
	} `json:"changes"`
	ServerPullRequest struct {
		ToRef struct {
			ID         string              `json:"id"`
			Repository bitbucketServerRepo `json:"repository"`
		} `json:"toRef"`
	} `json:"pullRequest"`
}

func (bitbucket) parse(event string, body []byte) (delivery, error) {
	switch {
	case event == "diagnostics:ping":
		return delivery{kind: kindPing}, nil
	case !slices.Contains(bitbucket{}.events(), event):
		// Comments, approvals, forks...: nothing for the agent.
		return delivery{}, nil
	}
	var p bitbucketPayload
	if err := json.Unmarshal(body, &p); err != nil {
		return delivery{}, fmt.Errorf("decoding Bitbucket %s: %w", event, err)
	}
	switch {
	case event == "repo:push":
		d := delivery{kind: kindPush, repo: p.Repository.FullName}
		for _, c := range p.Push.Changes {
			side := c.New
			if side == nil { // a deleted branch or tag
				side = c.Old
			}
			if side == nil {
				continue
			}
			prefix := "refs/heads/"
			if side.Type != "branch" {
				prefix = "refs/tags/"
			}
			d.refs = append(d.refs, prefix+side.Name)
		}
		return d, nil
	case event == "repo:refs_changed":
		d := delivery{kind: kindPush, repo: p.Repository.fullName()}
		for _, c := range p.Changes {
			ref := c.Ref.ID
			if ref == "" {
				ref = c.RefID
			}
			d.refs = append(d.refs, ref)
		}
		return d, nil
	case strings.HasPrefix(event, "pullrequest:"):
		return delivery{kind: kindPullRequest, repo: p.Repository.FullName,
			refs: []string{"refs/heads/" + p.PullRequest.Destination.Branch.Name}}, nil
	default: // pr:
		to := p.ServerPullRequest.ToRef
		return delivery{kind: kindPullRequest, repo: to.Repository.fullName(), refs: []string{to.ID}}, nil
	}
}

package webhook

import (
	"net/http"

	"github.com/google/go-github/v60/github"
)

// gitHub reads GitHub deliveries: X-GitHub-Event, X-GitHub-Delivery and
// X-Hub-Signature-256 ("sha256=" + hex HMAC-SHA256 of the body).
type gitHub struct{}

func (gitHub) name() string { return "github" }

func (gitHub) event(h http.Header) (string, string) {
	return h.Get(github.EventTypeHeader), h.Get(github.DeliveryIDHeader)
}

func (gitHub) events() []string { return []string{"ping", "push", "pull_request"} }

func (gitHub) verify(secret []byte, h http.Header, body []byte) error {
	return Verify(secret, body, h.Get("X-Hub-Signature-256"), h.Get("X-Hub-Signature"))
}

func (gitHub) parse(event string, body []byte) (delivery, error) {
	switch event {
	case "ping", "push", "pull_request":
	default:
		return delivery{}, nil
	}
	payload, err := github.ParseWebHook(event, body)
	if err != nil {
		return delivery{}, err
	}
	switch ev := payload.(type) {
	case *github.PingEvent:
		return delivery{kind: kindPing}, nil
	case *github.PushEvent:
		return delivery{kind: kindPush, repo: ev.GetRepo().GetFullName(), refs: []string{ev.GetRef()}}, nil
	case *github.PullRequestEvent:
		return delivery{kind: kindPullRequest, repo: ev.GetRepo().GetFullName(),
			refs: []string{"refs/heads/" + ev.GetPullRequest().GetBase().GetRef()}, pullRequest: ev}, nil
	}
	return delivery{}, nil
}

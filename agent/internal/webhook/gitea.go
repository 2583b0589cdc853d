package webhook

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// gitea reads Gitea and Forgejo deliveries. Forgejo sends X-Forgejo-*
// headers and, for compatibility, the X-Gitea-* ones; the Forgejo header
// wins when both are there. The signature is the hex HMAC-SHA256 of the
// body with no prefix. Gitea also sends GitHub-style headers; they are not
// read, so a delivery to /webhooks/gitea is judged by Gitea's own.
type gitea struct{}

func (gitea) name() string { return "gitea" }

func (gitea) event(h http.Header) (string, string) {
	_, ev := firstHeader(h, "X-Forgejo-Event", "X-Gitea-Event")
	_, id := firstHeader(h, "X-Forgejo-Delivery", "X-Gitea-Delivery")
	return ev, id
}

func (gitea) events() []string { return []string{"push", "pull_request"} }

func (gitea) verify(secret []byte, h http.Header, body []byte) error {
	header, sig := firstHeader(h, "X-Forgejo-Signature", "X-Gitea-Signature")
	if sig == "" {
		header = "X-Gitea-Signature or X-Forgejo-Signature"
	}
	return verifyHexHMAC(secret, body, header, sig)
}

// giteaPayload is the part of a push or pull_request event the agent
// reads; Gitea's shapes follow GitHub's.
type giteaPayload struct {
	Ref        string `json:"ref"`
	Repository struct {
		FullName string `json:"full_name"`
	} `json:"repository"`
	PullRequest struct {
		Base struct {
			Ref string `json:"ref"`
		} `json:"base"`
	} `json:"pull_request"`
}

func (gitea) parse(event string, body []byte) (delivery, error) {
	if event != "push" && event != "pull_request" {
		return delivery{}, nil
	}
	var p giteaPayload
	if err := json.Unmarshal(body, &p); err != nil {
		return delivery{}, fmt.Errorf("decoding Gitea %s: %w", event, err)
	}
	if event == "push" {
		return delivery{kind: kindPush, repo: p.Repository.FullName, refs: []string{p.Ref}}, nil
	}
	return delivery{kind: kindPullRequest, repo: p.Repository.FullName, refs: []string{"refs/heads/" + p.PullRequest.Base.Ref}}, nil
}

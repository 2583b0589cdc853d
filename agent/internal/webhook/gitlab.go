package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
)

// gitLab reads GitLab deliveries: X-Gitlab-Event ("Push Hook", "Tag Push
// Hook", "Merge Request Hook", "System Hook"), X-Gitlab-Event-UUID, and
// X-Gitlab-Token, which is the webhook's "Secret token" sent as is: GitLab
// does not sign the body, so the token is compared in constant time and TLS
// is what keeps it secret.
type gitLab struct{}

func (gitLab) name() string { return "gitlab" }

func (gitLab) event(h http.Header) (string, string) {
	return h.Get("X-Gitlab-Event"), h.Get("X-Gitlab-Event-UUID")
}

func (gitLab) events() []string {
	return []string{"Push Hook", "Tag Push Hook", "Merge Request Hook", "System Hook"}
}

func (gitLab) verify(secret []byte, h http.Header, _ []byte) error {
	const header = "X-Gitlab-Token"
	if len(secret) == 0 {
		return fmt.Errorf("verifying %s: no secret configured", header)
	}
	token := h.Get(header)
	if token == "" {
		return &signatureError{header: header, missing: true}
	}
	// Hash both sides so the comparison takes the same time whatever the
	// token's length (subtle.ConstantTimeCompare returns early on a
	// length mismatch).
	got, want := sha256.Sum256([]byte(token)), sha256.Sum256(secret)
	if !hmac.Equal(got[:], want[:]) {
		return &signatureError{header: header}
	}
	return nil
}

// gitLabPayload is the part of a push, tag push or merge request event
// the agent reads. System hooks carry event_name instead of object_kind.
type gitLabPayload struct {
	ObjectKind string `json:"object_kind"`
	EventName  string `json:"event_name"`
	Ref        string `json:"ref"`
	Project    struct {
		PathWithNamespace string `json:"path_with_namespace"`
	} `json:"project"`
	ObjectAttributes struct {
		TargetBranch string `json:"target_branch"`
	} `json:"object_attributes"`
}

func (gitLab) parse(event string, body []byte) (delivery, error) {
	switch event {
	case "Push Hook", "Tag Push Hook", "Merge Request Hook", "System Hook":
	default:
		return delivery{}, nil
	}
	var p gitLabPayload
	if err := json.Unmarshal(body, &p); err != nil {
		return delivery{}, fmt.Errorf("decoding GitLab %s: %w", event, err)
	}
	k := p.ObjectKind
	if k == "" {
		k = p.EventName
	}
	repo := p.Project.PathWithNamespace
	switch k {
	case "push", "tag_push":
		return delivery{kind: kindPush, repo: repo, refs: []string{p.Ref}}, nil
	case "merge_request":
		return delivery{kind: kindPullRequest, repo: repo, refs: []string{"refs/heads/" + p.ObjectAttributes.TargetBranch}}, nil
	}
	return delivery{}, nil
}

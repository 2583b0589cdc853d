package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"

	"github.com/google/go-github/v60/github"
)

// host is one Git host's webhook dialect, served at POST /webhooks/{name}.
// It only reads headers and bodies; the Handler owns the bounds on
// unauthenticated reads, replay memory, logging, metrics and the nudge.
type host interface {
	// name is the route's last segment and the "host" log field and label.
	name() string
	// event returns the delivery's event name and delivery ID from its
	// headers, each "" when absent. Both are unauthenticated.
	event(h http.Header) (event, delivery string)
	// events are the event names the host reads; others are counted as
	// "other" in the metrics, since a stranger chooses the header.
	events() []string
	// verify checks the delivery's signature (or token) against secret,
	// in constant time. It runs before parse, on a bounded body.
	verify(secret []byte, h http.Header, body []byte) error
	// parse reads a verified delivery. An event the host does not read is
	// kindOther, not an error; a body that does not decode is an error.
	parse(event string, body []byte) (delivery, error)
}

// kind is what a delivery asks of the agent.
type kind int

const (
	kindOther       kind = iota // nothing: logged and answered "event ignored"
	kindPing                    // a test delivery from the host's settings page
	kindPush                    // refs were updated: maybe a nudge
	kindPullRequest             // a pull or merge request against repo
)

// delivery is what the Handler reads of a verified payload: only which
// repository and refs, never a SHA (the sync loop resolves the tip itself).
type delivery struct {
	kind kind
	// repo is the repository as the host spells it: "owner/name",
	// "group/subgroup/project" on GitLab, "PROJECT/slug" on Bitbucket Server.
	repo string
	// refs are the refs a push updated, or the target branch's ref of a
	// pull request ("refs/heads/main", "refs/tags/v1").
	refs []string
	// pullRequest is set for GitHub pull_request events, which go to the
	// PullRequestReporter; other hosts' requests are only logged for now.
	pullRequest *github.PullRequestEvent
}

// hosts are the dialects served, in route order.
var hosts = []host{gitHub{}, gitLab{}, gitea{}, bitbucket{}}

// signatureError is a missing or wrong signature header.
type signatureError struct {
	header  string
	missing bool
}

func (e *signatureError) Error() string {
	if e.missing {
		return "delivery is not signed (no " + e.header + "); set the webhook secret on the host"
	}
	return e.header + " does not match the body"
}

// verifyHexHMAC checks that hexSig is the hex HMAC-SHA256 of body under
// secret, in constant time. header names the header in the error.
func verifyHexHMAC(secret, body []byte, header, hexSig string) error {
	if len(secret) == 0 {
		return fmt.Errorf("verifying %s: no secret configured", header)
	}
	if hexSig == "" {
		return &signatureError{header: header, missing: true}
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return &signatureError{header: header}
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return &signatureError{header: header}
	}
	return nil
}

// firstHeader returns the first of names present in h, and its value.
func firstHeader(h http.Header, names ...string) (name, value string) {
	for _, n := range names {
		if v := h.Get(n); v != "" {
			return n, v
		}
	}
	return names[0], ""
}

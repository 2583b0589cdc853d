package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gitgate/gitgate/agent/internal/syncer"
)

// Headers of a webhook delivery.
const (
	// HeaderSignature is "sha256=" and the hex HMAC-SHA256, keyed with the
	// sink's secret, of the timestamp header's value, a ".", and the body.
	HeaderSignature = "X-Gitgate-Signature-256"
	// HeaderTimestamp is the Unix time (seconds) of the attempt; receivers
	// refuse old ones to stop replays.
	HeaderTimestamp = "X-Gitgate-Timestamp"
	// HeaderEvent is the event name (EventNames).
	HeaderEvent = "X-Gitgate-Event"
	// HeaderDelivery is a random ID, the same for every attempt of one
	// notification, so receivers can drop duplicates.
	HeaderDelivery = "X-Gitgate-Delivery"
)

// message is one queued notification: its name and the loop's event.
type message struct {
	name     string
	delivery string
	event    syncer.Event
}

// sink builds the request of one attempt.
type sink interface {
	request(ctx context.Context, m message, now time.Time) (*http.Request, error)
}

// webhookSink posts the event as JSON with an HMAC signature.
type webhookSink struct {
	url    string
	secret []byte
}

// Payload is the JSON body a webhook sink posts: the loop's event (whose
// "event" field is the event name), a one-line summary and the delivery ID.
type Payload struct {
	syncer.Event
	Summary  string `json:"summary"`
	Delivery string `json:"delivery"`
}

func (s *webhookSink) request(ctx context.Context, m message, now time.Time) (*http.Request, error) {
	ev := m.event
	ev.Kind = syncer.EventKind(m.name)
	body, err := json.Marshal(Payload{Event: ev, Summary: summary(m.name, m.event), Delivery: m.delivery})
	if err != nil {
		return nil, fmt.Errorf("encoding the payload: %w", err)
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	req, err := newPost(ctx, s.url, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderEvent, m.name)
	req.Header.Set(HeaderDelivery, m.delivery)
	req.Header.Set(HeaderSignature, Sign(s.secret, ts, body))
	return req, nil
}

// Sign returns the HeaderSignature value for body sent at timestamp ts
// (HeaderTimestamp's value): "sha256=" and hex(HMAC-SHA256(secret,
// ts + "." + body)).
func Sign(secret []byte, ts string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// slackSink posts to a Slack incoming webhook; its URL is a secret.
type slackSink struct {
	url string
}

func (s *slackSink) request(ctx context.Context, m message, _ time.Time) (*http.Request, error) {
	text := summary(m.name, m.event)
	e := m.event
	ctxLine := fmt.Sprintf("%s@%s", e.Repo, e.Branch)
	if e.Replica != "" {
		ctxLine += " · replica " + e.Replica
	}
	type textObj struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	type block struct {
		Type     string    `json:"type"`
		Text     *textObj  `json:"text,omitempty"`
		Elements []textObj `json:"elements,omitempty"`
	}
	detail := slackEscape(text)
	if len(e.Diagnostics) > 0 {
		var b strings.Builder
		for i, d := range e.Diagnostics {
			if i == 5 {
				fmt.Fprintf(&b, "… and %d more\n", len(e.Diagnostics)-5)
				break
			}
			fmt.Fprintf(&b, "%s:%d: %s\n", d.File, d.Line, d.Message)
		}
		detail += "\n```" + slackEscape(b.String()) + "```"
	}
	body, err := json.Marshal(struct {
		Text   string  `json:"text"`
		Blocks []block `json:"blocks"`
	}{
		Text: text,
		Blocks: []block{
			{Type: "section", Text: &textObj{Type: "mrkdwn", Text: detail}},
			{Type: "context", Elements: []textObj{{Type: "mrkdwn", Text: slackEscape(ctxLine)}}},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("encoding the Slack message: %w", err)
	}
	return newPost(ctx, s.url, body)
}

// slackEscape escapes the three characters Slack's mrkdwn treats as markup.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func newPost(ctx context.Context, url string, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("building the request: %w", redact(err))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "gitgate-agent")
	return req, nil
}

// short is a commit's first 12 hex digits.
func short(v string) string {
	if len(v) > 12 {
		return v[:12]
	}
	return v
}

// summary is the one line a person reads.
func summary(name string, e syncer.Event) string {
	commit := short(e.Version)
	if e.Subject != "" {
		commit += " “" + e.Subject + "”"
	}
	if e.Author != "" {
		commit += " by " + e.Author
	}
	where := e.Branch
	if e.Replica != "" {
		where += " (" + e.Replica + ")"
	}
	switch name {
	case Applied:
		return fmt.Sprintf("gitgate applied %s on %s", commit, where)
	case Rejected:
		return fmt.Sprintf("gitgate rejected %s on %s; the running config stays: %s", commit, where, e.Reason)
	case Rollback:
		return fmt.Sprintf("gitgate rolled back from %s to %s on %s: %s", short(e.From), commit, where, e.Reason)
	case AutoRollback:
		return fmt.Sprintf("gitgate rolled back automatically from %s to %s on %s: %s", short(e.From), commit, where, e.Reason)
	case PinLifted:
		if e.Trigger == "resume" {
			return fmt.Sprintf("gitgate: the pin on %s was lifted by agent resume on %s", short(e.From), where)
		}
		return fmt.Sprintf("gitgate: the pin on %s was lifted by the new good commit %s on %s", short(e.From), commit, where)
	case DriftHealed:
		return fmt.Sprintf("gitgate healed drift on %s: the gateway ran %s; %s pushed again", where, e.From, commit)
	case SyncFailing:
		return fmt.Sprintf("gitgate syncs on %s have failed since %s (%s): %s", where, e.FailingSince.Format(time.RFC3339), e.Time.Sub(e.FailingSince).Round(time.Second), e.Reason)
	case SyncRecovered:
		return fmt.Sprintf("gitgate syncs on %s recovered after failing for %s", where, e.Time.Sub(e.FailingSince).Round(time.Second))
	}
	return "gitgate: " + name
}

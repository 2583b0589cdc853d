package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/rs/zerolog"

	"github.com/gitgate/gitgate/agent/internal/syncer"
	"github.com/gitgate/gitgate/schemas"
)

// receiver is a real local HTTP server that records what it is sent.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	bodies [][]byte
	heads  []http.Header
	// answer, when set, decides the status of each request (n counts from 1).
	answer func(n int) int
	// hold, when set, makes each request wait for it to close.
	hold        chan struct{}
	releaseOnce sync.Once
	entered     chan struct{}
}

func newReceiver(t *testing.T, r *receiver) *receiver {
	t.Helper()
	r.entered = make(chan struct{}, 100)
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.bodies = append(r.bodies, body)
		r.heads = append(r.heads, req.Header.Clone())
		n := len(r.bodies)
		r.mu.Unlock()
		r.entered <- struct{}{}
		if r.hold != nil {
			select {
			case <-r.hold:
			case <-req.Context().Done():
				return
			}
		}
		status := http.StatusOK
		if r.answer != nil {
			status = r.answer(n)
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(r.Close)
	if r.hold != nil {
		t.Cleanup(r.release) // runs first: a held handler would block Close
	}
	return r
}

// release lets held requests finish (once).
func (r *receiver) release() { r.releaseOnce.Do(func() { close(r.hold) }) }

func (r *receiver) got() ([][]byte, []http.Header) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.bodies...), append([]http.Header(nil), r.heads...)
}

// downURL is an address nothing listens on (connection refused).
func downURL(t *testing.T, path string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr + path
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// start runs a Notifier for cfg until the test ends.
func start(t *testing.T, cfg Config, log io.Writer) *Notifier {
	t.Helper()
	if log == nil {
		log = io.Discard
	}
	n, err := New(cfg, Options{Logger: zerolog.New(log).Level(zerolog.DebugLevel), Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- n.Run(context.Background()) }()
	t.Cleanup(func() {
		n.Close()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return n
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func count(n *Notifier, sink, result string) int {
	var m dto.Metric
	if err := n.total.WithLabelValues(sink, result).Write(&m); err != nil {
		panic(err)
	}
	return int(m.GetCounter().GetValue())
}

var sha1, sha2 = strings.Repeat("a", 40), strings.Repeat("b", 40)

func applied(v string) syncer.Event {
	return syncer.Event{Kind: syncer.EventApplied, Time: time.Now(), Repo: "https://git.example.com/cfg.git", Branch: "main", Replica: "r1", Version: v, Author: "Ada", Subject: "raise limits"}
}

// TestWebhookBodyIsSigned checks what a receiver verifies: the HMAC over
// timestamp "." body with the shared secret, a fresh timestamp, and the
// payload's fields.
func TestWebhookBodyIsSigned(t *testing.T) {
	t.Parallel()
	const secret = "s3cret-hmac-key"
	rec := newReceiver(t, &receiver{})
	n := start(t, Config{Sinks: []SinkConfig{{Name: "hook", Type: TypeWebhook, URL: rec.URL + "/gitgate", SecretFile: writeFile(t, secret)}}}, nil)
	rej := syncer.Event{Kind: syncer.EventRejected, Time: time.Now(), Branch: "main", Version: sha2, Reason: "cfg/gw.yaml:9: weight must be a number",
		Diagnostics: []schemas.Diagnostic{{File: "cfg/gw.yaml", Line: 9, Message: "weight must be a number"}}}
	n.Notify(applied(sha1))
	n.Notify(rej)
	waitFor(t, "both delivered", func() bool { return count(n, "hook", ResultSent) == 2 })
	bodies, heads := rec.got()
	for i, want := range []struct {
		event, version string
	}{{Applied, sha1}, {Rejected, sha2}} {
		body, h := bodies[i], heads[i]
		// Verify as a receiver would, without the package's Sign.
		ts := h.Get(HeaderTimestamp)
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
			t.Fatalf("%s: timestamp %q not fresh", want.event, ts)
		}
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(ts + "." + string(body)))
		if got, wantSig := h.Get(HeaderSignature), "sha256="+hex.EncodeToString(mac.Sum(nil)); !hmac.Equal([]byte(got), []byte(wantSig)) {
			t.Fatalf("%s: signature %q, want %q", want.event, got, wantSig)
		}
		// Another secret or a changed body does not verify.
		bad := hmac.New(sha256.New, []byte("other"))
		bad.Write([]byte(ts + "." + string(body)))
		if h.Get(HeaderSignature) == "sha256="+hex.EncodeToString(bad.Sum(nil)) || Sign([]byte(secret), ts, append(body, ' ')) == h.Get(HeaderSignature) {
			t.Fatalf("%s: signature does not depend on the secret and body", want.event)
		}
		var p Payload
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatal(err)
		}
		if string(p.Kind) != want.event || h.Get(HeaderEvent) != want.event || p.Version != want.version || p.Summary == "" ||
			p.Delivery == "" || p.Delivery != h.Get(HeaderDelivery) || h.Get("Content-Type") != "application/json" {
			t.Fatalf("%s: payload %s headers %v", want.event, body, h)
		}
		if want.event == Rejected && (len(p.Diagnostics) != 1 || p.Diagnostics[0].Line != 9 || !strings.Contains(p.Summary, "weight")) {
			t.Fatalf("rejected payload lacks its diagnostics: %s", body)
		}
	}
}

// TestSlackPayload checks the message shape Slack's incoming webhooks take:
// a "text" fallback and mrkdwn blocks, with markup characters escaped.
func TestSlackPayload(t *testing.T) {
	t.Parallel()
	rec := newReceiver(t, &receiver{})
	n := start(t, Config{Sinks: []SinkConfig{{Name: "slack", Type: TypeSlack, URLFile: writeFile(t, rec.URL+"/services/T0/B0/xyz")}}}, nil)
	e := syncer.Event{Kind: syncer.EventRollback, Time: time.Now(), Branch: "main", Replica: "r1", Version: sha1, From: sha2, Subject: "<b>old</b> & good", Trigger: "rollback", Reason: "B broke checkout"}
	n.Notify(e)
	waitFor(t, "delivered", func() bool { return count(n, "slack", ResultSent) == 1 })
	bodies, _ := rec.got()
	var msg struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type string `json:"type"`
			Text *struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"text"`
			Elements []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"elements"`
		} `json:"blocks"`
	}
	dec := json.NewDecoder(bytes.NewReader(bodies[0]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&msg); err != nil {
		t.Fatalf("Slack body %s: %v", bodies[0], err)
	}
	if !strings.Contains(msg.Text, "rolled back from "+sha2[:12]+" to "+sha1[:12]) || !strings.Contains(msg.Text, "B broke checkout") {
		t.Fatalf("text %q", msg.Text)
	}
	if len(msg.Blocks) != 2 || msg.Blocks[0].Type != "section" || msg.Blocks[0].Text == nil || msg.Blocks[0].Text.Type != "mrkdwn" ||
		msg.Blocks[1].Type != "context" || len(msg.Blocks[1].Elements) != 1 {
		t.Fatalf("blocks %s", bodies[0])
	}
	if s := msg.Blocks[0].Text.Text; strings.Contains(s, "<b>") || !strings.Contains(s, "&lt;b&gt;old&lt;/b&gt; &amp; good") {
		t.Fatalf("mrkdwn not escaped: %q", s)
	}
}

// TestDeliveryOutcomes: transient failures are retried until the bounded
// attempts run out, refusals are not retried, and a receiver that is down
// is given up on.
func TestDeliveryOutcomes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		answer       func(n int) int
		down         bool
		wantResult   string
		wantRequests int
	}{
		{"503 twice then 200: sent on the third attempt", func(n int) int {
			if n < 3 {
				return http.StatusServiceUnavailable
			}
			return http.StatusNoContent
		}, false, ResultSent, 3},
		{"429 is retried", func(n int) int {
			if n == 1 {
				return http.StatusTooManyRequests
			}
			return http.StatusOK
		}, false, ResultSent, 2},
		{"always 500: failed after 4 attempts", func(int) int { return http.StatusInternalServerError }, false, ResultFailed, 4},
		{"400 is a refusal: not retried", func(int) int { return http.StatusBadRequest }, false, ResultFailed, 1},
		{"a redirect is not followed", func(int) int { return http.StatusFound }, false, ResultFailed, 1},
		{"connection refused: failed after 4 attempts", nil, true, ResultFailed, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := newReceiver(t, &receiver{answer: tc.answer})
			u := rec.URL
			if tc.down {
				u = downURL(t, "/")
			}
			n := start(t, Config{MaxAttempts: 4, Sinks: []SinkConfig{{Name: "hook", Type: TypeWebhook, URL: u, SecretEnv: "HOME"}}}, nil)
			n.Notify(applied(sha1))
			waitFor(t, "an outcome", func() bool { return count(n, "hook", ResultSent)+count(n, "hook", ResultFailed) == 1 })
			if count(n, "hook", tc.wantResult) != 1 {
				t.Fatalf("sent %d failed %d, want %s", count(n, "hook", ResultSent), count(n, "hook", ResultFailed), tc.wantResult)
			}
			bodies, heads := rec.got()
			if len(bodies) != tc.wantRequests {
				t.Fatalf("%d requests, want %d", len(bodies), tc.wantRequests)
			}
			for _, h := range heads {
				if h.Get(HeaderDelivery) != heads[0].Get(HeaderDelivery) {
					t.Fatalf("retries carry different delivery IDs: %v", heads)
				}
			}
		})
	}
}

// TestHangingReceiverDoesNotSlowNotify: while a receiver holds a request
// open, Notify still returns at once, and Close stops the worker without
// waiting for the receiver.
func TestHangingReceiverDoesNotSlowNotify(t *testing.T) {
	t.Parallel()
	rec := newReceiver(t, &receiver{hold: make(chan struct{})})
	n, err := New(Config{Timeout: "5m", Sinks: []SinkConfig{{Name: "slow", Type: TypeWebhook, URL: rec.URL, SecretEnv: "HOME"}}}, Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- n.Run(context.Background()) }()
	go n.Notify(applied(sha1)) // on its own goroutine: a Notify that blocked would hang the test
	<-rec.entered              // the receiver now holds the first delivery
	returned := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		for range 50 {
			n.Notify(applied(sha2))
		}
		returned <- time.Since(start)
	}()
	select {
	case d := <-returned:
		t.Logf("50 Notify calls while the receiver hangs: %v", d)
	case <-time.After(30 * time.Second):
		t.Fatal("Notify blocked behind a hanging receiver")
	}
	// Close cancels the request in flight: it does not wait 5m for it.
	closed := make(chan struct{})
	go func() { n.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("Close waited for the hanging receiver")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := count(n, "slow", ResultDropped); got != 51 {
		t.Fatalf("dropped %d at shutdown, want 51 (1 in flight + 50 queued)", got)
	}
	rec.release()
}

// TestQueueOverflowDropsOldest: a full queue drops its oldest notification,
// counted, and delivers the newest ones.
func TestQueueOverflowDropsOldest(t *testing.T) {
	t.Parallel()
	rec := newReceiver(t, &receiver{hold: make(chan struct{})})
	n := start(t, Config{QueueSize: 2, Sinks: []SinkConfig{{Name: "q", Type: TypeWebhook, URL: rec.URL, SecretEnv: "HOME"}}}, nil)
	n.Notify(applied("0"))
	<-rec.entered // "0" is in flight; the queue is empty
	for i := 1; i <= 5; i++ {
		n.Notify(applied(strconv.Itoa(i)))
	}
	if got := count(n, "q", ResultDropped); got != 3 {
		t.Fatalf("dropped %d, want 3", got)
	}
	rec.release()
	waitFor(t, "the rest delivered", func() bool { return count(n, "q", ResultSent) == 3 })
	bodies, _ := rec.got()
	var versions []string
	for _, b := range bodies {
		var p Payload
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatal(err)
		}
		versions = append(versions, p.Version)
	}
	if strings.Join(versions, ",") != "0,4,5" {
		t.Fatalf("delivered %v, want 0,4,5 (the oldest queued dropped)", versions)
	}
}

// TestFilters: each sink gets the events it lists; sync-failing is sent
// once per streak after SyncFailingAfter, and sync-recovered only after it.
func TestFilters(t *testing.T) {
	t.Parallel()
	all := newReceiver(t, &receiver{})
	some := newReceiver(t, &receiver{})
	n := start(t, Config{SyncFailingAfter: "10m", Sinks: []SinkConfig{
		{Name: "all", Type: TypeWebhook, URL: all.URL, SecretEnv: "HOME"},
		{Name: "some", Type: TypeWebhook, URL: some.URL, SecretEnv: "HOME", Events: []string{Rejected, AutoRollback, SyncFailing}},
	}}, nil)
	since := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	failed := func(after time.Duration, s time.Time) syncer.Event {
		return syncer.Event{Kind: syncer.EventSyncFailed, Time: s.Add(after), FailingSince: s, Reason: "checking the branch head: connection refused"}
	}
	recovered := func(s time.Time) syncer.Event {
		return syncer.Event{Kind: syncer.EventSyncRecovered, Time: s.Add(20 * time.Minute), FailingSince: s}
	}
	events := []syncer.Event{
		applied(sha1),
		{Kind: syncer.EventRejected, Version: sha2},
		{Kind: syncer.EventRollback, Version: sha1, From: sha2},
		{Kind: syncer.EventAutoRollback, Version: sha1, From: sha2},
		{Kind: syncer.EventPinLifted, From: sha1, Trigger: "resume"},
		{Kind: syncer.EventDriftHealed, Version: sha1, From: "nothing"},
		failed(time.Minute, since),    // too young
		failed(11*time.Minute, since), // sync-failing
		failed(12*time.Minute, since), // already told
		recovered(since),              // sync-recovered
		recovered(since),              // nothing more
		failed(time.Minute, since.Add(time.Hour)),
		recovered(since.Add(time.Hour)), // a short streak: no news
		{Kind: "regression"},            // not a notification
	}
	for _, e := range events {
		n.Notify(e)
	}
	wantAll := []string{Applied, Rejected, Rollback, AutoRollback, PinLifted, DriftHealed, SyncFailing, SyncRecovered}
	wantSome := []string{Rejected, AutoRollback, SyncFailing}
	waitFor(t, "deliveries", func() bool {
		return count(n, "all", ResultSent) == len(wantAll) && count(n, "some", ResultSent) == len(wantSome)
	})
	for _, c := range []struct {
		rec  *receiver
		want []string
	}{{all, wantAll}, {some, wantSome}} {
		_, heads := c.rec.got()
		var got []string
		for _, h := range heads {
			got = append(got, h.Get(HeaderEvent))
		}
		if strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Fatalf("%s got %v, want %v", c.rec.URL, got, c.want)
		}
	}
}

// TestSecretsNeverLogged: failing deliveries are logged with the sink's
// name, never its URL (a Slack URL is a credential) or signing key.
func TestSecretsNeverLogged(t *testing.T) {
	t.Parallel()
	const slackToken, hmacKey = "XoXbSeCrEtToKeN123", "hmac-key-do-not-print"
	slackURL := downURL(t, "/services/T000/B000/"+slackToken)
	fails := newReceiver(t, &receiver{answer: func(int) int { return http.StatusInternalServerError }})
	var logs syncBuffer
	n := start(t, Config{MaxAttempts: 2, Sinks: []SinkConfig{
		{Name: "ops-slack", Type: TypeSlack, URLFile: writeFile(t, slackURL)},
		{Name: "audit", Type: TypeWebhook, URL: fails.URL, SecretFile: writeFile(t, hmacKey)},
	}}, &logs)
	n.Notify(applied(sha1))
	waitFor(t, "both failed", func() bool { return count(n, "ops-slack", ResultFailed) == 1 && count(n, "audit", ResultFailed) == 1 })
	out := logs.String()
	for _, secret := range []string{slackToken, "/services/T000", hmacKey} {
		if strings.Contains(out, secret) {
			t.Fatalf("log shows %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, `"sink":"ops-slack"`) || !strings.Contains(out, "connection refused") {
		t.Fatalf("log does not say which sink failed and why:\n%s", out)
	}
	// Errors of New name the variable, not its value.
	t.Run("unset env", func(t *testing.T) {
		_, err := New(Config{Sinks: []SinkConfig{{Name: "s", Type: TypeSlack, URLEnv: "GITGATE_TEST_UNSET_SLACK_URL"}}}, Options{})
		if err == nil || !strings.Contains(err.Error(), "$GITGATE_TEST_UNSET_SLACK_URL") {
			t.Fatalf("error %v, want it to name the variable", err)
		}
	})
	t.Run("plain http Slack URL", func(t *testing.T) {
		_, err := New(Config{Sinks: []SinkConfig{{Name: "s", Type: TypeSlack, URLFile: writeFile(t, "http://hooks.example.com/services/"+slackToken)}}}, Options{})
		var ce *ConfigError
		if !errors.As(err, &ce) || strings.Contains(err.Error(), slackToken) {
			t.Fatalf("error %v, want a ConfigError without the URL", err)
		}
	})
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	hook := func(mod func(*SinkConfig)) Config {
		s := SinkConfig{Name: "h", Type: TypeWebhook, URL: "https://hooks.example.com/x", SecretEnv: "HOOK_SECRET"}
		mod(&s)
		return Config{Sinks: []SinkConfig{s}}
	}
	tests := []struct {
		name      string
		cfg       Config
		wantField string
	}{
		{"valid", hook(func(*SinkConfig) {}), ""},
		{"no sinks", Config{}, "notifications.sinks"},
		{"unknown type", hook(func(s *SinkConfig) { s.Type = "teams" }), "notifications.sinks[0].type"},
		{"unknown event", hook(func(s *SinkConfig) { s.Events = []string{Applied, "deployed"} }), "notifications.sinks[0].events[1]"},
		{"webhook without secret", hook(func(s *SinkConfig) { s.SecretEnv = "" }), "notifications.sinks[0].secretFile"},
		{"webhook with two secrets", hook(func(s *SinkConfig) { s.SecretFile = "/x" }), "notifications.sinks[0].secretFile"},
		{"slack URL inline", hook(func(s *SinkConfig) { s.Type, s.SecretEnv = TypeSlack, "" }), "notifications.sinks[0].url"},
		{"slack with a secret", hook(func(s *SinkConfig) { s.Type, s.URL, s.URLEnv = TypeSlack, "", "SLACK_URL" }), "notifications.sinks[0].secretFile"},
		{"no name", hook(func(s *SinkConfig) { s.Name = "" }), "notifications.sinks[0].name"},
		{"duplicate name", Config{Sinks: append(hook(func(*SinkConfig) {}).Sinks, hook(func(*SinkConfig) {}).Sinks...)}, "notifications.sinks[1].name"},
		{"bad duration", Config{SyncFailingAfter: "soon", Sinks: hook(func(*SinkConfig) {}).Sinks}, "notifications.syncFailingAfter"},
		{"timeout too long", Config{Timeout: "1h", Sinks: hook(func(*SinkConfig) {}).Sinks}, "notifications.timeout"},
		{"too many attempts", Config{MaxAttempts: 100, Sinks: hook(func(*SinkConfig) {}).Sinks}, "notifications.maxAttempts"},
		{"ftp URL", hook(func(s *SinkConfig) { s.URL = "ftp://example.com/x" }), "notifications.sinks[0].url"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.cfg.Validate()
			var ce *ConfigError
			switch {
			case tc.wantField == "" && err != nil:
				t.Fatalf("unexpected error %v", err)
			case tc.wantField != "" && (!errors.As(err, &ce) || ce.Field != tc.wantField):
				t.Fatalf("error %v, want one on %s", err, tc.wantField)
			}
		})
	}
}

// TestCloseWithoutRun returns at once.
func TestCloseWithoutRun(t *testing.T) {
	t.Parallel()
	n, err := New(Config{Sinks: []SinkConfig{{Name: "h", Type: TypeWebhook, URL: "https://example.com", SecretEnv: "HOME"}}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	n.Notify(applied(sha1))
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
}

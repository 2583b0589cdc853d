package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gitgate/gitgate/agent/internal/fleet"
	"github.com/gitgate/gitgate/agent/internal/webhook"
	"github.com/gitgate/gitgate/gateway/admin/admintest"
	"github.com/gitgate/gitgate/schemas"
)

// replicaUnderTest is one wired agent with its fake gateway.
type replicaUnderTest struct {
	addr, control string
	gw            *admintest.Gateway
}

// startFleet runs n wired agents in process, each with a fake gateway on
// a real Unix socket, tracking repo with a one-hour poll and --peers
// naming all of them.
func startFleet(t *testing.T, repo string, n int) ([]replicaUnderTest, string) {
	t.Helper()
	var reps []replicaUnderTest
	var addrs []string
	for range n {
		addr := freeAddr(t)
		reps = append(reps, replicaUnderTest{addr: addr, gw: admintest.New(t)})
		addrs = append(addrs, addr)
	}
	peersSpec := strings.Join(addrs, ",")
	for i := range reps {
		state, err := os.MkdirTemp("", "agent")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(state) })
		secretFile := filepath.Join(state, "secret")
		if err := os.WriteFile(secretFile, []byte("s3cret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		reps[i].control = filepath.Join(state, "agent.sock")
		cfg := runConfig{Repo: repo, Branch: "main", Path: "cfg", GatewaySocket: reps[i].gw.Sock, StateDir: state,
			ControlSocket: reps[i].control, WebhookAddr: reps[i].addr, PollInterval: "1h",
			WebhookSecretFile: secretFile, KeepBundles: 100, LogLevel: "info", Peers: peersSpec}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- runAgent(ctx, cfg, zerolog.Nop()) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("runAgent: %v", err)
			}
		})
	}
	return reps, peersSpec
}

// metric returns the value of one sample line ("name{labels}") of the
// agent's /metrics, or -1 when absent.
func metric(t *testing.T, addr, series string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	for _, l := range strings.Split(b.String(), "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			var f float64
			if err := json.Unmarshal([]byte(strings.TrimSpace(v)), &f); err == nil {
				return f
			}
		}
	}
	return -1
}

// TestWebhookFansOutToPeers wires three agents with --peers: a webhook to
// one makes all three apply the new commit at once (the poll is an hour);
// a rollback on another nudges the peers, which do not pass the nudge on;
// /v1/replica and `agent fleet` show a local pin, then a hand-edited
// gateway as drift.
func TestWebhookFansOutToPeers(t *testing.T) {
	t.Parallel()
	repo := t.TempDir()
	gitCmd(t, repo, "init", "-q", "-b", "main")
	first := commitConfig(t, repo, "first", cfgYAML("9001"))
	reps, peersSpec := startFleet(t, repo, 3)
	for i, r := range reps {
		waitUntil(t, "replica "+string(rune('0'+i))+" serves the first commit", func() bool { return r.gw.Version() == first })
	}

	second := commitConfig(t, repo, "second", cfgYAML("9002"))
	body := []byte(`{"ref":"refs/heads/main","after":"0000000000000000000000000000000000000000"}`)
	req, _ := http.NewRequest(http.MethodPost, "http://"+reps[0].addr+"/webhooks/github", bytes.NewReader(body))
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", "fanout-1")
	req.Header.Set("X-Hub-Signature-256", webhook.Sign([]byte("s3cret"), body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for i, r := range reps {
		waitUntil(t, "replica "+string(rune('0'+i))+" serves the second commit", func() bool { return r.gw.Version() == second })
	}

	// A rollback on replica 1 nudges 0 and 2; nobody nudges anyone else.
	if code, out := cli(t, wrap(runRollback), "--control-socket", reps[1].control, first); code != 0 {
		t.Fatalf("rollback: exit %d %s", code, out)
	}
	accepted, sent := `gitgate_agent_nudges_received_total{result="accepted"}`, `gitgate_agent_nudges_sent_total{result="accepted"}`
	waitUntil(t, "the rollback's nudges", func() bool { return metric(t, reps[0].addr, accepted) == 1 && metric(t, reps[2].addr, accepted) == 2 })
	for i, want := range []struct{ received, sent float64 }{{1, 2}, {1, 2}, {2, -1}} {
		if got, s := metric(t, reps[i].addr, accepted), metric(t, reps[i].addr, sent); got != want.received || s != want.sent {
			t.Fatalf("replica %d received %v nudges and sent %v, want %v and %v", i, got, s, want.received, want.sent)
		}
	}

	// Replica 1 is pinned to the first commit, for the whole fleet: the
	// pin is a tag in the repository (a local path: file permissions let
	// it push).
	resp, err = http.Get("http://" + reps[1].addr + fleet.ReplicaPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep fleet.Replica
	err = json.NewDecoder(resp.Body).Decode(&rep)
	resp.Body.Close()
	if err != nil || rep.Mode != "pinned" || rep.Pin == nil || rep.Pin.Scope != fleet.ScopeFleet || rep.Desired != first ||
		rep.Gateway.Version != first || !rep.Gateway.Reachable || rep.AgentVersion != agentVersion() {
		t.Fatalf("replica 1 says %+v (%v)", rep, err)
	}
	if code, out := cli(t, wrap(runFleet), "--peers", peersSpec); code != 0 {
		t.Fatalf("agent fleet with a fleet pin: exit %d, want 0\n%s", code, out)
	}

	// Every replica follows the pin first: a nudge-triggered pass that ran
	// after the edit below would put replica 2's gateway back.
	for i, r := range reps {
		waitUntil(t, "replica "+string(rune('0'+i))+" pinned to the first commit", func() bool {
			resp, err := http.Get("http://" + r.addr + fleet.ReplicaPath)
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			var rep fleet.Replica
			return json.NewDecoder(resp.Body).Decode(&rep) == nil && rep.Mode == "pinned" && rep.Gateway.Version == first
		})
	}

	// A hand edit of replica 2's gateway is drift (heal is off here).
	other, err := schemas.NewBundle(strings.Repeat("b", 40), schemas.Source{}, schemas.Config{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	reps[2].gw.Set(other)
	code, out := cli(t, wrap(runFleet), "--peers", peersSpec)
	if code != 1 || !strings.Contains(out, "drift: gateway runs bbbbbbbbbbbb") {
		t.Fatalf("agent fleet with a hand edit: exit %d, want 1 naming the drift\n%s", code, out)
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"sigs.k8s.io/yaml"

	"github.com/gitgate/gitgate/agent/internal/syncer"
	"github.com/gitgate/gitgate/gateway/admin/admintest"
	"github.com/gitgate/gitgate/schemas/buildinfo"
)

// agentCLI runs the agent command line args and returns its exit code,
// stdout and stderr.
func agentCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = execute(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestCLIExitCodesAndHelp checks the exit-code convention the README
// documents (0 ok, 1 failed, 2 usage, 3 agent unreachable) and that help
// is cobra's --flag style with a synopsis and examples.
func TestCLIExitCodesAndHelp(t *testing.T) {
	t.Parallel()
	nowhere := filepath.Join(t.TempDir(), "agent.sock")
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{name: "no command", args: nil, wantCode: 2, wantErr: "Available Commands:"},
		{name: "unknown command", args: []string{"nope"}, wantCode: 2, wantErr: `unknown command "nope"`},
		{name: "root help", args: []string{"--help"}, wantOut: "rollback    Apply an earlier commit"},
		{name: "rollback help has synopsis", args: []string{"rollback", "--help"}, wantOut: "agent rollback [<sha>] [flags]"},
		{name: "rollback help has two-dash flags", args: []string{"rollback", "--help"}, wantOut: "      --hold "},
		{name: "rollback help has examples", args: []string{"rollback", "--help"}, wantOut: "agent rollback 3f2a9c1 --hold"},
		{name: "run help lists runFlags", args: []string{"run", "--help"}, wantOut: "--webhook-max-body-bytes int"},
		{name: "one-dash long flag", args: []string{"rollback", "-hold"}, wantCode: 2, wantErr: "-hold: long flags take two dashes: --hold"},
		{name: "one-dash help", args: []string{"status", "-help"}, wantCode: 2, wantErr: "--help"},
		{name: "unknown flag", args: []string{"history", "--bogus"}, wantCode: 2, wantErr: "unknown flag: --bogus"},
		{name: "stray argument", args: []string{"status", "extra"}, wantCode: 2, wantErr: `unexpected argument "extra"`},
		{name: "two shas", args: []string{"rollback", "a", "b", "--control-socket", nowhere}, wantCode: 2, wantErr: "want at most 1 <sha>"},
		{name: "no socket named", args: []string{"status"}, wantCode: 2, wantErr: "give --control-socket or --state-dir"},
		{name: "bad output format", args: []string{"status", "-o", "xml", "--control-socket", nowhere}, wantCode: 2, wantErr: `unknown --output "xml"`},
		{name: "agent not running: status", args: []string{"status", "--control-socket", nowhere}, wantCode: 3, wantErr: "is `agent run` running?"},
		{name: "agent not running: rollback", args: []string{"rollback", "--state-dir", filepath.Dir(nowhere)}, wantCode: 3, wantErr: "agent rollback:"},
		{name: "validate two directories", args: []string{"validate", "a", "b"}, wantCode: 2, wantErr: "want at most 1 directory"},
		{name: "unreadable directory", args: []string{"validate", t.TempDir(), "--path", "missing"}, wantCode: 2, wantErr: "agent validate:"},
		{name: "run without settings", args: []string{"run"}, wantCode: 2, wantErr: "missing --gateway-socket, --repo, --state-dir"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := agentCLI(tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tt.wantCode, out, errOut)
			}
			if !strings.Contains(out, tt.wantOut) {
				t.Errorf("stdout lacks %q:\n%s", tt.wantOut, out)
			}
			if !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantErr, errOut)
			}
		})
	}
}

// TestVersionCommand checks agent version prints what debug.ReadBuildInfo
// says, as a line and as JSON.
func TestVersionCommand(t *testing.T) {
	t.Parallel()
	want := buildinfo.Read(version)
	code, out, errOut := agentCLI("version")
	if code != 0 || out != want.String("agent")+"\n" || !strings.Contains(out, want.GoVersion) {
		t.Fatalf("agent version: exit %d %q %s", code, out, errOut)
	}
	code, out, _ = agentCLI("version", "-o", "json")
	var got buildinfo.Info
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || got != want {
		t.Fatalf("agent version -o json: exit %d %q, want %+v", code, out, want)
	}
}

// TestControlCommandsAgainstRunningAgent runs a real agent (real repository,
// real gateway admin socket, real control socket) and checks --output
// json|yaml|table, the --json alias, and the completion of commit SHAs for
// agent rollback from the agent's history.
func TestControlCommandsAgainstRunningAgent(t *testing.T) {
	t.Parallel()
	repo := t.TempDir()
	gitCmd(t, repo, "init", "-q", "-b", "main")
	first := commitConfig(t, repo, "first config", cfgYAML("9001"))
	gw := admintest.New(t)
	state, err := os.MkdirTemp("", "agent")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(state) })
	cfg := runConfig{Repo: repo, Branch: "main", Path: "cfg", GatewaySocket: gw.Sock, StateDir: state,
		ControlSocket: filepath.Join(state, "agent.sock"), PollInterval: "1h", KeepBundles: 100, LogLevel: "info"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runAgent(ctx, cfg, zerolog.Nop()) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("runAgent: %v", err)
		}
	})
	waitUntil(t, "first commit served", func() bool { return gw.Version() == first })
	second := commitConfig(t, repo, "second config", cfgYAML("9002"))
	if code, _, errOut := agentCLI("sync", "--state-dir", state); code != 0 || gw.Version() != second {
		t.Fatalf("agent sync: exit %d, gateway runs %s: %s", code, gw.Version(), errOut)
	}

	decoders := map[string]func([]byte, any) error{
		"json": json.Unmarshal,
		"yaml": func(b []byte, v any) error { return yaml.UnmarshalStrict(b, v) },
	}
	statusTests := []struct {
		name   string
		args   []string
		decode string
	}{
		{name: "-o json", args: []string{"-o", "json"}, decode: "json"},
		{name: "--output yaml", args: []string{"--output", "yaml"}, decode: "yaml"},
		{name: "--json alias", args: []string{"--json"}, decode: "json"},
		{name: "table", args: nil},
	}
	for _, tt := range statusTests {
		t.Run("status "+tt.name, func(t *testing.T) {
			code, out, errOut := agentCLI(append([]string{"status", "--state-dir", state}, tt.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if tt.decode == "" {
				if !strings.Contains(out, "Last applied:  "+second[:12]) {
					t.Fatalf("table lacks the applied commit:\n%s", out)
				}
				return
			}
			var st syncer.Status
			if err := decoders[tt.decode](([]byte)(out), &st); err != nil || st.LastApplied != second || st.Branch != "main" {
				t.Fatalf("%s output does not decode to the status (%v):\n%s", tt.decode, err, out)
			}
		})
	}

	completionTests := []struct {
		name      string
		args      []string
		want      []string
		wantNoSHA bool
	}{
		{name: "every commit of the history", args: []string{"--state-dir", state, ""}, want: []string{second[:12] + "\tapplied: second config", first[:12] + "\tapplied: first config"}},
		{name: "prefix", args: []string{"--control-socket", cfg.ControlSocket, second[:4]}, want: []string{second[:12] + "\t"}},
		{name: "no agent running", args: []string{"--control-socket", filepath.Join(t.TempDir(), "none.sock"), ""}, wantNoSHA: true},
		{name: "no socket named", args: []string{""}, wantNoSHA: true},
	}
	for _, tt := range completionTests {
		t.Run("complete rollback "+tt.name, func(t *testing.T) {
			code, out, errOut := agentCLI(append([]string{"__complete", "rollback"}, tt.args...)...)
			if code != 0 || errOut != "" && !strings.Contains(errOut, "Completion ended") {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if directive := lines[len(lines)-1]; !strings.HasPrefix(directive, ":") {
				t.Fatalf("no directive line:\n%s", out)
			}
			got := lines[:len(lines)-1]
			if tt.wantNoSHA {
				if len(got) != 0 {
					t.Fatalf("offered %q with no agent to ask", got)
				}
				return
			}
			if len(got) != len(tt.want) {
				t.Fatalf("offered %q, want %q", got, tt.want)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(got[i], w) {
					t.Fatalf("completion %d is %q, want it to start with %q", i, got[i], w)
				}
			}
		})
	}
}

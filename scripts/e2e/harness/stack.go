package harness

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gitgate/gitgate/gateway/admin/client"
)

// WebhookSecret is the secret the agents of a Stack verify deliveries with.
const WebhookSecret = "e2e-webhook-secret"

// Options configure a Stack. Zero fields take the defaults.
type Options struct {
	// Bins are the built binaries. Required.
	Bins Bins
	// Dir holds the logs, sockets and (by default) the state directories.
	// Required.
	Dir string
	// RepoURL is what the agent tracks. Default: the Stack's Repo directory.
	RepoURL string
	// PollInterval is the agent's --poll-interval. Default "1h" (webhooks
	// and `agent sync` only).
	PollInterval string
	// GatewayState and AgentState are the state directories. Default
	// <Dir>/gateway-state and <Dir>/agent-state.
	GatewayState, AgentState string
	// AgentExtraArgs are added to the agent's flags (e.g. --peers for a
	// fleet of Stacks tracking one RepoURL). Default none.
	AgentExtraArgs []string
	// GatewayExtraArgs are added to the gateway's flags (e.g.
	// --http1-server fasthttp). Default none.
	GatewayExtraArgs []string
}

// Stack is one gateway and one agent tracking one config repository.
type Stack struct {
	Options
	// Repo is the config repository (created by NewStack).
	Repo *Repo
	// GatewayAddr is the data plane's host:port.
	GatewayAddr string
	// AdminSocket is the gateway's admin socket.
	AdminSocket string
	// ControlSocket is the agent's control socket.
	ControlSocket string
	// HookAddr is the agent's webhook listener host:port.
	HookAddr string
	// Gateway and Agent are the running processes (nil when stopped).
	Gateway, Agent *Proc
	// Admin talks to the gateway's admin socket.
	Admin *client.Client

	secretFile string
	ctl        *http.Client
	data       *http.Client
	delivery   atomic.Uint64
}

// NewStack creates the config repository and picks free loopback ports.
// Nothing runs until StartGateway and StartAgent.
func NewStack(opts Options) (*Stack, error) {
	if opts.PollInterval == "" {
		opts.PollInterval = "1h"
	}
	if opts.GatewayState == "" {
		opts.GatewayState = filepath.Join(opts.Dir, "gateway-state")
	}
	if opts.AgentState == "" {
		opts.AgentState = filepath.Join(opts.Dir, "agent-state")
	}
	repo, err := NewRepo(filepath.Join(opts.Dir, "config-repo"))
	if err != nil {
		return nil, err
	}
	if opts.RepoURL == "" {
		opts.RepoURL = repo.Dir
	}
	s := &Stack{
		Options: opts, Repo: repo,
		AdminSocket:   filepath.Join(opts.Dir, "gateway.sock"),
		ControlSocket: filepath.Join(opts.Dir, "agent.sock"),
		secretFile:    filepath.Join(opts.Dir, "webhook-secret"),
	}
	if s.GatewayAddr, err = FreeAddr(); err != nil {
		return nil, err
	}
	if s.HookAddr, err = FreeAddr(); err != nil {
		return nil, err
	}
	if err := os.WriteFile(s.secretFile, []byte(WebhookSecret+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("writing the webhook secret: %w", err)
	}
	s.Admin = client.New(s.AdminSocket)
	s.ctl = unixClient(s.ControlSocket)
	// No keep-alive: each probe is a new connection, as a fresh client
	// would make, so a restarted gateway is seen at once.
	s.data = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	return s, nil
}

// GatewayArgs are the gateway's flags.
func (s *Stack) GatewayArgs() []string {
	return append([]string{"--listen", s.GatewayAddr, "--admin-socket", s.AdminSocket, "--state-dir", s.GatewayState, "--log-level", "info"}, s.GatewayExtraArgs...)
}

// StartGateway starts the gateway and waits until its admin socket answers.
func (s *Stack) StartGateway(ctx context.Context) error {
	p, err := Start(s.Dir, "gateway", append([]string{s.Bins.Gateway}, s.GatewayArgs()...)...)
	if err != nil {
		return err
	}
	s.Gateway = p
	return WaitFor(ctx, 15*time.Second, "the gateway's admin socket to answer", func() (bool, error) {
		if p.Exited() {
			return false, fmt.Errorf("gateway exited: %v (see %s)", p.Err(), p.Log)
		}
		_, err := s.Admin.Status(ctx)
		return err == nil, nil
	})
}

// AgentArgs are the agent's flags.
func (s *Stack) AgentArgs() []string {
	return append([]string{"run", "--repo", s.RepoURL, "--branch", "main", "--gateway-socket", s.AdminSocket,
		"--state-dir", s.AgentState, "--control-socket", s.ControlSocket, "--webhook-addr", s.HookAddr,
		"--webhook-secret-file", s.secretFile, "--poll-interval", s.PollInterval}, s.AgentExtraArgs...)
}

// StartAgent starts the agent and waits until its control socket answers.
func (s *Stack) StartAgent(ctx context.Context) error {
	p, err := Start(s.Dir, "agent", append([]string{s.Bins.Agent}, s.AgentArgs()...)...)
	if err != nil {
		return err
	}
	s.Agent = p
	return WaitFor(ctx, 15*time.Second, "the agent's control socket to answer", func() (bool, error) {
		if p.Exited() {
			return false, fmt.Errorf("agent exited: %v (see %s)", p.Err(), p.Log)
		}
		_, err := s.AgentStatus(ctx)
		return err == nil, nil
	})
}

// HookGet requests path from the agent's webhook listener and returns the
// status code and up to 1 MiB of the body.
func (s *Stack) HookGet(ctx context.Context, path string) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.HookAddr+path, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := s.data.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("agent %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b), err
}

// Close stops the agent, then the gateway, and closes the clients.
func (s *Stack) Close() {
	_ = s.Agent.Stop()
	_ = s.Gateway.Stop()
	s.Admin.Close()
	s.ctl.CloseIdleConnections()
	s.data.CloseIdleConnections()
}

// Webhook sends a signed GitHub push delivery for main to the agent and
// returns the HTTP status.
func (s *Stack) Webhook(ctx context.Context) (int, error) {
	body := []byte(`{"ref":"refs/heads/main","after":"0000000000000000000000000000000000000000","repository":{"full_name":"e2e/config"}}`)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+s.HookAddr+"/webhooks/github", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("e2e-%d-%d", os.Getpid(), s.delivery.Add(1)))
	req.Header.Set("X-Hub-Signature-256", Sign(WebhookSecret, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("sending the webhook: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		return resp.StatusCode, fmt.Errorf("webhook answered %s", resp.Status)
	}
	return resp.StatusCode, nil
}

// Sign returns the X-Hub-Signature-256 value of body under secret.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Response is what one request to the data plane saw.
type Response struct {
	// Code is the HTTP status; 0 when the request failed.
	Code int
	// Config is the X-Config response header (which config answered).
	Config string
	// Err is the transport error, if any.
	Err error
}

// OK reports whether the request got a 200 from the config labelled want.
func (r Response) OK(want string) bool {
	return r.Err == nil && r.Code == http.StatusOK && r.Config == want
}

func (r Response) String() string {
	if r.Err != nil {
		return "error: " + r.Err.Error()
	}
	return fmt.Sprintf("%d config=%q", r.Code, r.Config)
}

// Get requests path from the gateway on a new connection.
func (s *Stack) Get(path string) Response {
	resp, err := s.data.Get("http://" + s.GatewayAddr + path)
	if err != nil {
		return Response{Err: err}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	return Response{Code: resp.StatusCode, Config: resp.Header.Get("X-Config")}
}

// AgentStatus is the part of `agent status --json` the battery checks.
type AgentStatus struct {
	Mode string `json:"mode"`
	Pin  *struct {
		SHA  string `json:"sha"`
		From string `json:"from"`
		Hold bool   `json:"hold"`
	} `json:"pin"`
	BranchHead       string   `json:"branchHead"`
	LastApplied      string   `json:"lastApplied"`
	LastAttempted    string   `json:"lastAttempted"`
	LastResult       string   `json:"lastResult"`
	Bad              []string `json:"bad"`
	GatewayReachable bool     `json:"gatewayReachable"`
	GatewayVersion   string   `json:"gatewayVersion"`
	GatewayError     string   `json:"gatewayError"`
	SourceError      string   `json:"sourceError"`
	LastError        string   `json:"lastError"`
	Failures         int      `json:"consecutiveFailures"`
	Syncs            uint64   `json:"syncs"`
}

// Entry is one line of the agent's history as the control socket shows it.
type Entry struct {
	Time        time.Time       `json:"time"`
	SHA         string          `json:"sha"`
	Result      string          `json:"result"`
	Trigger     string          `json:"trigger"`
	Error       string          `json:"error"`
	Diagnostics []DiagnosticRef `json:"diagnostics"`
}

// DiagnosticRef is where a rejected commit went wrong.
type DiagnosticRef struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Path    string `json:"path"`
	Message string `json:"message"`
}

// AgentStatus reads GET /v1/status from the control socket.
func (s *Stack) AgentStatus(ctx context.Context) (AgentStatus, error) {
	var st AgentStatus
	err := s.control(ctx, http.MethodGet, "/v1/status", &st)
	return st, err
}

// History reads the agent's whole history, newest first.
func (s *Stack) History(ctx context.Context) ([]Entry, error) {
	var h []Entry
	err := s.control(ctx, http.MethodGet, "/v1/history?n=0", &h)
	return h, err
}

func (s *Stack) control(ctx context.Context, method, route string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://agent"+route, nil)
	if err != nil {
		return err
	}
	resp, err := s.ctl.Do(req)
	if err != nil {
		return fmt.Errorf("agent control %s: %w", route, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("agent control %s: %w", route, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("agent control %s: %s: %s", route, resp.Status, bytes.TrimSpace(b))
	}
	return json.Unmarshal(b, out)
}

// CLI runs the agent binary's command against the running agent (the
// --control-socket flag is added) and returns its stdout.
func (s *Stack) CLI(ctx context.Context, args ...string) (string, error) {
	args = append(args, "--control-socket", s.ControlSocket)
	cmd := exec.CommandContext(ctx, s.Bins.Agent, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("agent %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// GatewayHead is the version the gateway runs ("" when none or unreachable).
func (s *Stack) GatewayHead(ctx context.Context) string {
	st, err := s.Admin.Status(ctx)
	if err != nil {
		return ""
	}
	return st.Version
}

// Converged reports whether the agent applied want, the gateway runs it and
// the agent's status shows the gateway at that version.
func (s *Stack) Converged(ctx context.Context, want string) (bool, error) {
	st, err := s.AgentStatus(ctx)
	if err != nil {
		return false, nil
	}
	return st.LastApplied == want && st.GatewayVersion == want && st.GatewayReachable && s.GatewayHead(ctx) == want, nil
}

func unixClient(path string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}
}

// FreeAddr returns a loopback host:port that was free a moment ago. It is
// chosen below the kernel's ephemeral range, so that no outgoing connection
// (a git fetch, a health check) can take it between now and the moment a
// process of the scenario listens on it, as a port from 127.0.0.1:0 could.
func FreeAddr() (string, error) {
	low := ephemeralLow()
	for range 50 {
		port := 10000 + rand.IntN(low-10000)
		if !handOut(port) {
			continue // given to another caller already, maybe not bound yet
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		addr := ln.Addr().String()
		_ = ln.Close()
		return addr, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// handedOut are the ports FreeAddr returned in this process: a port closed
// again after the check is free to the kernel, so without this two callers
// (two stacks of one fleet) could be given the same one.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// handOut records port as given out and reports whether it was not before.
func handOut(port int) bool {
	handedOut.Lock()
	defer handedOut.Unlock()
	if handedOut.ports[port] {
		return false
	}
	handedOut.ports[port] = true
	return true
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's
// ip_local_port_range), or 32768.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n <= 11000 {
		return 32768
	}
	return n
}

// WaitFor polls cond every 10ms until it is true, returns an error, or
// timeout (or ctx) ends.
func WaitFor(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := cond()
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// AdminGet requests path from the gateway's admin socket and returns the
// status code and up to 1 MiB of the body.
func (s *Stack) AdminGet(ctx context.Context, path string) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://gateway"+path, nil)
	if err != nil {
		return 0, "", err
	}
	c := unixClient(s.AdminSocket)
	defer c.CloseIdleConnections()
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("gateway admin %s: %w", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b), err
}

package control

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gitgate/gitgate/agent/internal/bundle"
	"github.com/gitgate/gitgate/agent/internal/syncer"
	"github.com/gitgate/gitgate/schemas"
)

// APIError is an error answer of the control socket.
type APIError struct {
	// Code is the HTTP status.
	Code int
	// Message is the agent's error text.
	Message string
	// Diagnostics lists the problems of an invalid commit.
	Diagnostics []schemas.Diagnostic
}

// Error implements error.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString(e.Message)
	if len(e.Diagnostics) > 0 && !strings.Contains(e.Message, e.Diagnostics[0].String()) {
		for _, d := range e.Diagnostics {
			b.WriteString("\n  ")
			b.WriteString(d.String())
		}
	}
	return b.String()
}

// Client calls a running agent's control socket.
type Client struct {
	hc   *http.Client
	path string
}

// NewClient returns a client of the control socket at path.
func NewClient(path string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		DisableCompression: true,
	}
	return &Client{hc: &http.Client{Transport: tr, Timeout: 3 * time.Minute}, path: path}
}

func (c *Client) do(ctx context.Context, method, route string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encoding request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://agent"+route, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("calling the agent on %s (is `agent run` running?): %w", c.path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("reading the agent's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var eb ErrorBody
		if json.Unmarshal(data, &eb) != nil || eb.Error == "" {
			eb.Error = strings.TrimSpace(string(data))
		}
		return &APIError{Code: resp.StatusCode, Message: eb.Error, Diagnostics: eb.Diagnostics}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decoding the agent's answer: %w", err)
		}
	}
	return nil
}

// Status returns the agent's status.
func (c *Client) Status(ctx context.Context) (syncer.Status, error) {
	var s syncer.Status
	return s, c.do(ctx, http.MethodGet, "/v1/status", nil, &s)
}

// History returns up to n entries, newest first (0: all).
func (c *Client) History(ctx context.Context, n int) ([]bundle.Entry, error) {
	var e []bundle.Entry
	return e, c.do(ctx, http.MethodGet, "/v1/history?n="+strconv.Itoa(n), nil, &e)
}

// Sync asks for a sync and waits for it.
func (c *Client) Sync(ctx context.Context) (syncer.Status, error) {
	var s syncer.Status
	return s, c.do(ctx, http.MethodPost, "/v1/sync", struct{}{}, &s)
}

// Rollback rolls back and pins.
func (c *Client) Rollback(ctx context.Context, req RollbackRequest) (syncer.RollbackResult, error) {
	var r syncer.RollbackResult
	return r, c.do(ctx, http.MethodPost, "/v1/rollback", req, &r)
}

// Resume lifts the pin and returns the status.
func (c *Client) Resume(ctx context.Context) (syncer.Status, error) {
	var s syncer.Status
	return s, c.do(ctx, http.MethodPost, "/v1/resume", struct{}{}, &s)
}

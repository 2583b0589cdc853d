package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gitgate/gitgate/schemas"
)

// Defaults of a Client.
const (
	// DefaultTimeout bounds one request other than a watch.
	DefaultTimeout = 60 * time.Second
	// maxAnswerBytes caps what the client reads of an answer (a bundle).
	maxAnswerBytes = 256 << 20
	// maxEventBytes caps one SSE line.
	maxEventBytes = 16 << 20
)

// Errors a caller can test with errors.Is.
var (
	// ErrPreconditionFailed is matched by a *PreconditionError: the gateway
	// runs another version than the If-Match of the push.
	ErrPreconditionFailed = errors.New("gateway runs another version than expected (412)")
	// ErrNoBundle is returned by Get before the gateway has any config.
	ErrNoBundle = errors.New("gateway has no bundle yet")
	// ErrNotReady is returned by Ready while the gateway has no config.
	ErrNotReady = errors.New("gateway is not ready")
)

// RejectedError is returned when the gateway refused a bundle as bad input
// (400 malformed, 413 too large, 422 invalid). Retrying the same bundle
// cannot succeed.
type RejectedError struct {
	// Code is the HTTP status.
	Code int
	// Message is the gateway's summary.
	Message string
	// Diagnostics lists every problem (422).
	Diagnostics []schemas.Diagnostic
}

// Error implements error.
func (e *RejectedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "gateway rejected the bundle (%d): %s", e.Code, e.Message)
	for i, d := range e.Diagnostics {
		if i == 10 {
			fmt.Fprintf(&b, "\n  ... and %d more", len(e.Diagnostics)-i)
			break
		}
		b.WriteString("\n  ")
		b.WriteString(d.String())
	}
	return b.String()
}

// Invalid returns the diagnostics as a *schemas.InvalidError.
func (e *RejectedError) Invalid() *schemas.InvalidError {
	return &schemas.InvalidError{Diagnostics: e.Diagnostics}
}

// PreconditionError is returned on 412: Current is the version the gateway
// runs. It matches ErrPreconditionFailed.
type PreconditionError struct {
	// Current is the running version; empty when the gateway has none.
	Current string
}

// Error implements error.
func (e *PreconditionError) Error() string {
	return fmt.Sprintf("%v: running %q", ErrPreconditionFailed, e.Current)
}

// Is matches ErrPreconditionFailed.
func (e *PreconditionError) Is(target error) bool { return target == ErrPreconditionFailed }

// TransportError means the gateway could not be reached or did not answer:
// it is down, restarting or overloaded. The request may be retried.
type TransportError struct {
	// Op says what was being done.
	Op string
	// Err is the cause.
	Err error
}

// Error implements error.
func (e *TransportError) Error() string { return e.Op + ": gateway unreachable: " + e.Err.Error() }

// Unwrap returns the cause.
func (e *TransportError) Unwrap() error { return e.Err }

// StatusError is an answer the client did not expect, such as a 500.
type StatusError struct {
	// Op says what was being done.
	Op string
	// Code is the HTTP status.
	Code int
	// Message is the gateway's error text.
	Message string
}

// Error implements error.
func (e *StatusError) Error() string {
	return fmt.Sprintf("%s: gateway answered %d: %s", e.Op, e.Code, e.Message)
}

// Client talks to one gateway's admin API. It is safe for concurrent use.
type Client struct {
	base    string
	hc      *http.Client // bounded requests
	watchHC *http.Client // long-lived watch requests, bounded by ctx only
}

// New returns a client of the admin API on the Unix socket at socketPath.
func New(socketPath string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socketPath)
		},
		MaxIdleConns:          4,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: DefaultTimeout,
		DisableCompression:    true,
	}
	watchTr := tr.Clone()
	watchTr.ResponseHeaderTimeout = 0
	return &Client{
		base:    "http://gitgate-admin",
		hc:      &http.Client{Transport: tr, Timeout: DefaultTimeout},
		watchHC: &http.Client{Transport: watchTr},
	}
}

// NewURL returns a client of the read-only observe address, such as
// "http://127.0.0.1:9901". Put fails there with a *StatusError (405).
func NewURL(base string) *Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = DefaultTimeout
	watchTr := tr.Clone()
	watchTr.ResponseHeaderTimeout = 0
	return &Client{
		base:    strings.TrimSuffix(base, "/"),
		hc:      &http.Client{Transport: tr, Timeout: DefaultTimeout},
		watchHC: &http.Client{Transport: watchTr},
	}
}

// Close releases idle connections.
func (c *Client) Close() {
	c.hc.CloseIdleConnections()
	c.watchHC.CloseIdleConnections()
}

// Put pushes b. ifMatch, when not empty, is the version the caller expects
// the gateway to run ("*" for any); a mismatch returns a *PreconditionError.
func (c *Client) Put(ctx context.Context, b *schemas.Bundle, ifMatch string) (Applied, error) {
	const op = "pushing bundle"
	body, err := json.Marshal(b)
	if err != nil {
		return Applied{}, fmt.Errorf("%s: encoding: %w", op, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.base+"/v1/bundle", bytes.NewReader(body))
	if err != nil {
		return Applied{}, fmt.Errorf("%s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if ifMatch != "" {
		req.Header.Set("If-Match", ETag(ifMatch))
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return Applied{}, &TransportError{Op: op, Err: err}
	}
	defer drain(resp.Body)
	switch resp.StatusCode {
	case http.StatusOK:
		var a Applied
		if err := decode(resp.Body, &a); err != nil {
			return Applied{}, &TransportError{Op: op, Err: err}
		}
		return a, nil
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		eb := readError(resp.Body)
		return Applied{}, &RejectedError{Code: resp.StatusCode, Message: eb.Error, Diagnostics: eb.Diagnostics}
	case http.StatusPreconditionFailed:
		eb := readError(resp.Body)
		return Applied{}, &PreconditionError{Current: eb.CurrentVersion}
	default:
		return Applied{}, statusError(op, resp)
	}
}

// Get returns the running bundle and its ETag. It returns ErrNoBundle before
// the gateway has a config.
func (c *Client) Get(ctx context.Context) (*schemas.Bundle, string, error) {
	const op = "reading running bundle"
	resp, err := c.get(ctx, c.hc, "/v1/bundle", nil)
	if err != nil {
		return nil, "", &TransportError{Op: op, Err: err}
	}
	defer drain(resp.Body)
	switch resp.StatusCode {
	case http.StatusOK:
		var b schemas.Bundle
		if err := decode(resp.Body, &b); err != nil {
			return nil, "", &TransportError{Op: op, Err: err}
		}
		return &b, resp.Header.Get("ETag"), nil
	case http.StatusNotFound:
		return nil, "", ErrNoBundle
	default:
		return nil, "", statusError(op, resp)
	}
}

// Status returns the gateway's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	const op = "reading gateway status"
	resp, err := c.get(ctx, c.hc, "/v1/status", nil)
	if err != nil {
		return Status{}, &TransportError{Op: op, Err: err}
	}
	defer drain(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return Status{}, statusError(op, resp)
	}
	var s Status
	if err := decode(resp.Body, &s); err != nil {
		return Status{}, &TransportError{Op: op, Err: err}
	}
	return s, nil
}

// Ready returns nil when the gateway serves a config, ErrNotReady while it
// has none, and a *TransportError when it cannot be reached.
func (c *Client) Ready(ctx context.Context) error {
	const op = "checking gateway readiness"
	resp, err := c.get(ctx, c.hc, "/readyz", nil)
	if err != nil {
		return &TransportError{Op: op, Err: err}
	}
	defer drain(resp.Body)
	switch resp.StatusCode {
	case http.StatusOK:
		return nil
	case http.StatusServiceUnavailable:
		return ErrNotReady
	default:
		return statusError(op, resp)
	}
}

// Watch long-polls GET /v1/watch: it returns at once when the running
// version differs from since, else when it changes or after timeout (0: the
// server's default). changed is false when the timeout ended with the
// version still equal to since.
func (c *Client) Watch(ctx context.Context, since string, timeout time.Duration) (state WatchState, changed bool, err error) {
	const op = "watching gateway version"
	q := url.Values{"since": {since}}
	if timeout > 0 {
		q.Set("timeout", timeout.String())
	}
	resp, err := c.get(ctx, c.watchHC, "/v1/watch?"+q.Encode(), nil)
	if err != nil {
		return WatchState{}, false, &TransportError{Op: op, Err: err}
	}
	defer drain(resp.Body)
	switch resp.StatusCode {
	case http.StatusOK:
		if err := decode(resp.Body, &state); err != nil {
			return WatchState{}, false, &TransportError{Op: op, Err: err}
		}
		return state, state.Version != since, nil
	case http.StatusNotModified:
		return WatchState{Version: since}, false, nil
	default:
		return WatchState{}, false, statusError(op, resp)
	}
}

// Subscribe follows the SSE stream of GET /v1/watch and calls fn for each
// event, in order, until ctx ends, fn returns an error, or the stream breaks.
// lastEventID, when not 0, resumes after that event; the gateway answers with
// a reset event when it no longer holds it. The error is ctx.Err() after a
// cancel, fn's error as is, and a *TransportError for a broken stream.
func (c *Client) Subscribe(ctx context.Context, lastEventID uint64, fn func(WatchEvent) error) error {
	const op = "following gateway events"
	h := http.Header{"Accept": {"text/event-stream"}}
	if lastEventID != 0 {
		h.Set("Last-Event-ID", strconv.FormatUint(lastEventID, 10))
	}
	resp, err := c.get(ctx, c.watchHC, "/v1/watch", h)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &TransportError{Op: op, Err: err}
	}
	defer drain(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return statusError(op, resp)
	}
	err = ReadEvents(resp.Body, fn)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var te *TransportError
	if err != nil && !errors.As(err, &te) {
		return err
	}
	if err == nil {
		err = &TransportError{Op: op, Err: io.ErrUnexpectedEOF}
	}
	return err
}

// ReadEvents parses a text/event-stream body and calls fn for every complete
// event; comment lines (heartbeats) are skipped. It returns nil at the end
// of r, fn's error as is, and a *TransportError when r fails or an event is
// malformed.
func ReadEvents(r io.Reader, fn func(WatchEvent) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxEventBytes)
	var ev WatchEvent
	var data []byte
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			if ev.Type == "" && data == nil {
				continue
			}
			if err := json.Unmarshal(data, &ev.State); err != nil {
				return &TransportError{Op: "decoding event " + strconv.FormatUint(ev.ID, 10), Err: err}
			}
			if err := fn(ev); err != nil {
				return err
			}
			ev, data = WatchEvent{}, nil
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "id":
			id, err := strconv.ParseUint(string(value), 10, 64)
			if err != nil {
				return &TransportError{Op: "reading event id", Err: err}
			}
			ev.ID = id
		case "event":
			ev.Type = string(value)
		case "data":
			if data != nil {
				data = append(data, '\n')
			}
			data = append(data, value...)
		}
	}
	if err := sc.Err(); err != nil {
		return &TransportError{Op: "reading events", Err: err}
	}
	return nil
}

// ETag formats a version as the entity tag the admin API uses.
func ETag(version string) string {
	if version == "*" {
		return version
	}
	return strconv.Quote(version)
}

func (c *Client) get(ctx context.Context, hc *http.Client, path string, h http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	return hc.Do(req)
}

func decode(r io.Reader, v any) error {
	if err := json.NewDecoder(io.LimitReader(r, maxAnswerBytes)).Decode(v); err != nil {
		return fmt.Errorf("decoding answer: %w", err)
	}
	return nil
}

func readError(r io.Reader) ErrorBody {
	var eb ErrorBody
	b, _ := io.ReadAll(io.LimitReader(r, maxAnswerBytes))
	if err := json.Unmarshal(b, &eb); err != nil || eb.Error == "" {
		eb.Error = strings.TrimSpace(string(b))
	}
	return eb
}

func statusError(op string, resp *http.Response) error {
	return &StatusError{Op: op, Code: resp.StatusCode, Message: readError(resp.Body).Error}
}

// drain reads a little of what is left so the connection can be reused, then
// closes the body.
func drain(rc io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(rc, 64<<10))
	_ = rc.Close()
}

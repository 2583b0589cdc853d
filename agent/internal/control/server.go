package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"github.com/gitgate/gitgate/agent/internal/bundle"
	"github.com/gitgate/gitgate/agent/internal/source"
	"github.com/gitgate/gitgate/agent/internal/syncer"
	"github.com/gitgate/gitgate/gateway/admin/client"
	"github.com/gitgate/gitgate/schemas"
)

// Backend is what the control socket exposes; *syncer.Loop implements it.
type Backend interface {
	Status(ctx context.Context) syncer.Status
	History(n int) []bundle.Entry
	SyncAndWait(ctx context.Context, reason string) (syncer.Status, error)
	Rollback(ctx context.Context, rev string, hold bool, reason string) (syncer.RollbackResult, error)
	Resume(ctx context.Context) error
}

// RollbackRequest is the body of POST /v1/rollback.
type RollbackRequest struct {
	// Rev is a SHA or unique prefix; empty means the previously applied
	// commit.
	Rev string `json:"rev,omitempty"`
	// Hold keeps the pin until resume.
	Hold bool `json:"hold,omitempty"`
	// Reason is recorded with the pin.
	Reason string `json:"reason,omitempty"`
}

// ErrorBody is the JSON of every error answer.
type ErrorBody struct {
	Error       string               `json:"error"`
	Diagnostics []schemas.Diagnostic `json:"diagnostics,omitempty"`
}

// maxBody caps a request body.
const maxBody = 64 << 10

// Server serves the control socket. Start it with Listen; Close stops it
// and waits for its goroutine.
type Server struct {
	path string
	ln   net.Listener
	srv  *http.Server
	done chan error
}

// Listen creates the socket at path (mode 0600) and starts serving b. A
// stale socket at path is removed; any other kind of file is refused.
func Listen(path string, b Backend, log zerolog.Logger) (*Server, error) {
	return listen(path, b, log, nil)
}

// listen is Listen with a hook that sees the socket right after bind.
func listen(path string, b Backend, log zerolog.Logger, afterBind func(string)) (*Server, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("control socket %s: a file that is not a socket is in the way", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("removing stale control socket %s: %w", path, err)
		}
	}
	ln, err := listenOwnerOnly(path, afterBind)
	if err != nil {
		return nil, fmt.Errorf("listening on control socket %s: %w", path, err)
	}
	// The owner's execute bit is the only one the umask left beyond 0600.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("setting mode of control socket %s: %w", path, err)
	}
	h := &handler{b: b, log: log.With().Str("component", "control").Logger()}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", h.status)
	mux.HandleFunc("GET /v1/history", h.history)
	mux.HandleFunc("POST /v1/sync", h.sync)
	mux.HandleFunc("POST /v1/rollback", h.rollback)
	mux.HandleFunc("POST /v1/resume", h.resume)
	s := &Server{
		path: path, ln: ln, done: make(chan error, 1),
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, IdleTimeout: time.Minute},
	}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.done <- err
	}()
	return s, nil
}

// Path is the socket path.
func (s *Server) Path() string { return s.path }

// Close shuts the server down gracefully (bounded by ctx), waits for its
// goroutine and removes the socket.
func (s *Server) Close(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
	}
	serr := <-s.done
	os.Remove(s.path)
	return errors.Join(err, serr)
}

type handler struct {
	b   Backend
	log zerolog.Logger
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// writeErr maps an error to a status that says how to handle it.
func (h *handler) writeErr(w http.ResponseWriter, op string, err error) {
	code := http.StatusInternalServerError
	var inv *schemas.InvalidError
	var rej *client.RejectedError
	var te *client.TransportError
	body := ErrorBody{Error: err.Error()}
	switch {
	case errors.As(err, &inv):
		code, body.Diagnostics = http.StatusUnprocessableEntity, inv.Diagnostics
	case errors.As(err, &rej):
		code, body.Diagnostics = http.StatusUnprocessableEntity, rej.Diagnostics
	case errors.Is(err, source.ErrUnknownRevision):
		code = http.StatusNotFound
	case errors.Is(err, source.ErrAmbiguousRevision), errors.Is(err, syncer.ErrNotPinned), errors.Is(err, syncer.ErrNoPrevious):
		code = http.StatusConflict
	case errors.Is(err, source.ErrUnsigned), errors.Is(err, source.ErrUntrusted):
		code = http.StatusUnprocessableEntity
	case errors.As(err, &te):
		code = http.StatusBadGateway
	case errors.Is(err, context.DeadlineExceeded):
		code = http.StatusGatewayTimeout
	}
	if code >= 500 {
		h.log.Warn().Err(err).Str("op", op).Msg("control request failed")
	}
	writeJSON(w, code, body)
}

func (h *handler) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.b.Status(r.Context()))
}

func (h *handler) history(w http.ResponseWriter, r *http.Request) {
	n := 20
	if v := r.URL.Query().Get("n"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 0 {
			writeJSON(w, http.StatusBadRequest, ErrorBody{Error: fmt.Sprintf("n must be a non-negative integer, got %q", v)})
			return
		}
	}
	entries := h.b.History(n)
	if entries == nil {
		entries = []bundle.Entry{}
	}
	writeJSON(w, http.StatusOK, entries)
}

func (h *handler) sync(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
	defer cancel()
	st, err := h.b.SyncAndWait(ctx, "cli")
	if err != nil {
		h.writeErr(w, "sync", err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (h *handler) rollback(w http.ResponseWriter, r *http.Request) {
	var req RollbackRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeJSON(w, http.StatusBadRequest, ErrorBody{Error: "decoding rollback request: " + err.Error()})
		return
	}
	res, err := h.b.Rollback(r.Context(), req.Rev, req.Hold, req.Reason)
	if err != nil {
		h.writeErr(w, "rollback", err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (h *handler) resume(w http.ResponseWriter, r *http.Request) {
	if err := h.b.Resume(r.Context()); err != nil {
		h.writeErr(w, "resume", err)
		return
	}
	writeJSON(w, http.StatusOK, h.b.Status(r.Context()))
}

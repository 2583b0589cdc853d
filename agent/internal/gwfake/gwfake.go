// Package gwfake is a test double of the gateway's admin API for the
// agent's tests: the bundle and status routes over a real Unix socket, with
// the gateway's If-Match (412), invalid bundle (422) and same-digest (no-op)
// semantics. It can be stopped and restarted on the same path to simulate a
// gateway that is down or restarted.
package gwfake

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gitgate/gitgate/gateway/admin/client"
	"github.com/gitgate/gitgate/schemas"
)

// Gateway is the fake admin API. Its zero value is not usable; use New.
type Gateway struct {
	t *testing.T
	// Sock is the admin socket path.
	Sock string

	mu      sync.Mutex
	running *schemas.Bundle
	gate    chan struct{}
	srv     *httptest.Server
}

// New starts a fake gateway with no config on a fresh short socket path;
// it is stopped when the test ends.
func New(t *testing.T) *Gateway {
	dir, err := os.MkdirTemp("", "gw") // short: Unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	g := &Gateway{t: t, Sock: filepath.Join(dir, "admin.sock")}
	g.Start()
	t.Cleanup(g.Stop)
	return g
}

// Start listens on Sock again after Stop.
func (g *Gateway) Start() {
	ln, err := net.Listen("unix", g.Sock)
	if err != nil {
		g.t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(g)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	g.mu.Lock()
	g.srv = srv
	g.mu.Unlock()
}

// Stop closes the socket: the gateway is down.
func (g *Gateway) Stop() {
	g.mu.Lock()
	srv := g.srv
	g.srv = nil
	g.mu.Unlock()
	if srv != nil {
		srv.CloseClientConnections()
		srv.Close()
		os.Remove(g.Sock)
	}
}

// Restart simulates a gateway restart that comes back running b (nil: no
// config).
func (g *Gateway) Restart(b *schemas.Bundle) {
	g.Stop()
	g.Set(b)
	g.Start()
}

// Current returns the running bundle, nil when none.
func (g *Gateway) Current() *schemas.Bundle {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.running
}

// Version returns the running version, "" when none.
func (g *Gateway) Version() string {
	if b := g.Current(); b != nil {
		return b.Version
	}
	return ""
}

// Set replaces the running bundle by hand.
func (g *Gateway) Set(b *schemas.Bundle) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.running = b
}

// Gate makes status calls wait until the returned func is called.
func (g *Gateway) Gate() (release func()) {
	ch := make(chan struct{})
	g.mu.Lock()
	g.gate = ch
	g.mu.Unlock()
	return func() {
		g.mu.Lock()
		g.gate = nil
		g.mu.Unlock()
		close(ch)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// ServeHTTP implements the admin routes the agent uses.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/v1/status":
		g.mu.Lock()
		gate := g.gate
		g.mu.Unlock()
		if gate != nil {
			<-gate
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		st := client.Status{}
		if g.running != nil {
			st.Ready, st.Version, st.Digest = true, g.running.Version, g.running.Digest
		}
		writeJSON(w, http.StatusOK, st)
	case r.Method == http.MethodPut && r.URL.Path == "/v1/bundle":
		var b schemas.Bundle
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<20)).Decode(&b); err != nil {
			writeJSON(w, http.StatusBadRequest, client.ErrorBody{Error: err.Error()})
			return
		}
		if err := b.Verify(); err != nil {
			writeJSON(w, http.StatusUnprocessableEntity, client.ErrorBody{Error: err.Error()})
			return
		}
		for name, rt := range b.Config.Routes {
			for _, be := range rt.Backends {
				if _, ok := b.Config.Upstreams[be.Upstream]; !ok {
					writeJSON(w, http.StatusUnprocessableEntity, client.ErrorBody{Error: "invalid bundle",
						Diagnostics: []schemas.Diagnostic{{Path: "routes." + name, Message: "unknown upstream " + be.Upstream}}})
					return
				}
			}
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		cur := ""
		if g.running != nil {
			cur = g.running.Version
		}
		if im := r.Header.Get("If-Match"); im != "" && im != "*" && im != client.ETag(cur) {
			writeJSON(w, http.StatusPreconditionFailed, client.ErrorBody{Error: "precondition failed", CurrentVersion: cur})
			return
		}
		if g.running != nil && g.running.Digest == b.Digest {
			writeJSON(w, http.StatusOK, client.Applied{Version: cur, Digest: b.Digest, Unchanged: true})
			return
		}
		g.running = &b
		writeJSON(w, http.StatusOK, client.Applied{Version: b.Version, Digest: b.Digest, AppliedAt: time.Now()})
	default:
		http.NotFound(w, r)
	}
}

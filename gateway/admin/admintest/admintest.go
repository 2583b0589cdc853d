// Package admintest runs the gateway's real admin API and engine on a Unix
// socket for the tests of admin clients such as the agent, as
// net/http/httptest runs a real HTTP server. If-Match and 412, the digest
// check, 422 and its body, the same-digest no-op and the status all come
// from gateway/admin and the gateway's runtime, so a client's tests cannot
// pass against rules the gateway does not have.
//
// Only tests import it: the agent's binary links gateway/admin/client alone
// (go list -deps ./agent shows no other gateway package).
package admintest

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/gitgate/gitgate/gateway/admin"
	"github.com/gitgate/gitgate/gateway/internal/runtime"
	"github.com/gitgate/gitgate/schemas"
)

// Gateway is a gateway's admin socket and engine, without a data plane
// listener. Its zero value is not usable; use New.
type Gateway struct {
	t testing.TB
	// Sock is the admin socket path.
	Sock string

	mu   sync.Mutex
	eng  *runtime.Engine
	srv  *httptest.Server
	gate chan struct{}
}

// New starts a gateway with no config on a fresh short socket path; it is
// stopped when the test ends.
func New(t testing.TB) *Gateway {
	t.Helper()
	dir, err := os.MkdirTemp("", "gw") // short: Unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	g := &Gateway{t: t, Sock: filepath.Join(dir, "admin.sock"), eng: newEngine()}
	g.Start()
	t.Cleanup(func() {
		g.Stop()
		g.mu.Lock()
		defer g.mu.Unlock()
		_ = g.eng.Close()
	})
	return g
}

// newEngine leaves the process's GC setting alone: tests share it.
func newEngine() *runtime.Engine { return runtime.New(runtime.Options{GCPercent: -1}) }

// Start serves the admin API on Sock again after Stop, as a gateway process
// that comes back with the config its engine runs.
func (g *Gateway) Start() {
	g.t.Helper()
	g.mu.Lock()
	eng := g.eng
	g.mu.Unlock()
	adm, err := admin.New(admin.Options{Runtime: eng})
	if err != nil {
		g.t.Fatal(err)
	}
	ln, err := net.Listen("unix", g.Sock)
	if err != nil {
		g.t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(g.gated(adm.Handler()))
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

// Restart simulates a gateway process restarted from a last-known-good file
// holding b (nil: none): a new engine and admin server.
func (g *Gateway) Restart(b *schemas.Bundle) {
	g.t.Helper()
	g.Stop()
	eng := newEngine()
	if b != nil {
		if err := eng.Apply(b); err != nil {
			g.t.Fatalf("admintest: restarting with %s: %v", b.Version, err)
		}
	}
	g.mu.Lock()
	old := g.eng
	g.eng = eng
	g.mu.Unlock()
	_ = old.Close()
	g.Start()
}

// Current returns the running bundle, nil when none.
func (g *Gateway) Current() *schemas.Bundle {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.eng.Current()
}

// Version returns the running version, "" when none.
func (g *Gateway) Version() string {
	if b := g.Current(); b != nil {
		return b.Version
	}
	return ""
}

// Set applies b to the engine behind the admin API's back, as a hand edit
// of the running gateway would.
func (g *Gateway) Set(b *schemas.Bundle) {
	g.t.Helper()
	g.mu.Lock()
	eng := g.eng
	g.mu.Unlock()
	if err := eng.Apply(b); err != nil {
		g.t.Fatalf("admintest: setting %s: %v", b.Version, err)
	}
}

// Gate makes GET /v1/status wait until the returned func is called.
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

func (g *Gateway) gated(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/v1/status" {
			g.mu.Lock()
			gate := g.gate
			g.mu.Unlock()
			if gate != nil {
				<-gate
			}
		}
		h.ServeHTTP(w, r)
	})
}

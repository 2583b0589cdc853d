package admin

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gitgate/gitgate/gateway/admin/client"
	"github.com/gitgate/gitgate/schemas"
)

// fakeRuntime stands in for the gateway engine: it verifies the bundle,
// refuses backends naming unknown upstreams, and swaps a pointer.
type fakeRuntime struct {
	cur     atomic.Pointer[schemas.Bundle]
	applies atomic.Int64
}

func (f *fakeRuntime) Apply(b *schemas.Bundle) error {
	if err := b.Verify(); err != nil {
		return &schemas.InvalidError{Diagnostics: []schemas.Diagnostic{{Path: "bundle", Message: err.Error()}}}
	}
	var diags []schemas.Diagnostic
	for name, r := range b.Config.Routes {
		for i, be := range r.Backends {
			if _, ok := b.Config.Upstreams[be.Upstream]; !ok {
				diags = append(diags, schemas.Diagnostic{
					Path:    fmt.Sprintf("routes.%s.backends[%d].upstream", name, i),
					Message: fmt.Sprintf("unknown upstream %q", be.Upstream),
				})
			}
		}
	}
	if diags != nil {
		return &schemas.InvalidError{Diagnostics: diags}
	}
	f.applies.Add(1)
	f.cur.Store(b)
	return nil
}

func (f *fakeRuntime) Current() *schemas.Bundle { return f.cur.Load() }

// memStore is a Persister that keeps the last saved bundle, or fails.
type memStore struct {
	mu    sync.Mutex
	saved *schemas.Bundle
	fail  error
}

func (m *memStore) Save(b *schemas.Bundle) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.saved = b
	return nil
}

// failWith makes the next saves fail with err (nil: succeed).
func (m *memStore) failWith(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fail = err
}

func (m *memStore) last() *schemas.Bundle {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.saved
}

// bundle builds a valid bundle routing "/" to upstream "app", or to up when
// given (which makes it invalid unless up is "app").
func bundle(t testing.TB, version string, target string, up ...string) *schemas.Bundle {
	t.Helper()
	upstream := "app"
	if len(up) > 0 {
		upstream = up[0]
	}
	cfg := schemas.Config{
		Upstreams: map[string]schemas.Upstream{"app": {Targets: []string{target}}},
		Routes: map[string]schemas.Route{"all": {
			Match:    schemas.Match{Path: "/"},
			Backends: []schemas.Backend{{Upstream: upstream, Weight: 100}},
		}},
	}
	cfg.ApplyDefaults()
	b, err := schemas.NewBundle(version, schemas.Source{Commit: version, Subject: "test " + version}, cfg, time.Unix(1700000000, 0))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// socketPath returns a short socket path (sun_path holds 108 bytes, and
// t.TempDir paths of long test names exceed it).
func socketPath(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "gga")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return filepath.Join(dir, "admin.sock")
}

type harness struct {
	srv    *Server
	rt     *fakeRuntime
	store  *memStore
	reg    *prometheus.Registry
	sock   string
	client *client.Client
	served []chan error // one per Serve call, waited after Shutdown
}

// start serves a Server on a real Unix socket until the test ends.
func start(t *testing.T, tweak func(*Options)) *harness {
	t.Helper()
	h := &harness{rt: &fakeRuntime{}, store: &memStore{}, reg: prometheus.NewRegistry(), sock: socketPath(t)}
	opts := Options{
		Runtime: h.rt, Store: h.store, Gatherer: h.reg, Registerer: h.reg,
		Watch: true, Heartbeat: time.Hour,
	}
	if tweak != nil {
		tweak(&opts)
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	h.srv = srv
	l, err := ListenUnix(h.sock, 0)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	h.served = append(h.served, served)
	go func() { served <- srv.ServeAdmin(l) }()
	h.client = client.New(h.sock)
	t.Cleanup(func() {
		h.client.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		for _, ch := range h.served {
			if err := <-ch; err != nil {
				t.Errorf("Serve: %v", err)
			}
		}
	})
	return h
}

// observe also serves the read-only handler on a loopback TCP port and
// returns its base URL.
func (h *harness) observe(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	h.served = append(h.served, served)
	go func() { served <- h.srv.ServeObserve(l) }()
	return "http://" + l.Addr().String()
}

func (h *harness) put(t *testing.T, b *schemas.Bundle, ifMatch string) (client.Applied, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return h.client.Put(ctx, b, ifMatch)
}

func (h *harness) mustPut(t *testing.T, b *schemas.Bundle) client.Applied {
	t.Helper()
	a, err := h.put(t, b, "")
	if err != nil {
		t.Fatalf("put %s: %v", b.Version, err)
	}
	return a
}

package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/gitgate/gitgate/gateway/admin/client"
	"github.com/gitgate/gitgate/schemas"
)

func TestListenUnix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		mode     fs.FileMode
		prepare  func(t *testing.T, path string)
		wantErr  string
		wantMode fs.FileMode
	}{
		{name: "default mode is 0600", wantMode: 0o600},
		{name: "mode can be widened", mode: 0o660, wantMode: 0o660},
		{name: "stale socket is removed", wantMode: 0o600, prepare: func(t *testing.T, path string) {
			l, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			l.(*net.UnixListener).SetUnlinkOnClose(false)
			_ = l.Close() // leaves the socket file with nobody listening
			if _, err := os.Lstat(path); err != nil {
				t.Fatalf("stale socket not left behind: %v", err)
			}
		}},
		{name: "live socket is refused", wantErr: "in use", prepare: func(t *testing.T, path string) {
			l, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = l.Close() })
		}},
		{name: "regular file is refused", wantErr: "not a socket", prepare: func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "directory is refused", wantErr: "not a socket", prepare: func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := socketPath(t)
			if tt.prepare != nil {
				tt.prepare(t, path)
			}
			before, _ := os.ReadFile(path)
			l, err := ListenUnix(path, tt.mode)
			if tt.wantErr != "" {
				if err == nil {
					_ = l.Close()
					t.Fatal("ListenUnix succeeded, want an error")
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %q does not say %q", err, tt.wantErr)
				}
				if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
					t.Fatal("refused path was changed")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			fi, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Type() != fs.ModeSocket {
				t.Fatalf("%s is %v, not a socket", path, fi.Mode())
			}
			if got := fi.Mode().Perm(); got != tt.wantMode {
				t.Fatalf("socket mode %o, want %o", got, tt.wantMode)
			}
		})
	}
}

func TestPutBundle(t *testing.T) {
	t.Parallel()
	const target = "http://127.0.0.1:1"
	v1 := bundle(t, "v1", target)
	tests := []struct {
		name    string
		running *schemas.Bundle // applied first, when set
		push    *schemas.Bundle
		ifMatch string
		check   func(t *testing.T, h *harness, a client.Applied, err error)
	}{
		{
			name: "first apply", push: v1,
			check: func(t *testing.T, h *harness, a client.Applied, err error) {
				if err != nil {
					t.Fatal(err)
				}
				if a.Version != "v1" || a.Digest != v1.Digest || a.Unchanged || a.AppliedAt.IsZero() {
					t.Fatalf("answer %+v", a)
				}
				if h.store.last() != h.rt.Current() {
					t.Fatal("applied bundle not persisted")
				}
			},
		},
		{
			name: "If-Match of the running version", running: v1, push: bundle(t, "v2", "http://127.0.0.1:2"), ifMatch: "v1",
			check: func(t *testing.T, h *harness, a client.Applied, err error) {
				if err != nil || a.Version != "v2" {
					t.Fatalf("got %+v, %v; want v2 applied", a, err)
				}
			},
		},
		{
			name: "stale If-Match", running: v1, push: bundle(t, "v3", "http://127.0.0.1:3"), ifMatch: "v0",
			check: func(t *testing.T, h *harness, a client.Applied, err error) {
				var pe *client.PreconditionError
				if !errors.As(err, &pe) || !errors.Is(err, client.ErrPreconditionFailed) {
					t.Fatalf("got %v, want *PreconditionError", err)
				}
				if pe.Current != "v1" {
					t.Fatalf("412 says current %q, want v1", pe.Current)
				}
				if h.rt.Current().Version != "v1" {
					t.Fatal("running config changed")
				}
			},
		},
		{
			name: "If-Match before any config", push: v1, ifMatch: "v0",
			check: func(t *testing.T, h *harness, a client.Applied, err error) {
				if !errors.Is(err, client.ErrPreconditionFailed) {
					t.Fatalf("got %v, want 412", err)
				}
				if h.rt.Current() != nil {
					t.Fatal("config applied despite 412")
				}
			},
		},
		{
			name: "If-Match * before any config", push: v1, ifMatch: "*",
			check: func(t *testing.T, h *harness, a client.Applied, err error) {
				if !errors.Is(err, client.ErrPreconditionFailed) {
					t.Fatalf("got %v, want 412", err)
				}
			},
		},
		{
			name: "If-Match * with a config", running: v1, push: bundle(t, "v2", "http://127.0.0.1:2"), ifMatch: "*",
			check: func(t *testing.T, h *harness, a client.Applied, err error) {
				if err != nil {
					t.Fatal(err)
				}
			},
		},
		{
			name: "same digest is a no-op", running: v1, push: bundle(t, "v1-again", target),
			check: func(t *testing.T, h *harness, a client.Applied, err error) {
				if err != nil {
					t.Fatal(err)
				}
				if !a.Unchanged || a.Version != "v1" {
					t.Fatalf("answer %+v, want unchanged v1", a)
				}
				if n := h.rt.applies.Load(); n != 1 {
					t.Fatalf("runtime applied %d times, want 1", n)
				}
			},
		},
		{
			name: "config that fails compile", running: v1, push: bundle(t, "bad", target, "nope"),
			check: func(t *testing.T, h *harness, a client.Applied, err error) {
				var re *client.RejectedError
				if !errors.As(err, &re) || re.Code != http.StatusUnprocessableEntity {
					t.Fatalf("got %v, want 422 *RejectedError", err)
				}
				if len(re.Diagnostics) != 1 || re.Diagnostics[0].Path != "routes.all.backends[0].upstream" {
					t.Fatalf("diagnostics %+v", re.Diagnostics)
				}
				st, err := h.client.Status(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				if st.Version != "v1" || st.LastRejected == nil || st.LastRejected.Version != "bad" ||
					len(st.LastRejected.Diagnostics) != 1 {
					t.Fatalf("status after rejection: %+v", st)
				}
				if h.store.last().Version != "v1" {
					t.Fatal("rejected bundle persisted")
				}
			},
		},
		{
			name: "wrong digest", running: v1, push: func() *schemas.Bundle {
				b := *bundle(t, "v4", "http://127.0.0.1:4")
				b.Digest = "sha256:0000"
				return &b
			}(),
			check: func(t *testing.T, h *harness, a client.Applied, err error) {
				var re *client.RejectedError
				if !errors.As(err, &re) || re.Code != http.StatusUnprocessableEntity ||
					!strings.Contains(re.Diagnostics[0].Message, schemas.ErrDigest.Error()) {
					t.Fatalf("got %v, want 422 on digest", err)
				}
				if h.rt.Current().Version != "v1" {
					t.Fatal("running config changed")
				}
			},
		},
		{
			name: "running digest claimed by another config", running: v1,
			push: func() *schemas.Bundle { b := *bundle(t, "v5", "http://127.0.0.1:5"); b.Digest = v1.Digest; return &b }(),
			check: func(t *testing.T, h *harness, a client.Applied, err error) {
				var re *client.RejectedError
				if !errors.As(err, &re) || re.Diagnostics[0].Path != "digest" {
					t.Fatalf("got %+v, %v; want 422 on digest, not a no-op", a, err)
				}
			},
		},
		{
			name: "no version", push: func() *schemas.Bundle { b := *v1; b.Version = ""; return &b }(),
			check: func(t *testing.T, h *harness, a client.Applied, err error) {
				var re *client.RejectedError
				if !errors.As(err, &re) || re.Diagnostics[0].Path != "version" {
					t.Fatalf("got %v, want 422 on version", err)
				}
			},
		},
		{
			name: "unknown apiVersion", push: func() *schemas.Bundle { b := *v1; b.APIVersion = "gitgate.dev/v9"; return &b }(),
			check: func(t *testing.T, h *harness, a client.Applied, err error) {
				var re *client.RejectedError
				if !errors.As(err, &re) || re.Diagnostics[0].Path != "apiVersion" {
					t.Fatalf("got %v, want 422 on apiVersion", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := start(t, nil)
			if tt.running != nil {
				h.mustPut(t, tt.running)
			}
			a, err := h.put(t, tt.push, tt.ifMatch)
			tt.check(t, h, a, err)
		})
	}
}

// rawPut sends body as is to PUT /v1/bundle.
func rawPut(t *testing.T, sock string, body io.Reader) (int, client.ErrorBody) {
	t.Helper()
	hc := &http.Client{Transport: unixTransport(sock)}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodPut, "http://admin/v1/bundle", body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var eb client.ErrorBody
	_ = json.NewDecoder(resp.Body).Decode(&eb)
	return resp.StatusCode, eb
}

func TestPutBadInput(t *testing.T) {
	t.Parallel()
	good, err := json.Marshal(bundle(t, "v1", "http://127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		body     []byte
		wantCode int
		wantMsg  string
	}{
		{name: "malformed JSON", body: good[:len(good)-3], wantCode: 400, wantMsg: "decoding bundle"},
		{name: "unknown field", body: bytes.Replace(good, []byte(`"digest"`), []byte(`"digets"`), 1), wantCode: 400, wantMsg: "unknown field"},
		{name: "trailing data", body: append(append([]byte{}, good...), " {}"...), wantCode: 400, wantMsg: "after the JSON"},
		{name: "empty body", body: nil, wantCode: 400, wantMsg: "decoding bundle"},
		{name: "over the body cap", body: append(append([]byte{}, good...), bytes.Repeat([]byte(" "), 4096)...), wantCode: 413, wantMsg: "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := start(t, func(o *Options) { o.MaxBundleBytes = int64(len(good) + 100) })
			code, eb := rawPut(t, h.sock, bytes.NewReader(tt.body))
			if code != tt.wantCode || !strings.Contains(eb.Error, tt.wantMsg) {
				t.Fatalf("got %d %q, want %d with %q", code, eb.Error, tt.wantCode, tt.wantMsg)
			}
			if h.rt.Current() != nil || h.store.last() != nil {
				t.Fatal("bad input changed the running config")
			}
		})
	}
}

func TestConcurrentWritersOneWins(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	h.mustPut(t, bundle(t, "base", "http://127.0.0.1:1"))
	const writers = 8
	var wg sync.WaitGroup
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() {
			b := bundle(t, "w"+string(rune('a'+i)), "http://127.0.0.1:"+string(rune('2'+i)))
			_, errs[i] = h.put(t, b, "base")
		})
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case errors.Is(err, client.ErrPreconditionFailed):
		default:
			t.Errorf("writer failed with %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d writers won against If-Match base, want exactly 1", won)
	}
}

func TestPersistFailureStillApplies(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	h.store.fail = errors.New("disk full")
	a := h.mustPut(t, bundle(t, "v1", "http://127.0.0.1:1"))
	if a.Version != "v1" || !strings.Contains(a.Warning, "disk full") {
		t.Fatalf("answer %+v, want v1 with a warning", a)
	}
	body := get(t, h.sock, "/metrics", nil).body
	if !strings.Contains(body, "gitgate_admin_lkg_save_failures_total 1") {
		t.Fatalf("metrics do not count the failed save:\n%s", body)
	}
}

// TestStatusShowsLastKnownGood checks that a failed save of the
// last-known-good copy shows in GET /v1/status, not only in a metric and a
// log line, and that the next good save clears it.
func TestStatusShowsLastKnownGood(t *testing.T) {
	t.Parallel()
	diskFull := errors.New("writing last-known-good: no space left on device")
	tests := []struct {
		name string
		// saves[i] is what the store answers to the i-th apply (v1, v2, ...).
		saves     []error
		noStore   bool
		wantSaved string
		wantError string
	}{
		{name: "every save succeeds", saves: []error{nil, nil}, wantSaved: "v2"},
		{name: "disk full keeps the older copy", saves: []error{nil, diskFull}, wantSaved: "v1", wantError: "no space left on device"},
		{name: "disk full from the start", saves: []error{diskFull}, wantError: "no space left on device"},
		{name: "a good save clears the error", saves: []error{nil, diskFull, nil}, wantSaved: "v3"},
		{name: "no store, no field", saves: []error{nil}, noStore: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := start(t, func(o *Options) {
				if tt.noStore {
					o.Store = nil
				}
			})
			for i, saveErr := range tt.saves {
				h.store.failWith(saveErr)
				// Each version routes elsewhere, so none is a no-op.
				a := h.mustPut(t, bundle(t, fmt.Sprintf("v%d", i+1), fmt.Sprintf("http://127.0.0.1:%d", i+1)))
				if (a.Warning != "") != (saveErr != nil && !tt.noStore) {
					t.Fatalf("apply %d answered warning %q with save error %v", i+1, a.Warning, saveErr)
				}
			}
			st, err := h.client.Status(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			lkg := st.LastKnownGood
			if tt.noStore {
				if lkg != nil {
					t.Fatalf("lastKnownGood %+v without a store, want none", lkg)
				}
				return
			}
			if lkg == nil {
				t.Fatal("status has no lastKnownGood")
			}
			if lkg.SavedVersion != tt.wantSaved || lkg.At.IsZero() || (lkg.SavedVersion != "") == lkg.SavedAt.IsZero() {
				t.Fatalf("lastKnownGood %+v, want saved version %q with its time and the attempt's", lkg, tt.wantSaved)
			}
			if (tt.wantError == "") != (lkg.Error == "") || !strings.Contains(lkg.Error, tt.wantError) {
				t.Fatalf("lastKnownGood error %q, want %q", lkg.Error, tt.wantError)
			}
			// The wire names are what other tools read.
			body := get(t, h.sock, "/v1/status", nil).body
			if !strings.Contains(body, `"lastKnownGood":{`) || (tt.wantError != "" && !strings.Contains(body, `"error":"`+diskFull.Error()+`"`)) {
				t.Fatalf("status body lacks the lastKnownGood object: %s", body)
			}
		})
	}
}

func unixTransport(sock string) *http.Transport {
	return &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}
}

type answer struct {
	code   int
	header http.Header
	body   string
}

// get sends GET path over the socket sock, or to the base URL sock when it
// starts with http://.
func get(t *testing.T, sock, path string, h http.Header) answer {
	t.Helper()
	base := sock
	tr := &http.Transport{}
	if !strings.HasPrefix(sock, "http://") {
		base = "http://admin"
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}
	}
	hc := &http.Client{Transport: tr}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{code: resp.StatusCode, header: resp.Header, body: string(b)}
}

func TestReadRoutes(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	ctx := context.Background()

	if _, _, err := h.client.Get(ctx); !errors.Is(err, client.ErrNoBundle) {
		t.Fatalf("Get before any config: %v, want ErrNoBundle", err)
	}
	if err := h.client.Ready(ctx); !errors.Is(err, client.ErrNotReady) {
		t.Fatalf("Ready before any config: %v, want ErrNotReady", err)
	}
	if a := get(t, h.sock, "/healthz", nil); a.code != 200 {
		t.Fatalf("healthz %d", a.code)
	}
	st, err := h.client.Status(ctx)
	if err != nil || st.Ready || st.Version != "" || st.StartedAt.IsZero() {
		t.Fatalf("status before any config: %+v, %v", st, err)
	}

	v1 := bundle(t, "v1", "http://127.0.0.1:1")
	h.mustPut(t, v1)
	if err := h.client.Ready(ctx); err != nil {
		t.Fatalf("Ready after apply: %v", err)
	}
	got, etag, err := h.client.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if etag != `"v1"` || got.Digest != v1.Digest || got.Verify() != nil {
		t.Fatalf("Get: etag %s, bundle %s %s", etag, got.Version, got.Digest)
	}
	for _, tc := range []struct {
		name string
		inm  string
		want int
	}{
		{name: "matching If-None-Match", inm: `"v1"`, want: http.StatusNotModified},
		{name: "weak and listed", inm: `"v0", W/"v1"`, want: http.StatusNotModified},
		{name: "star", inm: `*`, want: http.StatusNotModified},
		{name: "other version", inm: `"v0"`, want: http.StatusOK},
	} {
		if a := get(t, h.sock, "/v1/bundle", http.Header{"If-None-Match": {tc.inm}}); a.code != tc.want {
			t.Errorf("%s: got %d, want %d", tc.name, a.code, tc.want)
		}
	}
	st, err = h.client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Ready || st.Version != "v1" || st.Digest != v1.Digest || st.Routes != 1 ||
		st.AppliedAt.IsZero() || st.Source == nil || st.Source.Commit != "v1" {
		t.Fatalf("status after apply: %+v", st)
	}
	if a := get(t, h.sock, "/metrics", nil); a.code != 200 || !strings.Contains(a.body, "gitgate_admin_watch_streams") {
		t.Fatalf("metrics: %d\n%s", a.code, a.body)
	}
}

func TestStatusShowsHealth(t *testing.T) {
	t.Parallel()
	h := start(t, func(o *Options) {
		o.Health = func() Health {
			return Health{
				Routes:    7,
				Upstreams: map[string][]client.TargetStatus{"app": {{URL: "http://127.0.0.1:1", Healthy: false, InFlight: 3}}},
				Breakers:  map[string]string{"app": "open"},
				JWKS:      map[string]client.JWKSStatus{"auth": {URL: "https://idp.test/jwks.json", Keys: 2, LastError: "HTTP status 500"}},
			}
		}
	})
	h.mustPut(t, bundle(t, "v1", "http://127.0.0.1:1"))
	st, err := h.client.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Routes != 7 || st.Breakers["app"] != "open" || len(st.Upstreams["app"]) != 1 || st.Upstreams["app"][0].InFlight != 3 ||
		st.JWKS["auth"].Keys != 2 || st.JWKS["auth"].LastError == "" {
		t.Fatalf("status %+v does not carry the runtime's health", st)
	}
}

func TestRestore(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		b         *schemas.Bundle
		wantReady bool
	}{
		{name: "valid bundle", b: bundle(t, "lkg", "http://127.0.0.1:1"), wantReady: true},
		{name: "bundle the runtime refuses", b: bundle(t, "lkg", "http://127.0.0.1:1", "gone")},
		{name: "tampered bundle", b: func() *schemas.Bundle {
			b := *bundle(t, "lkg", "http://127.0.0.1:1")
			b.Digest = "sha256:00"
			return &b
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := start(t, nil)
			err := h.srv.Restore(tt.b)
			if (err == nil) != tt.wantReady {
				t.Fatalf("Restore: %v", err)
			}
			st, err := h.client.Status(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if st.Ready != tt.wantReady {
				t.Fatalf("ready %v, want %v", st.Ready, tt.wantReady)
			}
			if !tt.wantReady && (st.LastRejected == nil || st.LastRejected.Version != "lkg") {
				t.Fatalf("refused restore not recorded: %+v", st.LastRejected)
			}
			if h.store.last() != nil {
				t.Fatal("Restore wrote the store again")
			}
		})
	}
}

func TestObserveIsReadOnly(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	base := h.observe(t)
	h.mustPut(t, bundle(t, "v1", "http://127.0.0.1:1"))

	obs := client.NewURL(base)
	defer obs.Close()
	_, err := obs.Put(context.Background(), bundle(t, "v2", "http://127.0.0.1:2"), "")
	var se *client.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusMethodNotAllowed {
		t.Fatalf("PUT on the observe address: %v, want 405", err)
	}
	if h.rt.Current().Version != "v1" {
		t.Fatal("PUT on the observe address changed the config")
	}
	for _, path := range []string{"/v1/status", "/v1/bundle", "/healthz", "/readyz", "/metrics", "/v1/watch?since=x"} {
		if a := get(t, base, path, nil); a.code != http.StatusOK {
			t.Errorf("GET %s on the observe address: %d", path, a.code)
		}
	}
	for _, method := range []string{http.MethodPost, http.MethodDelete, http.MethodPatch} {
		req, _ := http.NewRequest(method, base+"/v1/bundle", strings.NewReader("{}"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("%s /v1/bundle on the observe address: %d", method, resp.StatusCode)
		}
	}
}

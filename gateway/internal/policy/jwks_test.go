package policy

import (
	"crypto/rsa"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/gitgate/gitgate/schemas"
)

// jwksServer is a real HTTPS server of a JWKS that a test can change,
// break (HTTP 500), hang or inflate.
type jwksServer struct {
	srv     *httptest.Server
	caFile  string // PEM of the server's certificate, for jwksCARef
	fetches atomic.Int64

	mu   sync.Mutex
	doc  []byte
	mode string // "", "fail", "hang"
	stop chan struct{}
}

func newJWKSServer(t *testing.T, keys ...schemas.JWK) *jwksServer {
	t.Helper()
	js := &jwksServer{stop: make(chan struct{})}
	js.setKeys(t, keys...)
	js.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		js.fetches.Add(1)
		js.mu.Lock()
		doc, mode := js.doc, js.mode
		js.mu.Unlock()
		switch mode {
		case "fail":
			http.Error(w, "provider down", http.StatusInternalServerError)
			return
		case "hang":
			select {
			case <-r.Context().Done():
			case <-js.stop:
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	}))
	// Clients that give up mid-handshake (the fetch timeout) are expected.
	js.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	js.srv.StartTLS()
	t.Cleanup(func() {
		close(js.stop)
		js.srv.Close()
	})
	js.caFile = filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: js.srv.Certificate().Raw})
	if err := os.WriteFile(js.caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return js
}

func (js *jwksServer) setKeys(t *testing.T, keys ...schemas.JWK) {
	t.Helper()
	doc, err := json.Marshal(schemas.JWKS{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	js.setDoc(doc)
}

func (js *jwksServer) setDoc(doc []byte) {
	js.mu.Lock()
	js.doc = doc
	js.mu.Unlock()
}

func (js *jwksServer) setMode(m string) {
	js.mu.Lock()
	js.mode = m
	js.mu.Unlock()
}

// jwksPolicy is a config whose route "r" needs an RS256 token verified
// with the keys of js.
func jwksPolicy(js *jwksServer) *schemas.Config {
	return routeCfg(map[string]schemas.Policy{"p": {JWT: &schemas.JWT{
		Algorithms: []string{"RS256"},
		JWKSURL:    js.srv.URL + "/jwks.json",
		JWKSCARef:  &schemas.SecretRef{File: js.caFile},
	}}}, "p")
}

func rsToken(t *testing.T, kid string, key *rsa.PrivateKey) http.Header {
	t.Helper()
	now := time.Now()
	return bearer(sign(t, jwt.SigningMethodRS256, kid, key, jwt.MapClaims{
		"sub": "user-1", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}))
}

// shortJWKS shortens the fetch timeout so that a hanging provider costs a
// test little.
func shortJWKS(o Options) Options {
	o.jwksTimeout = 300 * time.Millisecond
	return o
}

func TestJWKSRotation(t *testing.T) {
	t.Parallel()
	keys := testKeys()
	js := newJWKSServer(t, rsaJWK("old", &keys.rsa.PublicKey))
	g := newGateway(t, jwksPolicy(js), "r", Options{})

	if res := g.do(t, "GET", "/", rsToken(t, "old", keys.rsa)); res.status != http.StatusOK {
		t.Fatalf("token of the first key: status %d %s, want 200", res.status, res.body)
	}
	// The provider rotates: a new key appears, and tokens signed with it
	// name its kid, unknown to the gateway's cached set.
	js.setKeys(t, rsaJWK("old", &keys.rsa.PublicKey), rsaJWK("new", &keys.rsaOther.PublicKey))
	if res := g.do(t, "GET", "/", rsToken(t, "new", keys.rsaOther)); res.status != http.StatusOK {
		t.Fatalf("token of the rotated-in key: status %d %s, want 200 after the unknown-kid refresh", res.status, res.body)
	}
	if n := js.fetches.Load(); n != 2 {
		t.Errorf("fetches = %d, want 2 (the first and the unknown-kid refresh)", n)
	}
	// The old key left the set: after the next refresh its tokens fail.
	js.setKeys(t, rsaJWK("new", &keys.rsaOther.PublicKey))
	if res := g.do(t, "GET", "/", rsToken(t, "new", keys.rsaOther)); res.status != http.StatusOK {
		t.Errorf("token of the new key: status %d, want 200", res.status)
	}
}

func TestJWKSProviderOutage(t *testing.T) {
	t.Parallel()
	keys := testKeys()
	js := newJWKSServer(t, rsaJWK("a", &keys.rsa.PublicKey))
	reg := prometheus.NewRegistry()
	g := newGateway(t, jwksPolicy(js), "r", Options{Registry: reg})
	if res := g.do(t, "GET", "/", rsToken(t, "a", keys.rsa)); res.status != http.StatusOK {
		t.Fatalf("before the outage: status %d %s", res.status, res.body)
	}
	m := g.set.metrics
	firstSuccess := metricValue(t, m.jwksLastSuccess.WithLabelValues("p"))
	if firstSuccess == 0 {
		t.Fatal("jwks_last_success_timestamp_seconds not set after a good fetch")
	}

	js.setMode("fail")
	// An unknown kid asks for a refresh, which fails: that token is
	// refused, and the last good set keeps serving the known kid.
	if res := g.do(t, "GET", "/", rsToken(t, "b", keys.rsaOther)); res.status != http.StatusUnauthorized {
		t.Errorf("unknown kid during the outage: status %d, want 401", res.status)
	}
	if res := g.do(t, "GET", "/", rsToken(t, "a", keys.rsa)); res.status != http.StatusOK {
		t.Errorf("known kid during the outage: status %d %s, want 200 from the last good set", res.status, res.body)
	}
	if got := metricValue(t, m.jwksRefreshes.WithLabelValues("p", jwksResultError)); got != 1 {
		t.Errorf("jwks_refreshes_total{result=error} = %v, want 1", got)
	}
	if got := metricValue(t, m.jwksLastSuccess.WithLabelValues("p")); got != firstSuccess {
		t.Errorf("last success moved during the outage: %v, want %v", got, firstSuccess)
	}
	st := g.set.JWKS()
	if len(st) != 1 || st[0].Keys != 1 || !strings.Contains(st[0].LastError, "HTTP status 500") || !strings.Contains(st[0].LastError, js.srv.URL) {
		t.Errorf("JWKS state = %+v, want 1 key served and the last error naming the URL and status", st)
	}
}

func TestJWKSHangingProvider(t *testing.T) {
	t.Parallel()
	keys := testKeys()
	tests := []struct {
		name string
		// firstOK: the provider answers the first fetch, then hangs.
		firstOK bool
		kid     string
		want    int
	}{
		{"no set yet: 503, not 401", false, "a", http.StatusServiceUnavailable},
		{"known kid served from the last good set", true, "a", http.StatusOK},
		{"unknown kid: the refresh times out, 401", true, "b", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			js := newJWKSServer(t, rsaJWK("a", &keys.rsa.PublicKey))
			if !tt.firstOK {
				js.setMode("hang")
			}
			cfg := jwksPolicy(js)
			cfg.ApplyDefaults()
			// Compile returns with the provider hanging: the first fetch
			// runs in the policy's goroutine.
			set, err := Compile(cfg, nil, shortJWKS(Options{}))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(set.Close)
			srv := newTestServer(t, set.Wrap("r", cfg.Routes["r"].Policies, proxyTo(t, newUpstream(t))))
			g := &gateway{set: set, srv: srv}
			if tt.firstOK {
				if res := g.do(t, "GET", "/", rsToken(t, "a", keys.rsa)); res.status != http.StatusOK {
					t.Fatalf("before the hang: status %d %s", res.status, res.body)
				}
				js.setMode("hang")
			}
			key := keys.rsa
			if tt.kid != "a" {
				key = keys.rsaOther
			}
			res := g.do(t, "GET", "/", rsToken(t, tt.kid, key))
			if res.status != tt.want {
				t.Fatalf("status %d %s, want %d", res.status, res.body, tt.want)
			}
			if tt.want == http.StatusServiceUnavailable && !strings.Contains(res.body, "jwks_unavailable") {
				t.Errorf("body %s, want code jwks_unavailable", res.body)
			}
		})
	}
}

func TestJWKSUnknownKidFlood(t *testing.T) {
	t.Parallel()
	keys := testKeys()
	js := newJWKSServer(t, rsaJWK("a", &keys.rsa.PublicKey))
	g := newGateway(t, jwksPolicy(js), "r", Options{})
	if res := g.do(t, "GET", "/", rsToken(t, "a", keys.rsa)); res.status != http.StatusOK {
		t.Fatalf("status %d %s", res.status, res.body)
	}
	// 1,000 tokens naming random kids, 8 clients at once.
	const n, workers = 1000, 8
	var wg sync.WaitGroup
	var accepted atomic.Int64
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				req, _ := http.NewRequest("GET", g.srv.URL+"/", nil)
				req.Header = rsToken(t, fmt.Sprintf("random-%d", i), keys.rsaOther)
				resp, err := g.srv.Client().Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					accepted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if accepted.Load() != 0 {
		t.Errorf("%d tokens with unknown kids accepted", accepted.Load())
	}
	if got := js.fetches.Load(); got > 3 {
		t.Errorf("the flood caused %d fetches, want at most 3 (the first and one or two refreshes)", got)
	}
}

func TestJWKSRefusedDocuments(t *testing.T) {
	t.Parallel()
	const secretish = "c2VjcmV0LXZhbHVlLW5vdC1hLWtleQ"
	tests := []struct {
		name string
		doc  []byte
		want string // in the last error
	}{
		{"larger than 1 MiB", []byte(`{"keys":[],"pad":"` + strings.Repeat("x", 2<<20) + `"}`), "larger than 1048576 bytes"},
		{"keys of the wrong JSON type", []byte(`{"keys":{"n":"` + secretish + `"}}`), "a JSON object where the JWKS needs a []schemas.JWK (at keys)"},
		{"no usable key", []byte(`{"keys":[{"kty":"RSA","kid":"k","n":"` + secretish + `","e":"AQAB"}]}`), "has no usable key (key 0: RSA key is"},
		{"not JSON", []byte(`{"keys": [` + secretish), "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			js := newJWKSServer(t)
			js.setDoc(tt.doc)
			g := newGateway(t, jwksPolicy(js), "r", Options{})
			if res := g.do(t, "GET", "/", rsToken(t, "k", testKeys().rsa)); res.status != http.StatusServiceUnavailable {
				t.Errorf("status %d, want 503 while no set was accepted", res.status)
			}
			st := g.set.JWKS()
			if len(st) != 1 || st[0].Keys != 0 {
				t.Fatalf("state %+v, want no keys", st)
			}
			msg := st[0].LastError
			if !strings.Contains(msg, tt.want) || !strings.Contains(msg, js.srv.URL) {
				t.Errorf("last error %q, want it to contain %q and the URL", msg, tt.want)
			}
			if strings.Contains(msg, secretish) {
				t.Errorf("last error %q quotes the document", msg)
			}
		})
	}
}

// TestJWKSAppliesKeepCacheAndLeakNoGoroutine compiles 100 configs, each
// with the previous Set, as the runtime does, and closes the previous one:
// an unchanged policy keeps its source (no new fetch), a changed one gets
// a new source, and after the last Close no goroutine is left.
func TestJWKSAppliesKeepCacheAndLeakNoGoroutine(t *testing.T) {
	keys := testKeys()
	js := newJWKSServer(t, rsaJWK("a", &keys.rsa.PublicKey))
	before := runtime.NumGoroutine()

	cfgFor := func(i int) *schemas.Config {
		cfg := jwksPolicy(js)
		cfg.Policies["same"] = cfg.Policies["p"]
		changed := *cfg.Policies["p"].JWT
		changed.JWKSRefresh = schemas.Duration(time.Duration(10+i%2) * time.Minute)
		cfg.Policies["p"] = schemas.Policy{JWT: &changed}
		cfg.ApplyDefaults()
		return cfg
	}
	var prev *Set
	var first *jwksSource
	for i := range 100 {
		cfg := cfgFor(i)
		if i%10 == 5 {
			// A config refused for another policy: the sources this
			// compile started or retained are released.
			cfg.Policies["bad"] = schemas.Policy{JWT: &schemas.JWT{Algorithms: []string{"RS256"}, Header: "bad header", JWKSURL: js.srv.URL}}
			if _, err := Compile(cfg, prev, Options{}); err == nil {
				t.Fatalf("apply %d: a bad header name was accepted", i)
			}
			continue
		}
		set, err := Compile(cfg, prev, Options{})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = set.jwks["same"]
		} else if set.jwks["same"] != first {
			t.Fatalf("apply %d: the unchanged policy got a new JWKS source", i)
		}
		if prev != nil {
			prev.Close()
		}
		prev = set
	}
	if first.current() == nil {
		// The changed policy's new sources are seeded from the old ones;
		// wait for the unchanged one's first fetch to count fetches.
		first.waitFirst(t.Context())
	}
	prev.Close()
	js.srv.CloseClientConnections()

	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines after 100 applies and Close, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// metricValue reads a counter's or gauge's value.
func metricValue(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

// TestJWKSMetricsFollowThePolicy checks that a changed policy keeps its
// series and a removed one loses them once its last Set is closed.
func TestJWKSMetricsFollowThePolicy(t *testing.T) {
	t.Parallel()
	keys := testKeys()
	js := newJWKSServer(t, rsaJWK("a", &keys.rsa.PublicKey))
	reg := prometheus.NewRegistry()
	series := func() int {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, mf := range mfs {
			if strings.Contains(mf.GetName(), "jwks") {
				n += len(mf.GetMetric())
			}
		}
		return n
	}
	cfg := jwksPolicy(js)
	cfg.ApplyDefaults()
	s1, err := Compile(cfg, nil, Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	s1.jwks["p"].waitFirst(t.Context())
	if n := series(); n != 3 {
		t.Fatalf("%d JWKS series after the first fetch, want 3 (last success, ok and error counts)", n)
	}

	changed := jwksPolicy(js)
	changed.Policies["p"].JWT.JWKSRefresh = schemas.Duration(time.Hour)
	changed.ApplyDefaults()
	s2, err := Compile(changed, s1, Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	s1.Close()
	if n := series(); n != 3 {
		t.Errorf("%d JWKS series after the policy changed, want its series kept", n)
	}

	none := routeCfg(map[string]schemas.Policy{})
	none.ApplyDefaults()
	s3, err := Compile(none, s2, Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
	defer s3.Close()
	if n := series(); n != 0 {
		t.Errorf("%d JWKS series after the policy was removed, want 0", n)
	}
}

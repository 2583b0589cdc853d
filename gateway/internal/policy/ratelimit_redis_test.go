package policy

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/gitgate/gitgate/schemas"
	"github.com/gitgate/gitgate/scripts/e2e/harness"
)

// startRedis starts a real redis-server on a loopback port for the test,
// or skips the test when it is not installed, unless GITGATE_REQUIRE_REDIS
// is set (the e2e battery sets it after installing the package).
func startRedis(t *testing.T, args ...string) *harness.Redis {
	t.Helper()
	r, err := harness.StartRedis(t.TempDir(), args...)
	if errors.Is(err, harness.ErrNoRedis) && os.Getenv(harness.RequireRedisEnv) == "" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.Stop()
		if t.Failed() {
			b, _ := os.ReadFile(r.Log)
			t.Logf("redis-server log:\n%s", b)
		}
	})
	return r
}

// redisRL is a store-redis rate limit of rate per hour (nothing refills
// during a test) keyed by route.
func redisRL(addr string, rate int, onErr string) schemas.RateLimit {
	return schemas.RateLimit{
		Rate: float64(rate), Per: schemas.Duration(time.Hour), Burst: rate, Key: "route",
		Store: schemas.RateLimitStoreRedis, OnStoreError: onErr,
		Redis: &schemas.RedisStore{Address: addr, Timeout: schemas.Duration(time.Second)},
	}
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// counts sends n requests and returns how many were answered 200 and 429.
func (g *gateway) counts(t *testing.T, n int) (ok, limited int) {
	t.Helper()
	for range n {
		switch res := g.do(t, "GET", "/", nil); res.status {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
			limited++
		default:
			t.Fatalf("status %d: %s", res.status, res.body)
		}
	}
	return ok, limited
}

func decisions(s *Set, policy, store, result string) float64 {
	return testutil.ToFloat64(s.metrics.decisions.WithLabelValues(policy, store, result))
}

// TestRedisRateLimitSharedByGateways: two gateways (two Sets compiled on
// their own, each with its own client and local buckets, their clocks two
// hours apart) share one bucket in one redis-server, so together they
// admit the burst once.
func TestRedisRateLimitSharedByGateways(t *testing.T) {
	t.Parallel()
	rs := startRedis(t)
	tests := []struct {
		name string
		key  string
	}{
		{"route key", "route"},
		{"client address key", "client_ip"},
		{"header key", "header:X-User"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rl := redisRL(rs.Addr, 5, "")
			rl.Key = tc.key
			rl.Redis.KeyPrefix = "t:" + strings.ReplaceAll(tc.name, " ", "-") + ":"
			a := newGateway(t, rlCfg(rl), "r", Options{Registry: prometheus.NewRegistry()})
			// b's clock is two hours ahead: were buckets timed by the
			// gateways' clocks, b would see them refilled.
			skewed := func() time.Time { return time.Now().Add(2 * time.Hour) }
			b := newGateway(t, rlCfg(rl), "r", Options{Registry: prometheus.NewRegistry(), Now: skewed})
			ok, limited := 0, 0
			for i := range 12 {
				g := a
				if i%2 == 1 {
					g = b
				}
				switch res := g.do(t, "GET", "/", hdr("X-User", "alice")); res.status {
				case http.StatusOK:
					ok++
				case http.StatusTooManyRequests:
					limited++
					if res.header.Get("Retry-After") == "" {
						t.Errorf("429 without Retry-After")
					}
				default:
					t.Fatalf("status %d: %s", res.status, res.body)
				}
			}
			if ok != 5 || limited != 7 {
				t.Errorf("two gateways admitted %d and refused %d of 12, want 5 and 7 (one shared burst of 5)", ok, limited)
			}
			for _, g := range []*gateway{a, b} {
				if n := decisions(g.set, "rl", storeRedis, "allowed") + decisions(g.set, "rl", storeRedis, "limited"); n != 6 {
					t.Errorf("a gateway counted %v decisions by redis, want 6", n)
				}
				if n := decisions(g.set, "rl", storeLocal, "allowed"); n != 0 {
					t.Errorf("a gateway decided %v requests locally while redis was up", n)
				}
			}
		})
	}
}

// TestRedisRateLimitStoreDown: with redis stopped, onStoreError allow lets
// everything through without RateLimit headers, local decides with this
// gateway's bucket of the same burst; both count store errors and raise
// the fallback gauge, and the log names the store, never its password.
func TestRedisRateLimitStoreDown(t *testing.T) {
	t.Parallel()
	rs := startRedis(t)
	addr := rs.Addr
	rs.Stop()
	tests := []struct {
		name        string
		onErr       string
		wantOK      int
		wantLimited int
		store       string
	}{
		{"allow fails open", schemas.OnStoreErrorAllow, 8, 0, storeNone},
		{"local uses this gateway's bucket", schemas.OnStoreErrorLocal, 3, 5, storeLocal},
		{"default is local", "", 3, 5, storeLocal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rl := redisRL(addr, 3, tc.onErr)
			rl.Redis.PasswordRef = &schemas.SecretRef{Env: "REDIS_PW"}
			var logs syncBuffer
			g := newGateway(t, rlCfg(rl), "r", Options{
				Registry:  prometheus.NewRegistry(),
				LookupEnv: env(map[string]string{"REDIS_PW": "s3cret-pw-value"}),
				Logger:    zerolog.New(&logs),
			})
			ok, limited := g.counts(t, 8)
			if ok != tc.wantOK || limited != tc.wantLimited {
				t.Errorf("admitted %d, refused %d; want %d and %d", ok, limited, tc.wantOK, tc.wantLimited)
			}
			if tc.store == storeNone {
				if res := g.do(t, "GET", "/", nil); res.header.Get("RateLimit-Remaining") != "" {
					t.Errorf("fail-open answer carries RateLimit-Remaining %q", res.header.Get("RateLimit-Remaining"))
				}
			}
			if n := decisions(g.set, "rl", tc.store, "allowed"); n < float64(tc.wantOK) {
				t.Errorf("decisions{store=%s,result=allowed} = %v, want at least %d", tc.store, n, tc.wantOK)
			}
			if n := testutil.ToFloat64(g.set.metrics.storeErrors.WithLabelValues("rl")); n < 1 {
				t.Errorf("store errors = %v, want at least 1", n)
			}
			if v := testutil.ToFloat64(g.set.metrics.fallback.WithLabelValues("rl")); v != 1 {
				t.Errorf("fallback gauge = %v, want 1", v)
			}
			out := logs.String()
			if strings.Count(out, "rate-limit store unreachable") != 1 || !strings.Contains(out, addr) {
				t.Errorf("want one bounded 'unreachable' line naming %s, got:\n%s", addr, out)
			}
			if strings.Contains(out, "s3cret-pw-value") {
				t.Errorf("the log holds the redis password:\n%s", out)
			}
		})
	}
}

// TestRedisRateLimitPassword: a server with requirepass decides with the
// password read from its reference, and falls back with a wrong one.
func TestRedisRateLimitPassword(t *testing.T) {
	t.Parallel()
	rs := startRedis(t, "--requirepass", "right-password")
	tests := []struct {
		name  string
		pw    string
		store string
	}{
		{"right password", "right-password", storeRedis},
		{"wrong password", "wrong-password", storeLocal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rl := redisRL(rs.Addr, 2, "")
			rl.Redis.KeyPrefix = strings.ReplaceAll(tc.name, " ", "-") + ":"
			rl.Redis.PasswordRef = &schemas.SecretRef{Env: "PW"}
			var logs syncBuffer
			g := newGateway(t, rlCfg(rl), "r", Options{
				Registry: prometheus.NewRegistry(), LookupEnv: env(map[string]string{"PW": tc.pw}), Logger: zerolog.New(&logs),
			})
			if ok, limited := g.counts(t, 3); ok != 2 || limited != 1 {
				t.Errorf("admitted %d, refused %d; want 2 and 1", ok, limited)
			}
			if n := decisions(g.set, "rl", tc.store, "allowed"); n != 2 {
				t.Errorf("decisions{store=%s,result=allowed} = %v, want 2", tc.store, n)
			}
			if strings.Contains(logs.String(), tc.pw) {
				t.Errorf("the log holds the password:\n%s", logs.String())
			}
		})
	}
}

// TestRedisRateLimitRestartUnderLoad: redis-server is killed and started
// again (empty) while clients send requests; the policy falls back to its
// local bucket, says so in the gauge and the log, and then decides by
// Redis again: the fresh bucket admits at most its burst.
func TestRedisRateLimitRestartUnderLoad(t *testing.T) {
	t.Parallel()
	rs := startRedis(t)
	var logs syncBuffer
	rl := redisRL(rs.Addr, 4, schemas.OnStoreErrorLocal)
	rl.Redis.Timeout = schemas.Duration(100 * time.Millisecond)
	g := newGateway(t, rlCfg(rl), "r", Options{Registry: prometheus.NewRegistry(), Logger: zerolog.New(&logs)})
	gauge := func() float64 { return testutil.ToFloat64(g.set.metrics.fallback.WithLabelValues("rl")) }

	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	var sent, failed atomic.Int64
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, "GET", g.srv.URL+"/", nil)
				resp, err := g.srv.Client().Do(req)
				if err != nil {
					if ctx.Err() == nil {
						failed.Add(1)
					}
					continue
				}
				resp.Body.Close()
				sent.Add(1)
				if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusTooManyRequests {
					failed.Add(1)
				}
			}
		})
	}
	waitUntil(t, "redis limits the load", func() bool { return decisions(g.set, "rl", storeRedis, "limited") > 0 })
	before := decisions(g.set, "rl", storeRedis, "allowed")
	rs.Stop()
	waitUntil(t, "the fallback gauge rises", func() bool { return gauge() == 1 })
	waitUntil(t, "the local bucket decides", func() bool { return decisions(g.set, "rl", storeLocal, "limited") > 0 })
	if err := rs.Restart(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the fallback gauge falls", func() bool { return gauge() == 0 })
	mark := decisions(g.set, "rl", storeRedis, "limited")
	waitUntil(t, "redis limits again", func() bool { return decisions(g.set, "rl", storeRedis, "limited") > mark })
	cancel()
	wg.Wait()

	if before != 4 {
		t.Errorf("redis admitted %v before the restart, want the burst of 4", before)
	}
	if after := decisions(g.set, "rl", storeRedis, "allowed") - before; after > 4 {
		t.Errorf("redis admitted %v after the restart, want at most the fresh burst of 4", after)
	}
	if n := failed.Load(); n != 0 {
		t.Errorf("%d of %d requests failed (neither 200 nor 429)", n, sent.Load())
	}
	out := logs.String()
	if !strings.Contains(out, "rate-limit store unreachable") || !strings.Contains(out, "rate-limit store reachable again") {
		t.Errorf("want the store's loss and return in the log, got:\n%s", out)
	}
}

// TestRedisClientSharedAcrossApplies: an apply that keeps the redis
// settings keeps the client (and the policy's local buckets); one that
// changes them gets a new client, and the old one is closed when the last
// Set holding it is. No goroutine outlives the Sets.
func TestRedisClientSharedAcrossApplies(t *testing.T) {
	rs := startRedis(t)
	base := goruntime.NumGoroutine()
	compile := func(cfg *schemas.Config, prev *Set) *Set {
		t.Helper()
		cfg.ApplyDefaults()
		s, err := Compile(cfg, prev, Options{})
		if err != nil {
			t.Fatalf("Compile: %v", err)
		}
		return s
	}
	conn := func(s *Set) *redisConn {
		if len(s.redisConns) != 1 {
			t.Fatalf("the Set holds %d redis clients, want 1", len(s.redisConns))
		}
		for _, c := range s.redisConns {
			return c
		}
		return nil
	}
	use := func(s *Set) {
		h := s.Wrap("r", []string{"rl", "rl2"}, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		srv := newTestServer(t, h)
		resp, err := srv.Client().Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		srv.Close()
		srv.Client().CloseIdleConnections()
	}
	two := func(rl schemas.RateLimit) *schemas.Config {
		rl2 := rl
		rl2.Redis = new(*rl.Redis)
		return routeCfg(map[string]schemas.Policy{"rl": {RateLimit: &rl}, "rl2": {RateLimit: &rl2}}, "rl", "rl2")
	}

	s1 := compile(two(redisRL(rs.Addr, 5, "")), nil)
	use(s1)
	s2 := compile(two(redisRL(rs.Addr, 5, "")), s1)
	use(s2)
	if conn(s1) != conn(s2) {
		t.Errorf("an apply with the same redis settings made a new client")
	}
	if s1.limiters["rl"] != s2.limiters["rl"] {
		t.Errorf("an apply with the same settings dropped the policy's store")
	}
	changed := redisRL(rs.Addr, 5, "")
	changed.Redis.DB = 1
	s3 := compile(two(changed), s2)
	use(s3)
	if conn(s3) == conn(s2) {
		t.Errorf("an apply with another db kept the old client")
	}
	old := conn(s1)
	s1.Close()
	if err := old.client.Ping(t.Context()).Err(); err != nil {
		t.Errorf("the client was closed while s2 still holds it: %v", err)
	}
	s2.Close()
	if err := old.client.Ping(t.Context()).Err(); !errors.Is(err, redis.ErrClosed) {
		t.Errorf("Ping on the client no Set holds = %v, want %v", err, redis.ErrClosed)
	}
	s3.Close()
	waitUntil(t, "goroutines back to the baseline", func() bool { return goruntime.NumGoroutine() <= base })
}

// waitUntil polls cond for up to 20s (a bound on a hang, not a timing
// assertion).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRedisFallbackSeriesGoneWithPolicy: a policy removed while it ran on
// its fallback leaves no fallback gauge stuck at 1 (nor its error count)
// once no Set holds it; one that stays keeps its series.
func TestRedisFallbackSeriesGoneWithPolicy(t *testing.T) {
	t.Parallel()
	rs := startRedis(t)
	addr := rs.Addr
	rs.Stop()
	reg := prometheus.NewRegistry()
	two := func(names ...string) *schemas.Config {
		ps := map[string]schemas.Policy{}
		for _, n := range names {
			rl := redisRL(addr, 3, "")
			ps[n] = schemas.Policy{RateLimit: &rl}
		}
		cfg := routeCfg(ps, names...)
		cfg.ApplyDefaults()
		return cfg
	}
	s1, err := Compile(two("gone", "kept"), nil, Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	srv := newTestServer(t, s1.Wrap("r", []string{"gone", "kept"}, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n := testutil.CollectAndCount(s1.metrics.fallback); n != 2 {
		t.Fatalf("fallback series = %d, want 2", n)
	}
	s2, err := Compile(two("kept"), s1, Options{Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	s1.Close()
	if n := testutil.CollectAndCount(s2.metrics.fallback); n != 1 {
		t.Errorf("fallback series after removing a policy = %d, want 1 (the kept one)", n)
	}
	if v := testutil.ToFloat64(s2.metrics.fallback.WithLabelValues("kept")); v != 1 {
		t.Errorf("the kept policy's gauge = %v, want still 1", v)
	}
	if n := testutil.CollectAndCount(s2.metrics.storeErrors); n != 1 {
		t.Errorf("store error series after removing a policy = %d, want 1", n)
	}
}

// writeRedisCert writes a self-signed P-256 certificate for 127.0.0.1 and
// localhost, and its key, into dir; it returns their paths.
func writeRedisCert(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "redis.crt"), filepath.Join(dir, "redis.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestRedisRateLimitACLAndTLS: an ACL user named by usernameRef, and a TLS
// port verified with the CA of caRef, decide by Redis; a wrong password, an
// unknown CA or a server name the certificate lacks fall back.
func TestRedisRateLimitACLAndTLS(t *testing.T) {
	t.Parallel()
	certFile, keyFile := writeRedisCert(t, t.TempDir())
	tlsAddr, err := harness.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	_, tlsPort, _ := net.SplitHostPort(tlsAddr)
	rs := startRedis(t, "--tls-port", tlsPort, "--tls-cert-file", certFile, "--tls-key-file", keyFile,
		"--tls-auth-clients", "no", "--user", "alice", "on", ">alice-pw", "~*", "+@all")
	tests := []struct {
		name  string
		addr  string
		user  string // "" for the default user
		pw    string
		tls   *schemas.RedisTLS
		store string
	}{
		{name: "acl user", addr: rs.Addr, user: "alice", pw: "alice-pw", store: storeRedis},
		{name: "acl user wrong password", addr: rs.Addr, user: "alice", pw: "bob-pw", store: storeLocal},
		{name: "tls with the ca", addr: tlsAddr, tls: &schemas.RedisTLS{CARef: &schemas.SecretRef{File: certFile}}, store: storeRedis},
		{name: "tls and acl user", addr: tlsAddr, user: "alice", pw: "alice-pw", tls: &schemas.RedisTLS{CARef: &schemas.SecretRef{File: certFile}}, store: storeRedis},
		{name: "tls with system roots", addr: tlsAddr, tls: &schemas.RedisTLS{}, store: storeLocal},
		{name: "tls with another server name", addr: tlsAddr, tls: &schemas.RedisTLS{CARef: &schemas.SecretRef{File: certFile}, ServerName: "redis.example.com"}, store: storeLocal},
		{name: "plain client on the tls port", addr: tlsAddr, store: storeLocal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rl := redisRL(tc.addr, 2, "")
			rl.Redis.Timeout = schemas.Duration(300 * time.Millisecond)
			rl.Redis.KeyPrefix = strings.ReplaceAll(tc.name, " ", "-") + ":"
			rl.Redis.TLS = tc.tls
			secrets := map[string]string{}
			if tc.user != "" {
				rl.Redis.UsernameRef = &schemas.SecretRef{Env: "USER"}
				rl.Redis.PasswordRef = &schemas.SecretRef{Env: "PW"}
				secrets["USER"], secrets["PW"] = tc.user, tc.pw
			}
			g := newGateway(t, rlCfg(rl), "r", Options{Registry: prometheus.NewRegistry(), LookupEnv: env(secrets)})
			if ok, limited := g.counts(t, 3); ok != 2 || limited != 1 {
				t.Errorf("admitted %d, refused %d; want 2 and 1", ok, limited)
			}
			if n := decisions(g.set, "rl", tc.store, "allowed"); n != 2 {
				t.Errorf("decisions{store=%s,result=allowed} = %v, want 2", tc.store, n)
			}
		})
	}
}

// TestFallbackLogBounded: a store that flaps logs its loss at most once per
// logEvery, each logged loss is followed by its "reachable again" line, and
// the next logged loss counts the flaps in between.
func TestFallbackLogBounded(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	f := &fallbackState{policy: "rl", behavior: "local"}
	f.configure(zerolog.New(&logs), nil)
	now := time.Unix(1_800_000_000, 0)
	cause := errors.New("connection refused")
	for range 5 { // five flaps within a second
		f.set(true, now, "127.0.0.1:6379", cause)
		f.set(false, now, "127.0.0.1:6379", nil)
		now = now.Add(100 * time.Millisecond)
	}
	out := logs.String()
	if n := strings.Count(out, "rate-limit store unreachable"); n != 1 {
		t.Errorf("%d 'unreachable' lines for 5 flaps within logEvery, want 1:\n%s", n, out)
	}
	if n := strings.Count(out, "reachable again"); n != 1 {
		t.Errorf("%d 'reachable again' lines, want 1 (the one after the logged loss):\n%s", n, out)
	}
	now = now.Add(logEvery)
	f.set(true, now, "127.0.0.1:6379", cause)
	out = logs.String()
	if n := strings.Count(out, "rate-limit store unreachable"); n != 2 || !strings.Contains(out, `"flaps":4`) {
		t.Errorf("after logEvery: want a second 'unreachable' line counting 4 flaps:\n%s", out)
	}
}

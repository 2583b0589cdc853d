package policy

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"github.com/rs/zerolog"

	"github.com/gitgate/gitgate/schemas"
)

// A rateLimit policy with store "redis" keeps its buckets in a Redis (or
// Valkey) server shared by the fleet, so N gateways together admit the
// configured rate instead of N times it. One Lua script reads, refills and
// spends a bucket atomically, with the time taken from the server's TIME
// inside the script: gateways whose clocks disagree still agree on every
// bucket. Each bucket is a hash that expires once it would be full again,
// so idle keys vanish by themselves.
//
// While Redis does not answer within its timeout the policy follows its
// onStoreError: "local" decides with this process's own bucket of the same
// rate and burst (the local store the policy keeps anyway), "allow" lets
// requests through. After a failure the server is probed by one request
// every probeInterval; the others go straight to the fallback instead of
// each waiting for the timeout.

// bucketScript is the token bucket. KEYS[1] is the bucket; ARGV[1] the
// refill rate in tokens per second, ARGV[2] the burst. It returns
// {1 if a token was spent else 0, tokens left as a string}. Numbers are
// formatted explicitly: Lua's default %.14g would round a microsecond
// timestamp.
const bucketScript = `
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1])
local ts = tonumber(b[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
local elapsed = now - ts
if elapsed < 0 then elapsed = 0 end
tokens = math.min(burst, tokens + elapsed * rate / 1000000)
local ok = 0
if tokens >= 1 then
  tokens = tokens - 1
  ok = 1
end
local ttl = math.ceil((burst - tokens) / rate * 1000) + 1000
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'ts', string.format('%.0f', now))
redis.call('PEXPIRE', KEYS[1], ttl)
return {ok, string.format('%.6f', tokens)}
`

// script runs bucketScript by EVALSHA, and by EVAL when the server does
// not know it yet (NOSCRIPT after a restart or SCRIPT FLUSH).
var script = redis.NewScript(bucketScript)

// probeInterval is how often a store found unreachable is tried again by
// one request.
const probeInterval = 200 * time.Millisecond

// logEvery bounds the "Redis unreachable" log of a policy: a store that
// flaps logs once per interval, and says how often it flapped.
const logEvery = 10 * time.Second

// quietRedis silences go-redis's own logger (a process-wide setting): the
// policy logs the store's state changes itself, bounded.
var quietRedis sync.Once

type discardRedisLog struct{}

func (discardRedisLog) Printf(context.Context, string, ...any) {}

// redisConn is one Redis client, shared by the rateLimit policies of every
// Set whose redis settings and resolved credentials are the same. Each Set
// holds one reference; the last release closes the client.
type redisConn struct {
	key     string // digest of the settings and credentials
	addr    string
	client  *redis.Client
	timeout time.Duration

	mu   sync.Mutex
	refs int

	// down is set after a failed round trip; retryAt (Unix nanoseconds)
	// is when the next request may probe the server.
	down    atomic.Bool
	retryAt atomic.Int64
}

// redisSettings are what identifies a client: two policies (or two Sets)
// with equal settings share one.
type redisSettings struct {
	Address    string        `json:"a"`
	Username   string        `json:"u"`
	Password   string        `json:"p"`
	DB         int           `json:"d"`
	TLS        bool          `json:"t"`
	CA         string        `json:"c"`
	ServerName string        `json:"s"`
	Timeout    time.Duration `json:"o"`
}

func (st redisSettings) digest() string {
	b, _ := json.Marshal(st) // a struct of strings and numbers cannot fail
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func newRedisConn(st redisSettings, key string) (*redisConn, error) {
	quietRedis.Do(func() { redis.SetLogger(discardRedisLog{}) })
	opts := &redis.Options{
		Addr:     st.Address,
		Username: st.Username,
		Password: st.Password,
		DB:       st.DB,
		// RESP2: plain AUTH and SELECT, which every Redis and Valkey
		// version understands.
		Protocol:              2,
		DialTimeout:           st.Timeout,
		ReadTimeout:           st.Timeout,
		WriteTimeout:          st.Timeout,
		PoolTimeout:           st.Timeout,
		ContextTimeoutEnabled: true,
		// One attempt: a retry would double the time a request waits,
		// and the fallback decides instead.
		MaxRetries:               -1,
		DialerRetries:            1,
		DisableIdentity:          true,
		ConnMaxIdleTime:          5 * time.Minute,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
	if st.TLS {
		host, _, err := net.SplitHostPort(st.Address)
		if err != nil {
			return nil, fmt.Errorf("reading redis address %q: %w", st.Address, err)
		}
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cmpOr(st.ServerName, host)}
		if st.CA != "" {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM([]byte(st.CA)) {
				return nil, errors.New("tls.caRef holds no PEM certificate")
			}
			cfg.RootCAs = pool
		}
		opts.TLSConfig = cfg
	}
	return &redisConn{key: key, addr: st.Address, client: redis.NewClient(opts), timeout: st.Timeout, refs: 1}, nil
}

// retain adds a reference; false when the client is already closed.
func (c *redisConn) retain() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.refs == 0 {
		return false
	}
	c.refs++
	return true
}

// release drops a reference; the last one closes the client and its
// connections.
func (c *redisConn) release() {
	c.mu.Lock()
	c.refs--
	last := c.refs == 0
	c.mu.Unlock()
	if last {
		_ = c.client.Close() // closing a pool reports only an already-closed pool
	}
}

// skip reports whether a request should go straight to the fallback: the
// server failed recently and it is not this request's turn to probe it.
func (c *redisConn) skip(now time.Time) bool {
	if !c.down.Load() {
		return false
	}
	at := c.retryAt.Load()
	if now.UnixNano() < at {
		return true
	}
	return !c.retryAt.CompareAndSwap(at, now.Add(probeInterval).UnixNano())
}

func (c *redisConn) failed(now time.Time) {
	c.retryAt.Store(now.Add(probeInterval).UnixNano())
	c.down.Store(true)
}

// take spends one token of the bucket key and returns the tokens left.
func (c *redisConn) take(ctx context.Context, key string, ratePerSec float64, burst int) (bool, float64, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	res, err := script.Run(ctx, c.client, []string{key},
		strconv.FormatFloat(ratePerSec, 'g', -1, 64), burst).Slice()
	if err != nil {
		return false, 0, fmt.Errorf("running the bucket script on redis %s: %w", c.addr, err)
	}
	if len(res) != 2 {
		return false, 0, fmt.Errorf("bucket script on redis %s returned %d values, want 2", c.addr, len(res))
	}
	ok, _ := res[0].(int64)
	s, _ := res[1].(string)
	tokens, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return false, 0, fmt.Errorf("reading tokens from redis %s: %w", c.addr, err)
	}
	return ok == 1, tokens, nil
}

// sameRateLimit reports whether two settings are equal, the redis block's
// contents compared rather than its pointer.
func sameRateLimit(a, b schemas.RateLimit) bool { return reflect.DeepEqual(a, b) }

// redisConnFor returns the Set's client for cfg's redis settings: one
// already taken by another policy of the Set, the previous Set's (retained),
// or a new one. It reports problems (secrets that do not resolve, a CA
// bundle that is not PEM) on b and returns nil.
func (b *build) redisConnFor(cfg *schemas.RedisStore) *redisConn {
	st := redisSettings{Address: cfg.Address, DB: cfg.DB, Timeout: cmpOr(cfg.Timeout.D(), schemas.DefaultRedisTimeout)}
	ok := true
	secret := func(field string, ref *schemas.SecretRef) string {
		if ref == nil {
			return ""
		}
		v, err := b.set.resolveSecret(ref)
		if err != nil {
			b.problem(field, "reading %s: %v", field[1:], err)
			ok = false
			return ""
		}
		return string(v)
	}
	st.Username = secret(".redis.usernameRef", cfg.UsernameRef)
	st.Password = secret(".redis.passwordRef", cfg.PasswordRef)
	if cfg.TLS != nil {
		st.TLS = true
		st.ServerName = cfg.TLS.ServerName
		st.CA = secret(".redis.tls.caRef", cfg.TLS.CARef)
	}
	if !ok {
		return nil
	}
	key := st.digest()
	if c := b.set.redisConns[key]; c != nil {
		return c
	}
	if b.prev != nil {
		if c := b.prev.redisConns[key]; c != nil && c.retain() {
			b.set.redisConns[key] = c
			return c
		}
	}
	c, err := newRedisConn(st, key)
	if err != nil {
		b.problem(".redis.tls", "%v", err)
		return nil
	}
	b.set.redisConns[key] = c
	return c
}

// Stores that decide, the values of the "store" label of decisions:
// "none" is onStoreError allow letting a request through undecided.
const (
	storeLocal = "local"
	storeRedis = "redis"
	storeNone  = "none"
)

// remoteLimit is the Redis side of a rateLimit policy with store redis.
type remoteLimit struct {
	conn       *redisConn
	prefix     string // keyPrefix + policy name + ":"
	ratePerSec float64
	burst      int
	allowOnErr bool
	state      *fallbackState
	errors     prometheus.Counter
}

// fallbackState is whether a policy decides by its onStoreError, kept in
// the policy's limiterStore so it carries over an apply that left the
// policy alone. Its changes set the fallback gauge and are logged, the
// "unreachable" line at most once per logEvery.
type fallbackState struct {
	mu       sync.Mutex
	on       bool
	logged   bool // the last "unreachable" was logged, so "back" is too
	lastLog  time.Time
	flaps    int // changes not logged since the last line
	active   atomic.Bool
	policy   string
	gauge    prometheus.Gauge
	logger   zerolog.Logger
	behavior string
}

// configure gives the state the logger and gauge of the Set being
// compiled; the gauge is set to the current state.
func (f *fallbackState) configure(logger zerolog.Logger, gauge prometheus.Gauge) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logger, f.gauge = logger, gauge
	if gauge != nil {
		gauge.Set(boolGauge(f.on))
	}
}

func (f *fallbackState) set(on bool, now time.Time, addr string, cause error) {
	if f.active.Load() == on {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.on == on {
		return
	}
	f.on = on
	f.active.Store(on)
	if f.gauge != nil {
		f.gauge.Set(boolGauge(on))
	}
	if on {
		if now.Sub(f.lastLog) < logEvery && !f.lastLog.IsZero() {
			f.flaps++
			f.logged = false
			return
		}
		f.lastLog, f.logged = now, true
		f.logger.Warn().Str("policy", f.policy).Str("redis", addr).Str("on_store_error", f.behavior).
			Int("flaps", f.flaps).Err(cause).Msg("rate-limit store unreachable; deciding by onStoreError")
		f.flaps = 0
		return
	}
	if f.logged {
		f.logger.Info().Str("policy", f.policy).Str("redis", addr).Msg("rate-limit store reachable again")
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// key is the Redis key of bucket k.
func (rm *remoteLimit) key(k bucketKey) string {
	if k.s != "" {
		return rm.prefix + k.s
	}
	return rm.prefix + "ip:" + k.addr.String()
}

// take decides one request by Redis, or by the fallback when Redis does
// not answer. It returns the verdict and the store that decided.
func (rl *rateLimit) takeRemote(k bucketKey, r *http.Request) (verdict, string) {
	rm := rl.remote
	now := rl.now()
	if !rm.conn.skip(now) {
		ok, tokens, err := rm.conn.take(context.WithoutCancel(r.Context()), rm.key(k), rm.ratePerSec, rm.burst)
		if err == nil {
			if rm.conn.down.Load() {
				rm.conn.down.Store(false)
			}
			rm.state.set(false, now, rm.conn.addr, nil)
			return rl.verdictOf(ok, tokens), storeRedis
		}
		if rm.errors != nil {
			rm.errors.Inc()
		}
		rm.conn.failed(now)
		rm.state.set(true, now, rm.conn.addr, err)
	} else {
		rm.state.set(true, now, rm.conn.addr, errors.New("store marked unreachable by an earlier request"))
	}
	if rm.allowOnErr {
		return verdict{ok: true, remaining: -1}, storeNone
	}
	return rl.store.take(k, now), storeLocal
}

// verdictOf is the verdict of a Redis bucket with tokens left.
func (rl *rateLimit) verdictOf(ok bool, tokens float64) verdict {
	st := rl.store
	v := verdict{ok: ok, remaining: int(math.Max(0, math.Floor(tokens)))}
	v.resetSecs = ceilSecs((float64(st.burst) - tokens) / float64(st.limit))
	if !ok {
		v.retrySecs = max(1, ceilSecs((1-tokens)/float64(st.limit)))
	}
	return v
}

// attachRedis gives rl, a policy with store redis, its client, key
// prefix, fallback state and counters. It reports false after reporting
// a problem.
func (b *build) attachRedis(rl *rateLimit, cfg *schemas.RateLimit) bool {
	if cfg.Redis == nil { // refused by rules.RateLimit before compiling
		b.problem(".redis", "store: redis needs redis: {address: HOST:PORT}")
		return false
	}
	conn := b.redisConnFor(cfg.Redis)
	if conn == nil {
		return false
	}
	st := rl.store
	if st.fallback == nil {
		st.fallback = &fallbackState{policy: b.name, behavior: cmpOr(cfg.OnStoreError, schemas.OnStoreErrorLocal)}
	}
	rm := &remoteLimit{
		conn:       conn,
		prefix:     cmpOr(cfg.Redis.KeyPrefix, schemas.DefaultRedisKeyPrefix) + b.name + ":",
		ratePerSec: float64(st.limit),
		burst:      st.burst,
		allowOnErr: cfg.OnStoreError == schemas.OnStoreErrorAllow,
		state:      st.fallback,
	}
	var gauge prometheus.Gauge
	if m := b.set.metrics; m != nil {
		m.storeStarted(b.name)
		b.set.redisPolicies = append(b.set.redisPolicies, b.name)
		rm.errors = m.storeErrors.WithLabelValues(b.name)
		gauge = m.fallback.WithLabelValues(b.name)
	}
	st.fallback.configure(b.set.opts.Logger, gauge)
	rl.remote = rm
	return true
}

// storeStarted records a Set holding the store-redis policy.
func (m *metrics) storeStarted(policy string) {
	m.storeMu.Lock()
	defer m.storeMu.Unlock()
	if m.storeLive == nil {
		m.storeLive = map[string]int{}
	}
	m.storeLive[policy]++
}

// storeStopped records a closed Set that held the policy, and deletes the
// policy's fallback and store-error series when no Set holds it any more,
// so that a policy removed during an outage leaves no gauge stuck at 1.
func (m *metrics) storeStopped(policy string) {
	m.storeMu.Lock()
	defer m.storeMu.Unlock()
	if m.storeLive[policy]--; m.storeLive[policy] > 0 {
		return
	}
	delete(m.storeLive, policy)
	m.fallback.DeleteLabelValues(policy)
	m.storeErrors.DeleteLabelValues(policy)
}

package policy

import (
	"crypto/sha256"
	"fmt"
	"hash/maphash"
	"math"
	"net/http"
	"net/netip"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/gitgate/gitgate/gateway/internal/reply"
	"github.com/gitgate/gitgate/schemas"
	"github.com/gitgate/gitgate/schemas/rules"
)

// maxKeyBytes bounds the bytes a bucket key keeps: a longer header value is
// replaced by its SHA-256, so MaxKeys bounds memory whatever clients send.
const maxKeyBytes = 64

// bucketKey identifies one bucket: a client address, or a string (route name
// or header value). It is comparable, so client-IP keys cost no allocation.
type bucketKey struct {
	addr netip.Addr
	s    string
}

// entry is one bucket in a shard's LRU list.
type entry struct {
	key        bucketKey
	lim        *rate.Limiter
	last       time.Time
	prev, next *entry
}

// shard is an LRU of buckets under one lock. head is the most recently used.
type shard struct {
	mu         sync.Mutex
	m          map[bucketKey]*entry
	head, tail *entry
	cap        int
}

// limiterStore holds the buckets of one rateLimit policy. It is shared by
// every Set compiled from a config whose policy settings are unchanged.
type limiterStore struct {
	cfg    schemas.RateLimit
	limit  rate.Limit // tokens per second
	burst  int
	idle   time.Duration // time to refill an empty bucket: older buckets are full
	seed   maphash.Seed
	shards []shard
	// fallback is whether a store-redis policy decides by onStoreError
	// (ratelimit_redis.go); nil for store local.
	fallback *fallbackState
}

// maxShards bounds lock contention; fewer shards are used when MaxKeys is
// small so that the per-shard capacities sum to exactly MaxKeys.
const maxShards = 16

func newLimiterStore(cfg schemas.RateLimit) *limiterStore {
	limit := rate.Limit(cfg.Rate / cfg.Per.D().Seconds())
	n := min(maxShards, cfg.MaxKeys)
	st := &limiterStore{
		cfg:    cfg,
		limit:  limit,
		burst:  cfg.Burst,
		idle:   time.Duration(float64(cfg.Burst) / float64(limit) * float64(time.Second)),
		seed:   maphash.MakeSeed(),
		shards: make([]shard, n),
	}
	for i := range st.shards {
		c := cfg.MaxKeys / n
		if i < cfg.MaxKeys%n {
			c++
		}
		st.shards[i] = shard{m: make(map[bucketKey]*entry), cap: c}
	}
	return st
}

// verdict is the outcome of one take.
type verdict struct {
	ok        bool
	remaining int
	// resetSecs is the time until the bucket is full again.
	resetSecs int
	// retrySecs is the time until one token is available (when !ok).
	retrySecs int
}

// hash picks a shard for key without allocating.
func (st *limiterStore) hash(key bucketKey) uint64 {
	if key.s != "" {
		return maphash.String(st.seed, key.s)
	}
	a := key.addr.As16()
	return maphash.Bytes(st.seed, a[:])
}

// take spends one token of key's bucket at now.
func (st *limiterStore) take(key bucketKey, now time.Time) verdict {
	sh := &st.shards[st.hash(key)%uint64(len(st.shards))]
	sh.mu.Lock()
	e := sh.get(key, now, st)
	ok := e.lim.AllowN(now, 1)
	tokens := e.lim.TokensAt(now)
	sh.mu.Unlock()

	v := verdict{ok: ok, remaining: int(math.Max(0, math.Floor(tokens)))}
	v.resetSecs = ceilSecs((float64(st.burst) - tokens) / float64(st.limit))
	if !ok {
		v.retrySecs = max(1, ceilSecs((1-tokens)/float64(st.limit)))
	}
	return v
}

func ceilSecs(s float64) int {
	if s <= 0 || math.IsNaN(s) {
		return 0
	}
	if s > math.MaxInt32 {
		return math.MaxInt32
	}
	return int(math.Ceil(s))
}

// get returns key's entry, moved to the front, creating it when missing.
// Creating first drops, from the least recently used end, the entries idle
// long enough to be full again (forgetting them changes nothing), and one
// more when the shard is at capacity (forgetting it hands that key a full
// bucket). Each entry is dropped once, so the cost is O(1) amortized.
func (sh *shard) get(key bucketKey, now time.Time, st *limiterStore) *entry {
	if e, ok := sh.m[key]; ok {
		e.last = now
		if sh.head != e {
			sh.unlink(e)
			sh.pushFront(e)
		}
		return e
	}
	for t := sh.tail; t != nil && (len(sh.m) >= sh.cap || now.Sub(t.last) >= st.idle); t = sh.tail {
		sh.unlink(t)
		delete(sh.m, t.key)
	}
	e := &entry{key: key, lim: rate.NewLimiter(st.limit, st.burst), last: now}
	sh.m[key] = e
	sh.pushFront(e)
	return e
}

func (sh *shard) unlink(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		sh.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		sh.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (sh *shard) pushFront(e *entry) {
	e.next = sh.head
	if sh.head != nil {
		sh.head.prev = e
	}
	sh.head = e
	if sh.tail == nil {
		sh.tail = e
	}
}

// len counts the buckets held.
func (st *limiterStore) len() int {
	n := 0
	for i := range st.shards {
		sh := &st.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

// Rate-limit key kinds.
const (
	keyClientIP = iota
	keyRoute
	keyHeader
)

// rateLimit is a compiled rateLimit policy.
type rateLimit struct {
	name     string
	store    *limiterStore
	kind     int
	header   string // canonical header name for keyHeader
	clientIP func(*http.Request) netip.Addr
	now      func() time.Time
	metrics  *metrics
	limitHdr []string
	body     *reply.Body
	// remote is the Redis store of a store-redis policy, nil for local.
	remote *remoteLimit
}

func init() {
	registerKind("rateLimit", inOrder, func(b *build, cfg *schemas.RateLimit) middleware {
		// The store (the buckets) survives a compile that left the
		// policy's settings alone.
		var store *limiterStore
		if b.prev != nil {
			if old := b.prev.limiters[b.name]; old != nil && sameRateLimit(old.cfg, *cfg) {
				store = old
			}
		}
		rl, st := compileRateLimit(b.name, b.path, *cfg, store, b.set, b.diags)
		if rl == nil {
			return nil
		}
		if cfg.Store == schemas.RateLimitStoreRedis && !b.attachRedis(rl, cfg) {
			return nil
		}
		b.set.limiters[b.name] = st
		return rl
	})
}

func compileRateLimit(name, path string, cfg schemas.RateLimit, store *limiterStore, s *Set, diags *diagnostics) (*rateLimit, *limiterStore) {
	rl := &rateLimit{
		name:     name,
		clientIP: s.opts.ClientIP,
		now:      s.opts.Now,
		metrics:  s.metrics,
		limitHdr: []string{strconv.Itoa(cfg.Burst)},
		body:     reply.New("rate_limited", "rate limit exceeded; retry after the time in Retry-After", ""),
	}
	ok := true
	if !(cfg.Rate > 0) || math.IsInf(cfg.Rate, 0) {
		diags.add(path+".rate", fmt.Sprintf("rate must be a positive number, got %v", cfg.Rate))
		ok = false
	}
	if cfg.Per <= 0 {
		diags.add(path+".per", "per must be a positive duration such as \"1s\"")
		ok = false
	}
	if cfg.Burst < 1 {
		diags.add(path+".burst", fmt.Sprintf("burst must be at least 1, got %d", cfg.Burst))
		ok = false
	}
	if cfg.MaxKeys < 1 {
		diags.add(path+".maxKeys", fmt.Sprintf("maxKeys must be at least 1, got %d", cfg.MaxKeys))
		ok = false
	}
	switch {
	case cfg.Key == "client_ip":
		rl.kind = keyClientIP
	case cfg.Key == "route":
		rl.kind = keyRoute
	case strings.HasPrefix(cfg.Key, "header:") && rules.Token(strings.TrimPrefix(cfg.Key, "header:")):
		rl.kind = keyHeader
		rl.header = textproto.CanonicalMIMEHeaderKey(strings.TrimPrefix(cfg.Key, "header:"))
	default:
		diags.add(path+".key", fmt.Sprintf("key must be \"client_ip\", \"route\" or \"header:NAME\", got %q", cfg.Key))
		ok = false
	}
	if !ok {
		return nil, nil
	}
	if store == nil {
		store = newLimiterStore(cfg)
	}
	rl.store = store
	return rl, store
}

// key picks the bucket of r. A header key with the header absent falls back
// to the client address, so clients without the header do not share one
// bucket.
func (rl *rateLimit) key(route string, w http.ResponseWriter, r *http.Request) bucketKey {
	switch rl.kind {
	case keyRoute:
		return bucketKey{s: route}
	case keyHeader:
		if v := r.Header[rl.header]; len(v) > 0 && v[0] != "" {
			s := v[0]
			if len(s) > maxKeyBytes {
				sum := sha256.Sum256([]byte(s))
				s = "sha256:" + string(sum[:])
			} else {
				s = "h:" + s
			}
			return bucketKey{s: s}
		}
	}
	return bucketKey{addr: clientAddr(w, r, rl.clientIP)}
}

// wrap answers 429 when the bucket is empty and sets the RateLimit-Limit,
// RateLimit-Remaining and RateLimit-Reset headers (IETF draft
// ratelimit-headers) on every answer: Limit is the burst, Remaining the
// whole tokens left, Reset the seconds until the bucket is full.
func (rl *rateLimit) wrap(route string, next http.Handler) http.Handler {
	var limited interface{ Inc() }
	var decided decisionCounters
	if rl.metrics != nil {
		limited = rl.metrics.rateLimited.WithLabelValues(route, rl.name)
		decided = rl.metrics.decisionCounters(rl.name)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k := rl.key(route, w, r)
		var v verdict
		store := storeLocal
		if rl.remote != nil {
			v, store = rl.takeRemote(k, r)
		} else {
			v = rl.store.take(k, rl.now())
		}
		decided.inc(store, v.ok)
		if v.remaining < 0 {
			// onStoreError allow: no bucket decided, so no RateLimit
			// headers to tell.
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h["Ratelimit-Limit"] = rl.limitHdr
		h["Ratelimit-Remaining"] = []string{strconv.Itoa(v.remaining)}
		h["Ratelimit-Reset"] = []string{strconv.Itoa(v.resetSecs)}
		if !v.ok {
			if limited != nil {
				limited.Inc()
			}
			h["Retry-After"] = []string{strconv.Itoa(v.retrySecs)}
			reply.Write(w, http.StatusTooManyRequests, rl.body)
			return
		}
		next.ServeHTTP(w, r)
	})
}

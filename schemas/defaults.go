package schemas

import (
	"maps"
	"math"
	"reflect"
	"slices"
	"time"
)

// Default values filled by ApplyDefaults. Each field's doc comment in
// config.go says the same.
const (
	DefaultMaxIdleConnsPerTarget = 64
	DefaultFailoverMinHealthy    = 1
	DefaultConnectTimeout        = 5 * time.Second
	DefaultRouteTimeout          = 30 * time.Second
	DefaultMaxBodyBytes          = 10 << 20
	DefaultRateLimitMaxKeys      = 100000
	DefaultRedisTimeout          = 50 * time.Millisecond
	DefaultRedisKeyPrefix        = "gitgate:ratelimit:"
	DefaultHealthInterval        = 10 * time.Second
	DefaultHealthTimeout         = 2 * time.Second
	DefaultBaseEjection          = 30 * time.Second
	DefaultMaxEjection           = 5 * time.Minute
	DefaultBackoffBase           = 25 * time.Millisecond
	DefaultBackoffMax            = 250 * time.Millisecond
	DefaultDiscoveryMinInterval  = time.Second
	DefaultDiscoveryMaxInterval  = 5 * time.Minute

	DefaultSafetyBakeWindow         = 2 * time.Minute
	DefaultSafetyCheckInterval      = 5 * time.Second
	DefaultSafetyBreaches           = 2
	DefaultSafetyMinRequests        = 100
	DefaultSafetyErrorRatio         = 0.05
	DefaultSafetyErrorRatioIncrease = 0.02
	DefaultSafetyLatencyP99Factor   = 2.0
	DefaultSafetyLatencyP99Margin   = 50 * time.Millisecond
)

// ApplyDefaults fills every unset field that has a documented default. It is
// idempotent: applying it to a defaulted config changes nothing, so the
// gateway may call it on a bundle without changing the bundle's digest.
func (c *Config) ApplyDefaults() {
	for name, u := range c.Upstreams {
		u.applyDefaults()
		c.Upstreams[name] = u
	}
	for name, r := range c.Routes {
		r.applyDefaults()
		c.Routes[name] = r
	}
	for name, p := range c.Policies {
		p.applyDefaults()
		c.Policies[name] = p
	}
	if c.Safety != nil {
		c.Safety.applyDefaults()
	}
}

// applyDefaults fills the top-level safety section. A route's own safety
// section is left as written: its unset fields take the top-level values
// (Resolve), not the defaults.
func (s *Safety) applyDefaults() {
	setDur(&s.BakeWindow, DefaultSafetyBakeWindow)
	setDur(&s.CheckInterval, min(DefaultSafetyCheckInterval, s.BakeWindow.D()))
	setInt(&s.Breaches, DefaultSafetyBreaches)
	s.SafetyRule.fill(SafetyRule{
		MinRequests:        DefaultSafetyMinRequests,
		ErrorRatio:         DefaultSafetyErrorRatio,
		ErrorRatioIncrease: DefaultSafetyErrorRatioIncrease,
		LatencyP99Factor:   DefaultSafetyLatencyP99Factor,
		LatencyP99Margin:   Duration(DefaultSafetyLatencyP99Margin),
		ErrorStatuses:      []string{ErrorClass5xx},
		Action:             SafetyRollback,
	})
}

// fill sets every unset field of r to d's.
func (r *SafetyRule) fill(d SafetyRule) {
	setInt(&r.MinRequests, d.MinRequests)
	if r.ErrorRatio == 0 {
		r.ErrorRatio = d.ErrorRatio
	}
	if r.ErrorRatioIncrease == 0 {
		r.ErrorRatioIncrease = d.ErrorRatioIncrease
	}
	if r.LatencyP99Factor == 0 {
		r.LatencyP99Factor = d.LatencyP99Factor
	}
	setDur(&r.LatencyP99Margin, d.LatencyP99Margin.D())
	if len(r.ErrorStatuses) == 0 {
		r.ErrorStatuses = slices.Clone(d.ErrorStatuses)
	}
	setStr(&r.Action, d.Action)
}

// SafetyEnabled reports whether the config asks for a verdict after each
// apply: it has a top-level safety section or a route has one.
func (c *Config) SafetyEnabled() bool {
	if c.Safety != nil {
		return true
	}
	for _, r := range c.Routes {
		if r.Safety != nil {
			return true
		}
	}
	return false
}

// SafetySettings returns the top-level safety section with its defaults
// filled (the defaults alone when the config has none).
func (c *Config) SafetySettings() Safety {
	var s Safety
	if c.Safety != nil {
		s = *c.Safety
		s.ErrorStatuses = slices.Clone(s.ErrorStatuses)
	}
	s.applyDefaults()
	return s
}

// SafetyFor returns the thresholds of route name: its own safety section,
// with unset fields taken from the top-level section and then from the
// defaults.
func (c *Config) SafetyFor(name string) SafetyRule {
	top := c.SafetySettings()
	var r SafetyRule
	if rt, ok := c.Routes[name]; ok && rt.Safety != nil {
		r = *rt.Safety
		r.ErrorStatuses = slices.Clone(r.ErrorStatuses)
	}
	r.fill(top.SafetyRule)
	return r
}

func setDur(d *Duration, v time.Duration) {
	if *d == 0 {
		*d = Duration(v)
	}
}

func setInt(i *int, v int) {
	if *i == 0 {
		*i = v
	}
}

func setStr(s *string, v string) {
	if *s == "" {
		*s = v
	}
}

func (u *Upstream) applyDefaults() {
	setStr(&u.Balance, BalanceRoundRobin)
	setStr(&u.Protocol, ProtocolHTTP1)
	if u.Balance == BalanceHash && u.HashOn == nil {
		u.HashOn = &HashOn{ClientIP: true}
	}
	setInt(&u.MaxIdleConnsPerTarget, DefaultMaxIdleConnsPerTarget)
	setDur(&u.ConnectTimeout, DefaultConnectTimeout)
	if t := u.TLS; t != nil {
		setStr(&t.MinVersion, TLSVersion12)
	}
	if f := u.Failover; f != nil {
		setInt(&f.MinHealthy, DefaultFailoverMinHealthy)
	}
	if h := u.HealthCheck; h != nil {
		setStr(&h.Path, "/healthz")
		setDur(&h.Interval, DefaultHealthInterval)
		// A probe never outlives the interval: a short interval
		// shortens the default timeout.
		setDur(&h.Timeout, min(DefaultHealthTimeout, h.Interval.D()))
		setInt(&h.HealthyThreshold, 2)
		setInt(&h.UnhealthyThreshold, 3)
	}
	if o := u.OutlierDetection; o != nil {
		setInt(&o.ConsecutiveFailures, 5)
		setDur(&o.BaseEjection, DefaultBaseEjection)
		setDur(&o.MaxEjection, DefaultMaxEjection)
	}
	if d := u.Discovery; d != nil {
		setDur(&d.MinInterval, DefaultDiscoveryMinInterval)
		setDur(&d.MaxInterval, max(DefaultDiscoveryMaxInterval, d.MinInterval.D()))
	}
	if b := u.CircuitBreaker; b != nil {
		setInt(&b.ConsecutiveFailures, 5)
		setInt(&b.MinRequests, 20)
		setDur(&b.OpenDuration, 30*time.Second)
		setInt(&b.HalfOpenRequests, 1)
	}
}

func (r *Route) applyDefaults() {
	setStr(&r.Match.Path, "/")
	setStr(&r.Match.PathType, PathPrefix)
	setDur(&r.Timeout, DefaultRouteTimeout)
	if r.MaxBodyBytes == 0 {
		r.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if r.Upgrades == nil {
		r.Upgrades = []string{UpgradeWebSocket}
	}
	if r.Redirect != nil {
		r.Redirect.applyDefaults()
	}
	if r.DirectResponse != nil {
		r.DirectResponse.applyDefaults()
	}
	if r.Compress != nil {
		r.Compress.applyDefaults()
	}
	if r.Cache != nil {
		r.Cache.applyDefaults()
	}
	if rt := r.Retries; rt != nil {
		setInt(&rt.Attempts, 2)
		setDur(&rt.BackoffBase, DefaultBackoffBase)
		setDur(&rt.BackoffMax, DefaultBackoffMax)
		if len(rt.On) == 0 {
			rt.On = []string{RetryConnectFailure, RetryReset, Retry502, Retry503, Retry504}
		}
		setInt(&rt.BudgetPercent, 20)
		setInt(&rt.MinRetriesPerSecond, 3)
	}
}

// defaulter is implemented by the settings of a policy kind that has
// defaults.
type defaulter interface{ applyDefaults() }

func (p *Policy) applyDefaults() {
	if _, spec := p.Spec(); spec != nil {
		if d, ok := spec.(defaulter); ok {
			d.applyDefaults()
		}
	}
}

func (rl *RateLimit) applyDefaults() {
	setDur(&rl.Per, time.Second)
	if rl.Burst == 0 {
		rl.Burst = max(1, int(math.Ceil(rl.Rate)))
	}
	setStr(&rl.Key, "client_ip")
	setInt(&rl.MaxKeys, DefaultRateLimitMaxKeys)
	setStr(&rl.Store, RateLimitStoreLocal)
	if rl.Store == RateLimitStoreRedis {
		setStr(&rl.OnStoreError, OnStoreErrorLocal)
	}
	if rl.Redis != nil {
		r := *rl.Redis // a copy: WithDefaults clones the policy shallowly
		setDur(&r.Timeout, DefaultRedisTimeout)
		setStr(&r.KeyPrefix, DefaultRedisKeyPrefix)
		rl.Redis = &r
	}
}

// defaultsLike sets rl to the defaults of a rate limit with other's rate,
// which the burst's default follows, and no rate of its own.
func (rl *RateLimit) defaultsLike(other any) {
	o := other.(*RateLimit)
	*rl = RateLimit{Rate: o.Rate, Store: o.Store}
	if o.Redis != nil {
		rl.Redis = &RedisStore{}
	}
	rl.applyDefaults()
	rl.Rate = 0
	rl.Store = RateLimitStoreLocal
}

// defaultsLike sets j to the defaults of a jwt policy like other: the
// refresh interval's default exists only with other's jwksURL.
func (j *JWT) defaultsLike(other any) {
	*j = JWT{JWKSURL: other.(*JWT).JWKSURL}
	j.applyDefaults()
	j.JWKSURL = ""
}

func (k *APIKey) applyDefaults() {
	setStr(&k.In, "header")
	setStr(&k.Name, "X-API-Key")
}

func (j *JWT) applyDefaults() {
	setStr(&j.Header, "Authorization")
	setDur(&j.Leeway, 30*time.Second)
	if j.JWKSURL != "" {
		setDur(&j.JWKSRefresh, 5*time.Minute)
	}
	if j.RequireExp == nil {
		j.RequireExp = new(true)
	}
}

func (c *CORS) applyDefaults() {
	if len(c.AllowMethods) == 0 {
		c.AllowMethods = []string{"GET", "HEAD", "POST"}
	}
}

// Defaults returns a policy of p's kind holding only the defaults that
// ApplyDefaults would fill in for p: a diff leaves out a field equal to
// its default. Required fields stay unset.
func (p Policy) Defaults() Policy {
	name, spec := p.Spec()
	if spec == nil {
		return Policy{}
	}
	z := reflect.New(reflect.TypeOf(spec).Elem()).Interface()
	if d, ok := z.(interface{ defaultsLike(any) }); ok {
		d.defaultsLike(spec)
	} else if d, ok := z.(defaulter); ok {
		d.applyDefaults()
	}
	out, _ := WithSpec(name, z)
	return out
}

// WithDefaults returns a copy of c with ApplyDefaults applied, leaving c
// (and the digest of a bundle holding it) untouched: the maps and every
// struct ApplyDefaults writes to are copied.
func (c *Config) WithDefaults() Config {
	out := Config{
		Upstreams: maps.Clone(c.Upstreams),
		Routes:    maps.Clone(c.Routes),
		Policies:  maps.Clone(c.Policies),
	}
	for k, u := range out.Upstreams {
		u.Discovery = clonePtr(u.Discovery)
		u.HealthCheck = clonePtr(u.HealthCheck)
		u.OutlierDetection = clonePtr(u.OutlierDetection)
		u.CircuitBreaker = clonePtr(u.CircuitBreaker)
		u.HashOn = clonePtr(u.HashOn)
		u.TLS = clonePtr(u.TLS)
		u.Failover = clonePtr(u.Failover)
		out.Upstreams[k] = u
	}
	for k, r := range out.Routes {
		r.Retries = clonePtr(r.Retries)
		r.Redirect, r.DirectResponse, r.Compress = clonePtr(r.Redirect), clonePtr(r.DirectResponse), clonePtr(r.Compress)
		r.Cache = clonePtr(r.Cache)
		out.Routes[k] = r
	}
	if c.Safety != nil {
		s := *c.Safety
		s.ErrorStatuses = slices.Clone(s.ErrorStatuses)
		out.Safety = &s
	}
	for k, p := range out.Policies {
		out.Policies[k] = p.clone()
	}
	if out.Upstreams == nil {
		out.Upstreams = map[string]Upstream{}
	}
	if out.Routes == nil {
		out.Routes = map[string]Route{}
	}
	out.ApplyDefaults()
	return out
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// UpgradeWebSocket is the protocol Route.Upgrades allows by default.
const UpgradeWebSocket = "websocket"

package schemas

import (
	"math"
	"time"
)

// Default values filled by ApplyDefaults. Each field's doc comment in
// config.go says the same.
const (
	DefaultMaxIdleConnsPerTarget = 64
	DefaultConnectTimeout        = 5 * time.Second
	DefaultRouteTimeout          = 30 * time.Second
	DefaultMaxBodyBytes          = 10 << 20
	DefaultRateLimitMaxKeys      = 100000
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
	if u.Balance == BalanceHash && u.HashOn == nil {
		u.HashOn = &HashOn{ClientIP: true}
	}
	setInt(&u.MaxIdleConnsPerTarget, DefaultMaxIdleConnsPerTarget)
	setDur(&u.ConnectTimeout, DefaultConnectTimeout)
	if h := u.HealthCheck; h != nil {
		setStr(&h.Path, "/healthz")
		setDur(&h.Interval, 10*time.Second)
		setDur(&h.Timeout, 2*time.Second)
		setInt(&h.HealthyThreshold, 2)
		setInt(&h.UnhealthyThreshold, 3)
	}
	if o := u.OutlierDetection; o != nil {
		setInt(&o.ConsecutiveFailures, 5)
		setDur(&o.BaseEjection, 30*time.Second)
		setDur(&o.MaxEjection, 5*time.Minute)
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
	if rt := r.Retries; rt != nil {
		setInt(&rt.Attempts, 2)
		setDur(&rt.BackoffBase, 25*time.Millisecond)
		setDur(&rt.BackoffMax, 250*time.Millisecond)
		if len(rt.On) == 0 {
			rt.On = []string{RetryConnectFailure, RetryReset, Retry502, Retry503, Retry504}
		}
		setInt(&rt.BudgetPercent, 20)
		setInt(&rt.MinRetriesPerSecond, 3)
	}
}

func (p *Policy) applyDefaults() {
	if rl := p.RateLimit; rl != nil {
		setDur(&rl.Per, time.Second)
		if rl.Burst == 0 {
			rl.Burst = max(1, int(math.Ceil(rl.Rate)))
		}
		setStr(&rl.Key, "client_ip")
		setInt(&rl.MaxKeys, DefaultRateLimitMaxKeys)
	}
	if k := p.APIKey; k != nil {
		setStr(&k.In, "header")
		setStr(&k.Name, "X-API-Key")
	}
	if j := p.JWT; j != nil {
		setStr(&j.Header, "Authorization")
		setDur(&j.Leeway, 30*time.Second)
		if j.RequireExp == nil {
			j.RequireExp = new(true)
		}
	}
	if c := p.CORS; c != nil && len(c.AllowMethods) == 0 {
		c.AllowMethods = []string{"GET", "HEAD", "POST"}
	}
}

// UpgradeWebSocket is the protocol Route.Upgrades allows by default.
const UpgradeWebSocket = "websocket"

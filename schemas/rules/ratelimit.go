package rules

import (
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/gitgate/gitgate/schemas"
)

// MaxRedisTimeout bounds rateLimit.redis.timeout: a decision waits for
// Redis on the request path, so a long timeout is a long stall for every
// request while Redis is unreachable.
const MaxRedisTimeout = 5 * time.Second

// RateLimit checks the store settings of a rateLimit policy: store
// "redis" needs a redis server, and its settings are refused with store
// "local", which would silently ignore them.
func RateLimit(rl schemas.RateLimit) []Violation {
	var out []Violation
	switch rl.Store {
	case "", schemas.RateLimitStoreLocal:
		if rl.Redis != nil {
			out = append(out, violation(".redis", "redis is used only with store: redis"))
		}
		if rl.OnStoreError != "" {
			out = append(out, violation(".onStoreError", "onStoreError is used only with store: redis"))
		}
		return out
	case schemas.RateLimitStoreRedis:
	default:
		return append(out, violation(".store", "store must be \"local\" or \"redis\", got %q", rl.Store))
	}
	switch rl.OnStoreError {
	case "", schemas.OnStoreErrorLocal, schemas.OnStoreErrorAllow:
	default:
		out = append(out, violation(".onStoreError", "onStoreError must be \"local\" (this gateway's own bucket) or \"allow\" (fail open), got %q", rl.OnStoreError))
	}
	if rl.Redis == nil {
		return append(out, violation(".redis", "store: redis needs redis: {address: HOST:PORT}"))
	}
	r := rl.Redis
	if err := RedisAddress(r.Address); err != nil {
		out = append(out, Violation{Field: ".redis.address", Message: err.Error()})
	}
	for _, ref := range []struct {
		field string
		ref   *schemas.SecretRef
	}{{".redis.usernameRef", r.UsernameRef}, {".redis.passwordRef", r.PasswordRef}} {
		if ref.ref != nil {
			out = append(out, at(ref.field, SecretRef(*ref.ref))...)
		}
	}
	if r.UsernameRef != nil && r.PasswordRef == nil {
		out = append(out, violation(".redis.usernameRef", "usernameRef needs passwordRef"))
	}
	if r.DB < 0 {
		out = append(out, violation(".redis.db", "db must be 0 or more, got %d", r.DB))
	}
	if r.Timeout < 0 || r.Timeout.D() > MaxRedisTimeout {
		out = append(out, violation(".redis.timeout", "timeout is %s; it must be positive and at most %s (each request waits for it while Redis is unreachable)", r.Timeout.D(), MaxRedisTimeout))
	}
	if strings.ContainsAny(r.KeyPrefix, " \t\r\n") {
		out = append(out, violation(".redis.keyPrefix", "keyPrefix must not contain white space"))
	}
	if t := r.TLS; t != nil && t.CARef != nil {
		out = append(out, at(".redis.tls.caRef", SecretRef(*t.CARef))...)
	}
	return out
}

// RedisAddress checks a Redis server address: host:port with a port
// between 1 and 65535.
func RedisAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return fail("address must be HOST:PORT such as \"redis.internal:6379\", got %q", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fail("address %q has no valid port (1-65535)", addr)
	}
	return nil
}

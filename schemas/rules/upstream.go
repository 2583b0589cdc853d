package rules

import (
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/gitgate/gitgate/schemas"
)

// Upstream checks the rules of one upstream that CUE cannot express:
// usable target URLs (or one dns:// or srv:// target), hashOn with the hash balancer only and with exactly
// one attribute, a health-check timeout within its interval and a base
// ejection within the maximum; for a failover upstream, no targets and
// none of the options of its groups (Failover checks the groups). u may be
// defaulted or not.
func Upstream(u schemas.Upstream) []Violation {
	if u.Failover != nil {
		return failoverOnly(u)
	}
	var out []Violation
	for i, t := range u.Targets {
		if IsDiscovery(t) {
			continue // checked by discovery
		}
		if err := Target(t); err != nil {
			out = append(out, at(fmt.Sprintf(".targets[%d]", i), err)...)
		}
	}
	out = append(out, discovery(u)...)
	out = append(out, protocol(u)...)
	if u.HashOn != nil {
		if u.Balance != schemas.BalanceHash {
			out = append(out, violation(".hashOn", "hashOn is used only with balance: hash"))
		}
		out = append(out, at(".hashOn", HashOn(*u.HashOn))...)
	}
	// Relations between fields are checked on the values in effect, an
	// unset field standing for its default: the agent checks the config as
	// written, the gateway the bundle with defaults applied, and both must
	// agree.
	if h := u.HealthCheck; h != nil && h.Timeout != 0 {
		if interval := or(h.Interval, schemas.DefaultHealthInterval); h.Timeout.D() > interval {
			out = append(out, violation(".healthCheck.timeout", "timeout %s is longer than the interval %s", h.Timeout.D(), interval))
		}
	}
	if o := u.OutlierDetection; o != nil {
		if base, most := or(o.BaseEjection, schemas.DefaultBaseEjection), or(o.MaxEjection, schemas.DefaultMaxEjection); base > most {
			out = append(out, violation(".outlierDetection.maxEjection", "maxEjection %s is shorter than baseEjection %s", most, base))
		}
	}
	if u.TLS != nil {
		for _, v := range UpstreamTLS(*u.TLS) {
			v.Field = ".tls" + v.Field
			out = append(out, v)
		}
	}
	return out
}

// UpstreamTLS checks an upstream's tls section: well-formed references, a
// client certificate and key set together. (config.cue limits minVersion
// to "1.2" and "1.3"; the gateway refuses other values when it builds the
// TLS configuration.) Whether the references resolve and parse only the gateway can tell.
func UpstreamTLS(t schemas.UpstreamTLS) []Violation {
	var out []Violation
	for _, r := range []struct {
		path string
		ref  *schemas.SecretRef
	}{{".caRef", t.CARef}, {".clientCertRef", t.ClientCertRef}, {".clientKeyRef", t.ClientKeyRef}} {
		if r.ref == nil {
			continue
		}
		if err := SecretRef(*r.ref); err != nil {
			out = append(out, at(r.path, err)...)
		}
	}
	if (t.ClientCertRef == nil) != (t.ClientKeyRef == nil) {
		out = append(out, violation(".clientKeyRef", "clientCertRef and clientKeyRef are set together"))
	}
	return out
}

// protocol checks that the protocol is known and that its targets match
// it: h2 runs over TLS (https:// targets), h2c without (http:// targets).
// A gRPC health check needs HTTP/2.
func protocol(u schemas.Upstream) []Violation {
	var want string
	switch u.Protocol {
	case "", schemas.ProtocolHTTP1:
		if u.HealthCheck != nil && u.HealthCheck.GRPC != nil {
			return []Violation{violation(".healthCheck.grpc", "the gRPC health protocol needs protocol h2 or h2c")}
		}
		return nil
	case schemas.ProtocolH2:
		want = "https"
	case schemas.ProtocolH2C:
		want = "http"
	default:
		return []Violation{violation(".protocol", "unknown protocol %q: use http1, h2 or h2c", u.Protocol)}
	}
	var out []Violation
	for i, t := range u.Targets {
		if tu, err := url.Parse(t); err == nil && tu.Scheme != want && (tu.Scheme == "http" || tu.Scheme == "https") {
			out = append(out, violation(fmt.Sprintf(".targets[%d]", i), "protocol %s needs %s:// targets, not %q", u.Protocol, want, t))
		}
	}
	return out
}

// Target reports why t is not a usable upstream base URL: it must parse,
// be http:// or https://, name a host, carry no credentials (they would be
// logged and sent to every path), have a port in 1..65535 if any, and no
// query or fragment.
func Target(t string) error {
	u, err := url.Parse(t)
	if err != nil {
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err // its text does not repeat the URL
		}
		return fail("target %q is not a URL: %v", t, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fail("target %q must be an http:// or https:// URL", t)
	}
	if u.Hostname() == "" {
		return fail("target %q has no host", t)
	}
	if u.User != nil {
		return fail("target must not carry credentials: use requestHeaders or a policy")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fail("target %q has port %s, outside 1..65535", t, p)
		}
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fail("target %q must not have a query or fragment", t)
	}
	return nil
}

// HashOn reports a hashOn that does not name exactly one attribute.
func HashOn(h schemas.HashOn) error {
	if n := count(h.Header != "", h.Cookie != "", h.ClientIP); n != 1 {
		return fail("set exactly one of header, cookie or clientIP: true (%d set)", n)
	}
	return nil
}

// or returns d, or def when d is unset.
func or(d schemas.Duration, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d.D()
}

func count(set ...bool) int {
	n := 0
	for _, s := range set {
		if s {
			n++
		}
	}
	return n
}

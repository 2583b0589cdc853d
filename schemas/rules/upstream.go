package rules

import (
	"fmt"
	"net/url"
	"strconv"

	"github.com/gitgate/gitgate/schemas"
)

// Upstream checks the rules of one upstream that CUE cannot express:
// usable target URLs, hashOn with the hash balancer only and with exactly
// one attribute, a health-check timeout within its interval and a base
// ejection within the maximum. u may be defaulted or not.
func Upstream(u schemas.Upstream) []Violation {
	var out []Violation
	for i, t := range u.Targets {
		if err := Target(t); err != nil {
			out = append(out, at(fmt.Sprintf(".targets[%d]", i), err)...)
		}
	}
	if u.HashOn != nil {
		if u.Balance != schemas.BalanceHash {
			out = append(out, violation(".hashOn", "hashOn is used only with balance: hash"))
		}
		out = append(out, at(".hashOn", HashOn(*u.HashOn))...)
	}
	if h := u.HealthCheck; h != nil && h.Interval != 0 && h.Timeout != 0 && h.Timeout > h.Interval {
		out = append(out, violation(".healthCheck.timeout", "timeout %s is longer than the interval %s", h.Timeout.D(), h.Interval.D()))
	}
	if o := u.OutlierDetection; o != nil && o.BaseEjection != 0 && o.MaxEjection != 0 && o.BaseEjection > o.MaxEjection {
		out = append(out, violation(".outlierDetection.maxEjection", "maxEjection %s is shorter than baseEjection %s", o.MaxEjection.D(), o.BaseEjection.D()))
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

func count(set ...bool) int {
	n := 0
	for _, s := range set {
		if s {
			n++
		}
	}
	return n
}

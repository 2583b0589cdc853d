package safety

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gitgate/gitgate/gateway/admin/client"
	"github.com/gitgate/gitgate/schemas"
)

// Outcome is the kind of a verdict.
type Outcome string

// Outcomes of a Verdict and a RouteVerdict.
const (
	// OK: enough traffic and no threshold crossed.
	OK Outcome = "ok"
	// Breach: a threshold crossed; Reason quotes the numbers.
	Breach Outcome = "breach"
	// Insufficient: too few requests for any verdict; never a rollback.
	Insufficient Outcome = "insufficient traffic"
)

// Input is what one check judges.
type Input struct {
	// Config is the new version's config: its safety thresholds.
	Config *schemas.Config
	// Current is the new version's traffic since it was applied.
	Current *client.Traffic
	// Previous is the traffic of the version it replaced, nil when the
	// gateway has none (a restart, or a first apply): then only the
	// absolute thresholds and the backend comparison apply.
	Previous *client.Traffic
	// Bounds are the latency buckets' upper bounds in seconds.
	Bounds []float64
	// Routes limits the verdict to these routes (the ones the change
	// touched); nil judges every route of Current.
	Routes map[string]bool
}

// Verdict is the outcome of one check.
type Verdict struct {
	Outcome Outcome `json:"outcome"`
	// Reason is the first breaching route's reason, or why the traffic
	// is insufficient; empty when ok.
	Reason string `json:"reason,omitempty"`
	// Action is the breaching route's action ("rollback" when any
	// breaching route asks for it, else "report"); empty unless a breach.
	Action string `json:"action,omitempty"`
	// Routes are the judged routes, by name.
	Routes []RouteVerdict `json:"routes,omitempty"`
}

// RouteVerdict is the verdict on one route, with its live numbers.
type RouteVerdict struct {
	Route    string  `json:"route"`
	Outcome  Outcome `json:"outcome"`
	Reason   string  `json:"reason,omitempty"`
	Requests uint64  `json:"requests"`
	Errors   uint64  `json:"errors"`
	// ErrorRatio is Errors / Requests (0 without requests).
	ErrorRatio float64 `json:"errorRatio"`
	// BaselineRatio is the previous version's error ratio on the route; -1
	// without a baseline.
	BaselineRatio float64 `json:"baselineRatio"`
	// P99 and BaselineP99 are the upper bounds of the latency buckets
	// holding the 99th percentile (0: no baseline, or no requests).
	P99         time.Duration `json:"p99"`
	BaselineP99 time.Duration `json:"baselineP99,omitempty"`
	// Kind says what breached: "errors" or "latency"; empty otherwise.
	Kind   string `json:"kind,omitempty"`
	Action string `json:"action,omitempty"`
}

// Judge returns the verdict of one check. It is pure: the same input gives
// the same verdict.
func Judge(in Input) Verdict {
	var v Verdict
	if in.Current == nil || in.Config == nil {
		return Verdict{Outcome: Insufficient, Reason: "no traffic report from the gateway"}
	}
	judged, short := 0, ""
	for _, name := range slices.Sorted(maps.Keys(in.Current.Routes)) {
		if in.Routes != nil && !in.Routes[name] {
			continue
		}
		if r, ok := in.Config.Routes[name]; ok && (r.Redirect != nil || r.DirectResponse != nil) {
			// The gateway answers it as the config says (a maintenance
			// page's 503 is the point of it): nothing upstream to regress.
			continue
		}
		var prev *client.RouteTraffic
		if in.Previous != nil {
			if p, ok := in.Previous.Routes[name]; ok {
				prev = &p
			}
		}
		rv := judgeRoute(name, in.Config.SafetyFor(name), in.Current.Routes[name], prev, in.Bounds)
		v.Routes = append(v.Routes, rv)
		switch rv.Outcome {
		case Breach:
			if v.Outcome != Breach {
				v.Outcome, v.Reason = Breach, rv.Reason
			}
			if v.Action != schemas.SafetyRollback {
				v.Action = rv.Action
			}
		case OK:
			judged++
		case Insufficient:
			if short == "" {
				short = rv.Reason
			}
		}
	}
	switch {
	case v.Outcome == Breach:
	case judged > 0:
		v.Outcome = OK
	default:
		v.Outcome, v.Reason = Insufficient, short
		if short == "" {
			v.Reason = "no traffic on the routes the change touched"
		}
	}
	return v
}

// judgeRoute judges one route: its errors and latency against the previous
// version's on the same route, then each backend against the route's other
// backends in the same window.
func judgeRoute(name string, rule schemas.SafetyRule, cur client.RouteTraffic, prev *client.RouteTraffic, bounds []float64) RouteVerdict {
	need := uint64(rule.MinRequests)
	rv := RouteVerdict{Route: name, Requests: cur.Requests, Errors: errorsOf(cur.Counts, rule), BaselineRatio: -1, P99: p99(cur.Counts, bounds)}
	rv.ErrorRatio = ratio(rv.Errors, rv.Requests)
	if cur.Requests < need {
		rv.Outcome = Insufficient
		rv.Reason = fmt.Sprintf("%s of %s requests needed on route %s", count(cur.Requests), count(need), name)
		return rv
	}
	rv.Outcome = OK
	where := "on route " + name
	if prev != nil && prev.Requests >= need {
		rv.BaselineRatio = ratio(errorsOf(prev.Counts, rule), prev.Requests)
		rv.BaselineP99 = p99(prev.Counts, bounds)
		if errorBreach(rv.ErrorRatio, rv.BaselineRatio, rule) {
			return rv.breach(rule, "errors", fmt.Sprintf("%s %s over %s requests %s, baseline %s", classes(rule), pct(rv.ErrorRatio), count(cur.Requests), where, pct(rv.BaselineRatio)))
		}
		if latencyBreach(rv.P99, rv.BaselineP99, rule) {
			return rv.breach(rule, "latency", fmt.Sprintf("p99 latency %s over %s requests %s, baseline %s", showP99(rv.P99, bounds), count(cur.Requests), where, showP99(rv.BaselineP99, bounds)))
		}
	} else if errorBreach(rv.ErrorRatio, -1, rule) {
		return rv.breach(rule, "errors", fmt.Sprintf("%s %s over %s requests %s, no baseline", classes(rule), pct(rv.ErrorRatio), count(cur.Requests), where))
	}
	// A split route: each backend against the others in the same window.
	if len(cur.Backends) < 2 {
		return rv
	}
	for _, up := range slices.Sorted(maps.Keys(cur.Backends)) {
		b := cur.Backends[up]
		var rest client.Counts
		for other, o := range cur.Backends {
			if other != up {
				rest = sum(rest, o)
			}
		}
		if b.Requests < need || rest.Requests < need {
			continue
		}
		br, sr := ratio(errorsOf(b, rule), b.Requests), ratio(errorsOf(rest, rule), rest.Requests)
		if errorBreach(br, sr, rule) {
			return rv.breach(rule, "errors", fmt.Sprintf("%s %s over %s requests %s backend %s, other backends %s", classes(rule), pct(br), count(b.Requests), where, up, pct(sr)))
		}
		bp, sp := p99(b, bounds), p99(rest, bounds)
		if latencyBreach(bp, sp, rule) {
			return rv.breach(rule, "latency", fmt.Sprintf("p99 latency %s over %s requests %s backend %s, other backends %s", showP99(bp, bounds), count(b.Requests), where, up, showP99(sp, bounds)))
		}
	}
	return rv
}

func (rv RouteVerdict) breach(rule schemas.SafetyRule, kind, reason string) RouteVerdict {
	rv.Outcome, rv.Kind, rv.Reason, rv.Action = Breach, kind, reason, rule.Action
	return rv
}

// errorBreach: above the absolute ratio and, with a baseline (>= 0), more
// than the allowed increase above it.
func errorBreach(r, base float64, rule schemas.SafetyRule) bool {
	if r <= rule.ErrorRatio {
		return false
	}
	return base < 0 || r > base+rule.ErrorRatioIncrease
}

// latencyBreach: the p99 grew past factor times the baseline's and by more
// than the margin.
func latencyBreach(p, base time.Duration, rule schemas.SafetyRule) bool {
	if base <= 0 || p <= 0 {
		return false
	}
	return float64(p) > rule.LatencyP99Factor*float64(base) && p-base > rule.LatencyP99Margin.D()
}

// errorsOf counts the responses of c that rule counts as errors. An
// upstream's 429 is never one; a policy's refusals are not in c at all.
func errorsOf(c client.Counts, rule schemas.SafetyRule) uint64 {
	var n uint64
	for _, s := range rule.ErrorStatuses {
		switch s {
		case schemas.ErrorClass5xx:
			n += c.Responses.Class5xx
		case schemas.ErrorClass4xx:
			n += c.Responses.Class4xx - min(c.Responses.Status429, c.Responses.Class4xx)
		}
	}
	return n
}

// p99 returns the upper bound of the latency bucket that holds the 99th
// percentile of c; past the last bound it is twice the last bound (the
// histogram says no more). 0 without requests.
func p99(c client.Counts, bounds []float64) time.Duration {
	var total uint64
	for _, n := range c.Latency {
		total += n
	}
	if total == 0 || len(bounds) == 0 {
		return 0
	}
	rank := uint64(math.Ceil(0.99 * float64(total)))
	var seen uint64
	for i, n := range c.Latency {
		seen += n
		if seen >= rank {
			if i < len(bounds) {
				return time.Duration(bounds[i] * float64(time.Second))
			}
			break
		}
	}
	return time.Duration(2 * bounds[len(bounds)-1] * float64(time.Second))
}

func sum(a, b client.Counts) client.Counts {
	a.Requests += b.Requests
	a.Responses.Class4xx += b.Responses.Class4xx
	a.Responses.Class5xx += b.Responses.Class5xx
	a.Responses.Status429 += b.Responses.Status429
	if len(a.Latency) < len(b.Latency) {
		a.Latency = append(a.Latency, make([]uint64, len(b.Latency)-len(a.Latency))...)
	} else {
		a.Latency = slices.Clone(a.Latency)
	}
	for i, n := range b.Latency {
		a.Latency[i] += n
	}
	return a
}

func ratio(n, d uint64) float64 {
	if d == 0 {
		return 0
	}
	return float64(n) / float64(d)
}

func pct(r float64) string { return strconv.FormatFloat(100*r, 'f', 1, 64) + "%" }

func classes(rule schemas.SafetyRule) string { return strings.Join(rule.ErrorStatuses, "+") }

// showP99 reads "<= 5ms", or "> 10s" past the last bucket.
func showP99(d time.Duration, bounds []float64) string {
	if len(bounds) > 0 && d > time.Duration(bounds[len(bounds)-1]*float64(time.Second)) {
		return "> " + time.Duration(bounds[len(bounds)-1]*float64(time.Second)).String()
	}
	return "<= " + d.String()
}

// count writes n with thousands separators: 1,240.
func count(n uint64) string {
	s := strconv.FormatUint(n, 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Streak is the consecutive-breach state between checks.
type Streak struct {
	// Breaches is the number of consecutive checks that found a breach.
	Breaches int `json:"breaches"`
}

// Next returns the streak after verdict v: one more after a breach, zero
// after ok or insufficient traffic.
func (s Streak) Next(v Verdict) Streak {
	if v.Outcome != Breach {
		return Streak{}
	}
	return Streak{Breaches: s.Breaches + 1}
}

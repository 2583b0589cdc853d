package runtime

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/gitgate/gitgate/schemas"
)

// regionTarget is one target of a failover group: it answers its group's
// name, its health check fails while sick, and every request fails with
// 502 while broken.
type regionTarget struct {
	srv          *httptest.Server
	sick, broken atomic.Bool
}

func newRegionTarget(t *testing.T, group string) *regionTarget {
	t.Helper()
	rt := &regionTarget{}
	rt.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/healthz" {
			if rt.sick.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			return
		}
		if rt.broken.Load() {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		w.Header().Set("X-Upstream", group)
		_, _ = io.WriteString(w, group)
	}))
	t.Cleanup(rt.srv.Close)
	return rt
}

// syncBuffer is a log sink safe for the gateway's goroutines.
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

// fastHealth is a quick health check that still tolerates a loaded
// machine: a probe may take 200ms, and one slow probe marks nothing down.
func fastHealth() *schemas.HealthCheck {
	return &schemas.HealthCheck{Path: "/healthz", Interval: schemas.Duration(200 * time.Millisecond), Timeout: schemas.Duration(200 * time.Millisecond), HealthyThreshold: 1, UnhealthyThreshold: 2}
}

// TestFailoverTiers runs a failover upstream "api" over groups eu
// (primary) and us, breaks eu one way or another, and checks where traffic
// goes, what status and metrics say and what is logged, then heals eu and
// checks that traffic fails back.
func TestFailoverTiers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		euTargets  int
		minHealthy int
		eu         func(u *schemas.Upstream) // eu's checks
		breakEU    func(ts []*regionTarget)
		healEU     func(ts []*regionTarget)
		// ejected: eu is taken out on real traffic (outlier detection,
		// breaker), so one request sees eu's failure before traffic moves.
		ejected bool
	}{
		{
			name: "primary down by health check", euTargets: 1,
			eu:      func(u *schemas.Upstream) { u.HealthCheck = fastHealth() },
			breakEU: func(ts []*regionTarget) { ts[0].sick.Store(true) },
			healEU:  func(ts []*regionTarget) { ts[0].sick.Store(false) },
		},
		{
			name: "primary under minHealthy", euTargets: 2, minHealthy: 2,
			eu:      func(u *schemas.Upstream) { u.HealthCheck = fastHealth() },
			breakEU: func(ts []*regionTarget) { ts[1].sick.Store(true) }, // one of two still healthy
			healEU:  func(ts []*regionTarget) { ts[1].sick.Store(false) },
		},
		{
			name: "primary ejected by outlier detection", euTargets: 1, ejected: true,
			eu: func(u *schemas.Upstream) {
				u.OutlierDetection = &schemas.OutlierDetection{ConsecutiveFailures: 1, BaseEjection: schemas.Duration(2 * time.Second), MaxEjection: schemas.Duration(2 * time.Second)}
			},
			breakEU: func(ts []*regionTarget) { ts[0].broken.Store(true) },
			healEU:  func(ts []*regionTarget) { ts[0].broken.Store(false) }, // back when the ejection ends
		},
		{
			name: "primary's circuit breaker open", euTargets: 1, ejected: true,
			eu: func(u *schemas.Upstream) {
				u.CircuitBreaker = &schemas.CircuitBreaker{ConsecutiveFailures: 1, OpenDuration: schemas.Duration(2 * time.Second), HalfOpenRequests: 1}
			},
			breakEU: func(ts []*regionTarget) { ts[0].broken.Store(true) },
			healEU:  func(ts []*regionTarget) { ts[0].broken.Store(false) }, // half-open lets a probe through
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var eu []*regionTarget
			var euURLs []string
			for range tt.euTargets {
				rt := newRegionTarget(t, "eu")
				eu = append(eu, rt)
				euURLs = append(euURLs, rt.srv.URL)
			}
			// us has enough targets to qualify: a group under minHealthy
			// takes traffic only when no group has enough.
			var usURLs []string
			for range max(tt.minHealthy, 1) {
				usURLs = append(usURLs, newRegionTarget(t, "us").srv.URL)
			}
			euUp := ups(euURLs...)
			tt.eu(&euUp)
			usUp := ups(usURLs...)
			usUp.HealthCheck = fastHealth()
			logs := &syncBuffer{}
			reg := prometheus.NewRegistry()
			e := newEngine(t, Options{Logger: zerolog.New(logs), Registry: reg})
			cfg := schemas.Config{
				Upstreams: map[string]schemas.Upstream{
					"eu": euUp, "us": usUp,
					"api": {Failover: &schemas.Failover{Groups: []string{"eu", "us"}, MinHealthy: tt.minHealthy}},
				},
				Routes: map[string]schemas.Route{"r": route("/", to("api", 100))},
			}
			mustApply(t, e, cfg)
			srv := front(t, e)
			c := srv.Client()
			status := func() (string, uint64) {
				st := e.Status().Failover["api"]
				return st.Active, st.Changes
			}
			want := func(step, group string) {
				t.Helper()
				for range 5 {
					if code, body, _ := get(t, c, srv.URL+"/", nil); code != 200 || body != group {
						t.Fatalf("%s: got %d %q, want 200 from %s", step, code, body, group)
					}
				}
			}

			want("primary healthy", "eu")
			if a, n := status(); a != "eu" || n != 0 {
				t.Fatalf("status with primary healthy: active %q, %d changes", a, n)
			}

			tt.breakEU(eu)
			if tt.ejected {
				if code, _, _ := get(t, c, srv.URL+"/", nil); code != http.StatusBadGateway {
					t.Fatalf("request that ejects eu: got %d, want eu's 502", code)
				}
			} else {
				eventually(t, "eu marked down", func() bool { a, _ := status(); return a == "us" })
			}
			want("primary down", "us")
			if a, n := status(); a != "us" || n != 1 {
				t.Fatalf("status after failover: active %q, %d changes", a, n)
			}
			if v := gaugeOf(t, reg, "eu"); v != 0 {
				t.Fatalf("gitgate_upstream_failover_active{group=eu} = %v after failover", v)
			}

			// An apply that keeps the upstreams keeps the active group
			// and does not count a change.
			cfg.Routes = map[string]schemas.Route{"r": route("/", to("api", 100)), "r2": route("/two", to("api", 100))}
			mustApply(t, e, cfg)
			if a, n := status(); a != "us" || n != 1 {
				t.Fatalf("status after an apply: active %q, %d changes", a, n)
			}

			tt.healEU(eu)
			eventually(t, "traffic fails back to eu", func() bool {
				_, body, _ := get(t, c, srv.URL+"/", nil)
				return body == "eu"
			})
			want("primary back", "eu")
			if a, n := status(); a != "eu" || n != 2 {
				t.Fatalf("status after failback: active %q, %d changes", a, n)
			}
			if v := gaugeOf(t, reg, "eu"); v != 1 {
				t.Fatalf("gitgate_upstream_failover_active{group=eu} = %v after failback", v)
			}
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			counted := map[string]float64{}
			for _, mf := range mfs {
				if mf.GetName() != "gitgate_upstream_failovers_total" {
					continue
				}
				for _, m := range mf.GetMetric() {
					l := map[string]string{}
					for _, p := range m.GetLabel() {
						l[p.GetName()] = p.GetValue()
					}
					counted[l["from"]+">"+l["to"]] = m.GetCounter().GetValue()
				}
			}
			if counted["eu>us"] != 1 || counted["us>eu"] != 1 {
				t.Fatalf("gitgate_upstream_failovers_total = %v, want eu>us 1 and us>eu 1", counted)
			}
			out := logs.String()
			for _, line := range []string{`"upstream":"api","from":"eu","to":"us"`, `"upstream":"api","from":"us","to":"eu"`} {
				if !strings.Contains(out, line) {
					t.Errorf("no log line with %s in:\n%s", line, out)
				}
			}
		})
	}
}

// gaugeOf returns gitgate_upstream_failover_active for api's group.
func gaugeOf(t *testing.T, reg *prometheus.Registry, group string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "gitgate_upstream_failover_active" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var up, g string
			for _, p := range m.GetLabel() {
				switch p.GetName() {
				case "upstream":
					up = p.GetValue()
				case "group":
					g = p.GetValue()
				}
			}
			if up == "api" && g == group {
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no gitgate_upstream_failover_active{upstream=api,group=%s}", group)
	return 0
}

// TestFailoverRetries checks where a retry of a failed attempt goes: to the
// next group when there is one, within the group when there is not, and
// that without retries the client gets the failure.
func TestFailoverRetries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		attempts int
		eu, us   func(t *testing.T) []string // targets
		want     int
		wantBody string
	}{
		{
			name: "retry moves to the secondary", attempts: 1,
			eu:   func(t *testing.T) []string { return []string{refusedURL(t)} },
			us:   func(t *testing.T) []string { return []string{named(t, "us").URL} },
			want: 200, wantBody: "us",
		},
		{
			name: "retry in the last group stays there on another target", attempts: 1,
			eu: func(t *testing.T) []string { return []string{refusedURL(t)} },
			us: func(t *testing.T) []string { return []string{refusedURL(t), named(t, "us").URL} },
			// eu fails, the retry goes to us, whose first target may fail
			// too: then a second retry stays in us on the other target.
			want: 200, wantBody: "us",
		},
		{
			name: "without retries the client gets the failure", attempts: 0,
			eu:   func(t *testing.T) []string { return []string{refusedURL(t)} },
			us:   func(t *testing.T) []string { return []string{named(t, "us").URL} },
			want: http.StatusBadGateway,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := route("/", to("api", 100))
			if tt.attempts > 0 {
				r.Retries = &schemas.Retries{Attempts: 2, On: []string{schemas.RetryConnectFailure},
					BackoffBase: schemas.Duration(time.Millisecond), BackoffMax: schemas.Duration(time.Millisecond), BudgetPercent: 100, MinRetriesPerSecond: 1000}
			}
			e := newEngine(t, Options{})
			mustApply(t, e, schemas.Config{
				Upstreams: map[string]schemas.Upstream{
					"eu": ups(tt.eu(t)...), "us": ups(tt.us(t)...),
					"api": {Failover: &schemas.Failover{Groups: []string{"eu", "us"}}},
				},
				Routes: map[string]schemas.Route{"r": r},
			})
			srv := front(t, e)
			for i := range 10 {
				code, body, _ := get(t, srv.Client(), srv.URL+"/", nil)
				if code != tt.want || tt.wantBody != "" && body != tt.wantBody {
					t.Fatalf("request %d: got %d %q, want %d %q", i, code, body, tt.want, tt.wantBody)
				}
			}
			// No health check, no outlier detection: eu stays the active
			// group, and each request's first attempt goes there.
			if a := e.Status().Failover["api"].Active; a != "eu" {
				t.Fatalf("active group %q, want eu", a)
			}
		})
	}
}

// TestGeoRoutingByCDNHeader is the README's geo routing example: a route
// matching a CDN's country header sends Europe to a failover upstream
// with eu first, everyone else to one with us first; each still fails
// over to the other region.
func TestGeoRoutingByCDNHeader(t *testing.T) {
	t.Parallel()
	eu, us := newRegionTarget(t, "eu"), newRegionTarget(t, "us")
	euUp, usUp := ups(eu.srv.URL), ups(us.srv.URL)
	euUp.HealthCheck, usUp.HealthCheck = fastHealth(), fastHealth()
	europe := route("/api", to("api-eu-first", 100))
	europe.Match.Headers = map[string]schemas.StringMatch{"CF-IPCountry": {Regex: "AT|BE|CH|DE|DK|ES|FI|FR|GB|IE|IT|NL|NO|PL|PT|SE"}}
	e := newEngine(t, Options{})
	mustApply(t, e, schemas.Config{
		Upstreams: map[string]schemas.Upstream{
			"api-eu": euUp, "api-us": usUp,
			"api-eu-first": {Failover: &schemas.Failover{Groups: []string{"api-eu", "api-us"}}},
			"api-us-first": {Failover: &schemas.Failover{Groups: []string{"api-us", "api-eu"}}},
		},
		Routes: map[string]schemas.Route{"api-europe": europe, "api": route("/api", to("api-us-first", 100))},
	})
	srv := front(t, e)
	tests := []struct {
		name    string
		country string // "": no header
		want    string
		euDown  bool
	}{
		{"Germany to eu", "DE", "eu", false},
		{"Japan to us", "JP", "us", false},
		{"no header to us", "", "us", false},
		{"regex anchored: DEU is not DE", "DEU", "us", false},
		{"Germany fails over to us", "DE", "us", true},
	}
	for _, tt := range tests { // in order: the last case takes eu down
		if tt.euDown {
			eu.sick.Store(true)
			eventually(t, "eu marked down", func() bool { return e.Status().Failover["api-eu-first"].Active == "api-us" })
		}
		hdr := map[string]string{}
		if tt.country != "" {
			hdr["CF-IPCountry"] = tt.country
		}
		if code, body, _ := get(t, srv.Client(), srv.URL+"/api", hdr); code != 200 || body != tt.want {
			t.Errorf("%s: got %d %q, want 200 from %s", tt.name, code, body, tt.want)
		}
	}
}

// TestFailoverWithoutEnoughTargets checks the fallbacks of minHealthy: when
// no group has enough available targets, the first group with any takes the
// traffic; when no group has any, the active group stays and requests get
// 503.
func TestFailoverWithoutEnoughTargets(t *testing.T) {
	t.Parallel()
	var eu, us []*regionTarget
	var euURLs, usURLs []string
	for range 2 {
		a, b := newRegionTarget(t, "eu"), newRegionTarget(t, "us")
		eu, us = append(eu, a), append(us, b)
		euURLs, usURLs = append(euURLs, a.srv.URL), append(usURLs, b.srv.URL)
	}
	euUp, usUp := ups(euURLs...), ups(usURLs...)
	euUp.HealthCheck, usUp.HealthCheck = fastHealth(), fastHealth()
	e := newEngine(t, Options{})
	mustApply(t, e, schemas.Config{
		Upstreams: map[string]schemas.Upstream{"eu": euUp, "us": usUp,
			"api": {Failover: &schemas.Failover{Groups: []string{"eu", "us"}, MinHealthy: 2}}},
		Routes: map[string]schemas.Route{"r": route("/", to("api", 100))},
	})
	srv := front(t, e)
	healthy := func(group string, n int) func() bool {
		return func() bool {
			c := 0
			for _, ts := range e.Status().Upstreams[group] {
				if ts.Healthy {
					c++
				}
			}
			return c == n
		}
	}
	steps := []struct {
		name string
		sick []*regionTarget
		eu   int // healthy targets of eu and us once the checks see it
		us   int
		code int
		want string // group answering, and active
	}{
		{"each group under minHealthy: the first with any", []*regionTarget{eu[0], us[0]}, 1, 1, 200, "eu"},
		{"primary has none: the next with any", []*regionTarget{eu[1]}, 0, 1, 200, "us"},
		{"none has any: the active group stays", []*regionTarget{us[1]}, 0, 0, http.StatusServiceUnavailable, "us"},
	}
	for _, st := range steps { // in order: each step takes more targets down
		for _, rt := range st.sick {
			rt.sick.Store(true)
		}
		eventually(t, st.name+": health checks", func() bool { return healthy("eu", st.eu)() && healthy("us", st.us)() })
		code, body, _ := get(t, srv.Client(), srv.URL+"/", nil)
		if code != st.code || code == 200 && body != st.want {
			t.Fatalf("%s: got %d %q, want %d from %s", st.name, code, body, st.code, st.want)
		}
		if a := e.Status().Failover["api"].Active; a != st.want {
			t.Fatalf("%s: active %q, want %q", st.name, a, st.want)
		}
	}
}

// BenchmarkFailoverServe serves one request through the whole handler to
// a real upstream on loopback, by a plain upstream and by a failover
// upstream over two groups whose primary is that same upstream: the
// difference is the cost of choosing the group on every request.
func BenchmarkFailoverServe(b *testing.B) {
	for _, failover := range []bool{false, true} {
		name := "plain"
		if failover {
			name = "failover"
		}
		b.Run(name, func(b *testing.B) {
			e := New(Options{})
			defer e.Close()
			target := rawUpstream(b)
			cfg := schemas.Config{
				Upstreams: map[string]schemas.Upstream{"a": ups(target, target+"/")},
				Routes:    map[string]schemas.Route{"bench": route("/bench", to("a", 100))},
			}
			if failover {
				cfg.Upstreams = map[string]schemas.Upstream{
					"p": ups(target, target+"/"), "s": ups(rawUpstream(b)),
					"a": {Failover: &schemas.Failover{Groups: []string{"p", "s"}}},
				}
			}
			mustApply(b, e, cfg)
			b.ReportAllocs()
			b.ResetTimer()
			cpu := processCPU()
			b.RunParallel(func(pb *testing.PB) {
				req := httptest.NewRequest(http.MethodGet, "/bench/x", nil)
				req.RemoteAddr = "192.0.2.1:4711"
				w := &discardWriter{h: http.Header{}}
				for pb.Next() {
					clear(w.h)
					e.ServeHTTP(w, req)
				}
			})
			reportCPU(b, cpu)
		})
	}
}

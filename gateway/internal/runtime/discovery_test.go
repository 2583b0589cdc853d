package runtime

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/gitgate/gitgate/gateway/internal/upstream"
	"github.com/gitgate/gitgate/gateway/internal/upstream/dnstest"
	"github.com/gitgate/gitgate/schemas"
)

// metricValue returns the value of the metric name with the labels, and
// whether it is there.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			return value(m), true
		}
	}
	return 0, false
}

func value(m *dto.Metric) float64 {
	switch {
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	}
	return 0
}

// TestDiscoveryThroughEngine serves a dns:// upstream whose DNS server
// dies and comes back, and checks what status and metrics say, and that
// an apply that leaves the upstream alone keeps its members and counts.
func TestDiscoveryThroughEngine(t *testing.T) {
	t.Parallel()
	back := named(t, "a")
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(back.URL, "http://"))
	s := dnstest.New(t)
	s.SetHosts("api.test", "127.0.0.1")
	r, err := upstream.NewResolver(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	e := newEngine(t, Options{Registry: reg, Resolver: r})
	u := ups("dns://api.test:" + port)
	u.Discovery = &schemas.Discovery{MinInterval: schemas.Duration(5 * time.Millisecond), MaxInterval: schemas.Duration(20 * time.Millisecond)}
	cfg := schemas.Config{Upstreams: map[string]schemas.Upstream{"u": u}, Routes: map[string]schemas.Route{"r": route("/", to("u", 100))}}
	mustApply(t, e, cfg)
	srv := front(t, e)
	if code, body, _ := get(t, srv.Client(), srv.URL+"/", nil); code != http.StatusOK || body != "a" {
		t.Fatalf("through the discovered member: %d %s", code, body)
	}
	st := e.Status()
	if d := st.Discovery["u"]; d.State != upstream.ResultOK || d.Members != 1 || len(st.Upstreams["u"]) != 1 ||
		st.Upstreams["u"][0].URL != "http://127.0.0.1:"+port {
		t.Fatalf("status %+v %+v", d, st.Upstreams["u"])
	}
	labels := map[string]string{"upstream": "u"}
	if v, ok := metricValue(t, reg, "gitgate_upstream_members", labels); !ok || v != 1 {
		t.Fatalf("gitgate_upstream_members %v %v", v, ok)
	}
	if _, ok := metricValue(t, reg, "gitgate_upstream_dns_last_success_age_seconds", labels); !ok {
		t.Fatal("gitgate_upstream_dns_last_success_age_seconds missing")
	}

	// The server dies: the last good member keeps serving, and status and
	// metrics say the resolution fails.
	s.Stop()
	failed := map[string]string{"upstream": "u", "result": upstream.ResultFailed}
	eventually(t, "failed resolutions counted", func() bool {
		v, _ := metricValue(t, reg, "gitgate_upstream_dns_resolutions_total", failed)
		return v >= 3 // more than a rebuilt pool would have made by the checks below
	})
	d := e.Status().Discovery["u"]
	if d.State != upstream.ResultFailed || d.LastError == "" || d.Members != 1 {
		t.Fatalf("status while the DNS server is down: %+v", d)
	}
	if code, body, _ := get(t, srv.Client(), srv.URL+"/", nil); code != http.StatusOK || body != "a" {
		t.Fatalf("with the DNS server down: %d %s", code, body)
	}

	// An apply that leaves the upstream alone keeps the pool: its counts
	// go on from where they were.
	before := e.Status().Discovery["u"].Resolutions[upstream.ResultFailed]
	cfg.Routes["r2"] = route("/two", to("u", 100))
	mustApply(t, e, cfg)
	if got := e.Status().Discovery["u"].Resolutions[upstream.ResultFailed]; got < before {
		t.Fatalf("failed resolutions %d after the apply, %d before: the pool was rebuilt", got, before)
	}

	// It comes back.
	s.Start()
	eventually(t, "resolution recovered", func() bool { return e.Status().Discovery["u"].State == upstream.ResultOK })
	if code, _, _ := get(t, srv.Client(), srv.URL+"/two", nil); code != http.StatusOK {
		t.Fatalf("after recovery: %d", code)
	}
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("recorder: %d", rec.Code)
	}
}

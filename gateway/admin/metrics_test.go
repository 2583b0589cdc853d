package admin

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// metricValue returns the value of the gauge or counter name whose labels
// include want, and whether it exists.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range want {
				if got[k] != v {
					continue metric
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), true
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), true
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func TestConfigMetrics(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	v1 := bundle(t, "v1", "http://127.0.0.1:1")
	h.mustPut(t, v1)
	h.mustPut(t, bundle(t, "v1-again", "http://127.0.0.1:1"))
	if _, err := h.put(t, bundle(t, "bad", "http://127.0.0.1:1", "nope"), ""); err == nil {
		t.Fatal("bad bundle applied")
	}
	bad := *v1
	bad.APIVersion = "x"
	if _, err := h.put(t, &bad, ""); err == nil {
		t.Fatal("bad envelope applied")
	}
	tests := []struct {
		name   string
		metric string
		labels map[string]string
		want   float64
	}{
		{name: "applied", metric: "gitgate_config_applies_total", labels: map[string]string{"result": "applied"}, want: 1},
		{name: "unchanged", metric: "gitgate_config_applies_total", labels: map[string]string{"result": "unchanged"}, want: 1},
		{name: "rejected by compile and by envelope", metric: "gitgate_config_applies_total", labels: map[string]string{"result": "rejected"}, want: 2},
		{name: "running version", metric: "gitgate_config_info", labels: map[string]string{"version": "v1", "digest": v1.Digest}, want: 1},
		{name: "last attempt failed", metric: "gitgate_config_last_apply_success", want: 0},
		{name: "apply durations observed (applied and compile-rejected)", metric: "gitgate_config_apply_duration_seconds", want: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := metricValue(t, h.reg, tt.metric, tt.labels)
			if !ok || got != tt.want {
				t.Fatalf("%s%v = %v (present %v), want %v", tt.metric, tt.labels, got, ok, tt.want)
			}
		})
	}
	if ts, ok := metricValue(t, h.reg, "gitgate_config_last_apply_success_timestamp_seconds", nil); !ok || ts <= 0 {
		t.Fatalf("last success timestamp %v", ts)
	}
}

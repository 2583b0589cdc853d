package webhook

import (
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// TestEventLabelBounded: the event header is read before the signature
// is checked, so a stranger chooses it. Unknown events share one label
// value, or each made-up name would add a metric series for good.
func TestEventLabelBounded(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	h, err := New(Options{Secret: secret, Branch: "main", Nudge: func(string) {}, Registerer: reg, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	for i := range 50 {
		post(t, srv.URL, fmt.Sprintf("made-up-%d", i), fmt.Sprintf("d-%d", i), `{}`, nil)
	}
	post(t, srv.URL, "push", "p", `{}`, nil)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	events := map[string]bool{}
	for _, mf := range mfs {
		if mf.GetName() != "gitgate_agent_webhook_deliveries_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "event" {
					events[l.GetValue()] = true
				}
			}
		}
	}
	if len(events) != 2 || !events["push"] || !events["other"] {
		t.Fatalf("event label values %v, want push and other", events)
	}
}

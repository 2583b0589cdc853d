package statusmetrics

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gitgate/gitgate/agent/internal/bundle"
	"github.com/gitgate/gitgate/agent/internal/syncer"
)

const (
	c1 = "1111111111111111111111111111111111111111"
	c2 = "2222222222222222222222222222222222222222"
)

func TestFromStatus(t *testing.T) {
	t.Parallel()
	since := time.Unix(1700000000, 0)
	tests := []struct {
		name string
		st   syncer.Status
		want Snapshot
	}{
		{"nothing seen yet", syncer.Status{}, Snapshot{}},
		{"tracking: the branch head is desired before it is applied",
			syncer.Status{BranchHead: c2, LastApplied: c1, LastAttempted: c1, LastResult: bundle.ResultApplied},
			Snapshot{Desired: c2}},
		{"tracking: a head that failed transiently is still desired",
			syncer.Status{BranchHead: c2, LastApplied: c1, LastAttempted: c2, LastResult: bundle.ResultFailed},
			Snapshot{Desired: c2}},
		{"tracking: a rejected head is not desired; the running config stays",
			syncer.Status{BranchHead: c2, LastApplied: c1, LastAttempted: c2, LastResult: bundle.ResultRejected},
			Snapshot{Desired: c1, HeadRejected: true}},
		{"tracking: a head marked bad is not desired",
			syncer.Status{BranchHead: c2, LastApplied: c1, LastAttempted: c2, LastResult: bundle.ResultSkipped},
			Snapshot{Desired: c1}},
		{"pinned: the pin wins over the branch head",
			syncer.Status{BranchHead: c2, LastApplied: c1, Mode: "pinned", Pin: &bundle.Pin{SHA: c1, Since: since}},
			Snapshot{Desired: c1, Pinned: true, PinnedSince: since}},
		{"pinned and the head rejected",
			syncer.Status{BranchHead: c2, LastApplied: c1, LastAttempted: c2, LastResult: bundle.ResultRejected, Pin: &bundle.Pin{SHA: c1, Since: since}},
			Snapshot{Desired: c1, Pinned: true, PinnedSince: since, HeadRejected: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := FromStatus(tt.st); got != tt.want {
				t.Fatalf("FromStatus = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestCollector(t *testing.T) {
	t.Parallel()
	since := time.Unix(1700000000, 0)
	tests := []struct {
		name string
		snap Snapshot
		want string
	}{
		{"tracking", Snapshot{Desired: c2}, `
# HELP gitgate_agent_desired_info Always 1; the labels name the version this replica should serve (the pin, else the branch head unless it was rejected) and the mode, tracking or pinned.
# TYPE gitgate_agent_desired_info gauge
gitgate_agent_desired_info{mode="tracking",version="` + c2 + `"} 1
# HELP gitgate_agent_head_rejected 1 while the branch head is a commit that was rejected (invalid, or refused by the gateway), else 0.
# TYPE gitgate_agent_head_rejected gauge
gitgate_agent_head_rejected 0
# HELP gitgate_agent_pin_timestamp_seconds Unix time the running pin (rollback) was set; 0 while tracking the branch.
# TYPE gitgate_agent_pin_timestamp_seconds gauge
gitgate_agent_pin_timestamp_seconds 0
`},
		{"pinned after a rejected head", Snapshot{Desired: c1, Pinned: true, PinnedSince: since, HeadRejected: true}, `
# HELP gitgate_agent_desired_info Always 1; the labels name the version this replica should serve (the pin, else the branch head unless it was rejected) and the mode, tracking or pinned.
# TYPE gitgate_agent_desired_info gauge
gitgate_agent_desired_info{mode="pinned",version="` + c1 + `"} 1
# HELP gitgate_agent_head_rejected 1 while the branch head is a commit that was rejected (invalid, or refused by the gateway), else 0.
# TYPE gitgate_agent_head_rejected gauge
gitgate_agent_head_rejected 1
# HELP gitgate_agent_pin_timestamp_seconds Unix time the running pin (rollback) was set; 0 while tracking the branch.
# TYPE gitgate_agent_pin_timestamp_seconds gauge
gitgate_agent_pin_timestamp_seconds 1.7e+09
`},
		{"no version known yet: no desired series", Snapshot{}, `
# HELP gitgate_agent_head_rejected 1 while the branch head is a commit that was rejected (invalid, or refused by the gateway), else 0.
# TYPE gitgate_agent_head_rejected gauge
gitgate_agent_head_rejected 0
# HELP gitgate_agent_pin_timestamp_seconds Unix time the running pin (rollback) was set; 0 while tracking the branch.
# TYPE gitgate_agent_pin_timestamp_seconds gauge
gitgate_agent_pin_timestamp_seconds 0
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reg := prometheus.NewPedanticRegistry()
			reg.MustRegister(New(func() Snapshot { return tt.snap }))
			rec := httptest.NewRecorder()
			promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}).
				ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
			if rec.Code != 200 {
				t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
			}
			if got, want := rec.Body.String(), strings.TrimPrefix(tt.want, "\n"); got != want {
				t.Fatalf("exposition:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

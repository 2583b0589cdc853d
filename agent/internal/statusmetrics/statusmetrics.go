package statusmetrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gitgate/gitgate/agent/internal/bundle"
	"github.com/gitgate/gitgate/agent/internal/syncer"
)

// Snapshot is the part of the loop's status the gauges show.
type Snapshot struct {
	// Desired is the version the gateway should serve; "" before the agent
	// has seen a branch head or applied anything (no desired series).
	Desired string
	// Pinned is true while a rollback pin holds; PinnedSince is when it was
	// set.
	Pinned      bool
	PinnedSince time.Time
	// HeadRejected is true while the branch head is a rejected commit.
	HeadRejected bool
}

// FromStatus derives a Snapshot from the loop's status. The desired
// version is the pin when pinned; else the branch head, unless the head was
// rejected or skipped as a commit rolled back from, in which case the
// running config is meant to stay and the last applied version is desired.
// A head whose attempt failed transiently (Git or gateway unreachable) is
// still desired: the replica is behind it.
func FromStatus(st syncer.Status) Snapshot {
	var s Snapshot
	headAttempted := st.BranchHead != "" && st.LastAttempted == st.BranchHead
	s.HeadRejected = headAttempted && st.LastResult == bundle.ResultRejected
	switch {
	case st.Pin != nil:
		s.Desired, s.Pinned, s.PinnedSince = st.Pin.SHA, true, st.Pin.Since
	case st.BranchHead == "":
		s.Desired = st.LastApplied
	case headAttempted && (st.LastResult == bundle.ResultRejected || st.LastResult == bundle.ResultSkipped):
		s.Desired = st.LastApplied
	default:
		s.Desired = st.BranchHead
	}
	return s
}

// Collector is a prometheus.Collector that reads a Snapshot at each scrape.
type Collector struct {
	read                          func() Snapshot
	desired, pinnedAt, headReject *prometheus.Desc
}

// New returns a Collector that calls read at each scrape; read must be safe
// to call from any goroutine.
func New(read func() Snapshot) *Collector {
	return &Collector{
		read: read,
		desired: prometheus.NewDesc("gitgate_agent_desired_info",
			"Always 1; the labels name the version this replica should serve (the pin, else the branch head unless it was rejected) and the mode, tracking or pinned.",
			[]string{"version", "mode"}, nil),
		pinnedAt: prometheus.NewDesc("gitgate_agent_pin_timestamp_seconds",
			"Unix time the running pin (rollback) was set; 0 while tracking the branch.", nil, nil),
		headReject: prometheus.NewDesc("gitgate_agent_head_rejected",
			"1 while the branch head is a commit that was rejected (invalid, or refused by the gateway), else 0.", nil, nil),
	}
}

// Describe sends the three descriptors.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.desired
	ch <- c.pinnedAt
	ch <- c.headReject
}

// Collect reads one Snapshot and sends its gauges.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.read()
	if s.Desired != "" {
		mode := "tracking"
		if s.Pinned {
			mode = "pinned"
		}
		ch <- prometheus.MustNewConstMetric(c.desired, prometheus.GaugeValue, 1, s.Desired, mode)
	}
	var since float64
	if s.Pinned && !s.PinnedSince.IsZero() {
		since = float64(s.PinnedSince.UnixNano()) / 1e9
	}
	ch <- prometheus.MustNewConstMetric(c.pinnedAt, prometheus.GaugeValue, since)
	var rejected float64
	if s.HeadRejected {
		rejected = 1
	}
	ch <- prometheus.MustNewConstMetric(c.headReject, prometheus.GaugeValue, rejected)
}

package upstream

import (
	"context"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// maxProbeBody is how much of a probe's response body is read so the
// connection can be reused.
const maxProbeBody = 4 << 10

// checkLoop probes every target at once each interval until Close. A
// discovered pool's checks follow its members: each round probes the
// members of that moment.
func (p *Pool) checkLoop() {
	defer p.wg.Done()
	hc := p.spec.HealthCheck
	client := &http.Client{
		Transport: p.transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	tick := time.NewTicker(hc.Interval.D())
	defer tick.Stop()
	for {
		var wg sync.WaitGroup
		for _, t := range p.members.Load().targets {
			wg.Go(func() { p.record(t, p.probe(client, t)) })
		}
		wg.Wait()
		select {
		case <-p.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// probe reports whether one GET of the health path passes, or one gRPC
// health check when the upstream's check is gRPC's.
func (p *Pool) probe(client *http.Client, t *Target) bool {
	hc := p.spec.HealthCheck
	ctx, cancel := context.WithTimeout(p.ctx, hc.Timeout.D())
	defer cancel()
	if hc.GRPC != nil {
		return probeGRPC(ctx, client, t, hc.GRPC.Service)
	}
	u := *t.URL
	u.Path = singleJoin(u.Path, hc.Path)
	u.RawPath = ""
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return false
	}
	req.Header.Set("User-Agent", "gitgate-health-check")
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxProbeBody))
	_ = resp.Body.Close()
	if len(hc.ExpectedStatuses) > 0 {
		return slices.Contains(hc.ExpectedStatuses, resp.StatusCode)
	}
	return resp.StatusCode >= 200 && resp.StatusCode < 300
}

// record applies one probe result with the thresholds.
func (p *Pool) record(t *Target, ok bool) {
	if p.ctx.Err() != nil {
		return // a probe cut short by Close says nothing
	}
	hc := p.spec.HealthCheck
	if ok {
		t.hcFail = 0
		t.hcPass++
		if !t.healthy.Load() && t.hcPass >= hc.HealthyThreshold {
			t.healthy.Store(true)
			p.log.Info().Str("target", t.raw).Msg("target healthy")
		}
		return
	}
	t.hcPass = 0
	t.hcFail++
	if t.healthy.Load() && t.hcFail >= hc.UnhealthyThreshold {
		t.healthy.Store(false)
		p.log.Warn().Str("target", t.raw).Msg("target unhealthy")
	}
}

func singleJoin(a, b string) string {
	switch {
	case a == "" || a == "/":
		return b
	case a[len(a)-1] == '/' && b[0] == '/':
		return a + b[1:]
	case a[len(a)-1] != '/' && b[0] != '/':
		return a + "/" + b
	}
	return a + b
}

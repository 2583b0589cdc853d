package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"syscall"
	"time"

	"github.com/gitgate/gitgate/scripts/e2e/harness"
)

func init() {
	scenarios = append(scenarios, scenario{
		name: "l-shutdown-delay-rollout",
		criterion: "a gateway run as in examples/kubernetes (--observe-addr, --shutdown-delay 3s) gets SIGTERM: " +
			"/readyz on the observe address turns 503 while a client loop (new connection per request, no " +
			"retries) keeps getting 200 from c1; no request gets an answer other than 200 and none succeeds after " +
			"one is refused; the process exits cleanly, not before the delay",
		run: shutdownDelayRollout,
	})
}

func shutdownDelayRollout(ctx context.Context, t *T) error {
	const delay = 3 * time.Second
	st, _, err := t.Stack(ctx, harness.Options{})
	if err != nil {
		return err
	}
	// Restart the gateway with the Kubernetes example's flags; it serves
	// c1 from its last-known-good.
	if err := st.Gateway.Stop(); err != nil {
		return fmt.Errorf("stopping the first gateway: %w", err)
	}
	obs, err := harness.FreeAddr()
	if err != nil {
		return err
	}
	args := append(st.GatewayArgs(), "--observe-addr", obs, "--shutdown-delay", delay.String())
	p, err := harness.Start(st.Dir, "gateway-delay", append([]string{st.Bins.Gateway}, args...)...)
	if err != nil {
		return err
	}
	st.Gateway = p
	probe := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	readyz := func() int {
		resp, err := probe.Get("http://" + obs + "/readyz")
		if err != nil {
			return 0
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if err := harness.WaitFor(ctx, 15*time.Second, "readyz 200 on the observe address", func() (bool, error) {
		if p.Exited() {
			return false, fmt.Errorf("gateway exited: %v (see %s)", p.Err(), p.Log)
		}
		return readyz() == http.StatusOK && st.Get("/").OK("c1"), nil
	}); err != nil {
		return err
	}

	signalled := time.Now()
	if err := syscall.Kill(p.Pid(), syscall.SIGTERM); err != nil {
		return fmt.Errorf("sending SIGTERM: %w", err)
	}
	if err := harness.WaitFor(ctx, 5*time.Second, "readyz 503 after SIGTERM", func() (bool, error) {
		return readyz() == http.StatusServiceUnavailable, nil
	}); err != nil {
		return err
	}
	served, refused := 0, 0
	for !p.Exited() {
		r := st.Get("/")
		switch {
		case r.OK("c1") && refused > 0:
			return fmt.Errorf("request %d served after one was refused", served+refused+1)
		case r.OK("c1"):
			served++
		case r.Err != nil:
			refused++ // the listener is closed: the delay is over
		default:
			return fmt.Errorf("request %d during the shutdown: %s, want 200 from c1", served+refused+1, r)
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(signalled)
	t.Logf("after SIGTERM: %d requests served, %d refused once the listener closed; exited after %v", served, refused, took.Round(time.Millisecond))
	if err := p.Err(); err != nil {
		return fmt.Errorf("gateway exit after SIGTERM: %w (see %s)", err, p.Log)
	}
	if served == 0 {
		return fmt.Errorf("no request served during the %v shutdown delay", delay)
	}
	if took < delay {
		return fmt.Errorf("gateway exited %v after SIGTERM, before the %v delay", took, delay)
	}
	return nil
}
